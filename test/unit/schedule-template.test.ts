import { describe, expect, it } from 'vitest';
import { batchForRun, scheduleFieldOf } from '../../src/schedules/schedule-batch.js';
import type { ScheduleDefinition } from '../../src/schedules/schedule-request.js';
import {
  isoWeek,
  renderPrompt,
  runValues,
  unknownPlaceholders,
  variesByItem,
} from '../../src/schedules/schedule-template.js';

const MONDAY_9_BERLIN = new Date('2026-11-23T08:00:00Z');

describe('schedule templates', () => {
  it('fills the run’s placeholders on the schedule’s own calendar', () => {
    expect(runValues(MONDAY_9_BERLIN, 'Europe/Berlin')).toEqual({
      date: '2026-11-23',
      time: '09:00',
      year: '2026',
      month: '11',
      month_name: 'November',
      day: '23',
      weekday: 'Monday',
      week: '2026-W48',
      quarter: 'Q4',
      season: 'autumn',
    });
    // Monday 00:30 in Berlin is still Sunday in UTC: the schedule's zone decides.
    const early = new Date('2026-11-22T23:30:00Z');
    expect(runValues(early, 'Europe/Berlin')).toMatchObject({
      date: '2026-11-23',
      weekday: 'Monday',
      week: '2026-W48',
    });
    expect(runValues(early, 'UTC')).toMatchObject({
      date: '2026-11-22',
      weekday: 'Sunday',
      week: '2026-W47',
    });
    expect(runValues(new Date('2027-01-15T12:00:00Z'), 'UTC')).toMatchObject({
      season: 'winter',
      quarter: 'Q1',
      month_name: 'January',
    });
  });

  it.each([
    [2026, 11, 23, '2026-W48'],
    [2026, 11, 30, '2026-W49'],
    [2027, 1, 1, '2026-W53'], // a Friday: its week's Thursday is in 2026
    [2024, 12, 30, '2025-W01'], // a Monday: its week's Thursday is in 2025
    [2021, 1, 3, '2020-W53'],
  ])('isoWeek(%i-%i-%i) is %s', (year, month, day, week) => {
    expect(isoWeek(year, month, day)).toBe(week);
  });

  it('knows which placeholders are not provided, and which vary by item', () => {
    expect(
      unknownPlaceholders('{{campaign}} on {{date}} {{colour}} #{{variation}}', { campaign: 'x' }),
    ).toEqual(['colour']);
    expect(variesByItem('banner {{date}}')).toBe(false);
    expect(variesByItem('banner {{ variation }}')).toBe(true);
    expect(variesByItem('banner {{item}}')).toBe(true);
    expect(
      renderPrompt('{{campaign}}: {{weekday}} {{week}}, take {{variation}} ({{item}})', {
        run: runValues(MONDAY_9_BERLIN, 'Europe/Berlin'),
        variables: { campaign: 'spring-sale' },
        item: 'v2',
        variation: 2,
      }),
    ).toBe('spring-sale: Monday 2026-W48, take 2 (v2)');
  });
});

const base: ScheduleDefinition = {
  name: 'banners',
  cron: '0 9 * * 1',
  timezone: 'Europe/Berlin',
  template: 'Banner for {{campaign}}, {{date}}, variation {{variation}}',
  variables: { campaign: 'spring-sale' },
  model: 'gpt-image-2',
  size: '1536x1024',
  budget_usd: 5,
  metadata: { team: 'marketing' },
};

describe('batchForRun', () => {
  it('makes k variations v1 … vk from the template, with the schedule’s batch options', () => {
    expect(batchForRun({ ...base, variations: 3 }, MONDAY_9_BERLIN)).toEqual({
      model: 'gpt-image-2',
      size: '1536x1024',
      budget_usd: 5,
      metadata: { team: 'marketing' },
      items: [1, 2, 3].map((i) => ({
        id: `v${i}`,
        prompt: `Banner for spring-sale, 2026-11-23, variation ${i}`,
      })),
    });
  });

  it('renders listed items: their own prompt replaces the template, their options stay', () => {
    const batch = batchForRun(
      {
        ...base,
        items: [
          { id: 'hero', size: '1024x1024' },
          { id: 'square', prompt: '{{campaign}} square for {{month_name}}' },
        ],
      },
      MONDAY_9_BERLIN,
    );
    expect(batch.items).toEqual([
      { id: 'hero', size: '1024x1024', prompt: 'Banner for spring-sale, 2026-11-23, variation 1' },
      { id: 'square', prompt: 'spring-sale square for November' },
    ]);
  });

  it('names a run’s batch problems by the schedule’s fields', () => {
    const listed = { ...base, items: [{ id: 'a' }, { id: 'b', prompt: 'own {{date}}' }] };
    const of = (definition: ScheduleDefinition, field: string) =>
      scheduleFieldOf(definition, { field, message: '' });
    expect(of(listed, 'items[0].prompt')).toBe('template');
    expect(of(listed, 'items[1].prompt')).toBe('items[1].prompt');
    expect(of(listed, 'items[1].size')).toBe('items[1].size');
    expect(of({ ...base, variations: 2 }, 'items[1].prompt')).toBe('template');
    expect(of({ ...base, variations: 2 }, 'items[1].image')).toBe('variations');
    expect(of(listed, 'size')).toBe('size');
  });
});
