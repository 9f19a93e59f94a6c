import { describe, expect, it } from 'vitest';
import {
  timeZoneName,
  checkCron,
  nextRuns,
  runTimeAt,
} from '../../src/schedules/schedule-calendar.js';

const BERLIN_MONDAYS = { cron: '0 9 * * 1', timeZone: 'Europe/Berlin' };
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('schedule calendar', () => {
  it('lists Monday 09:00 in Berlin as 08:00Z in winter and 07:00Z once summer time starts', () => {
    expect(iso(nextRuns(BERLIN_MONDAYS, new Date('2026-11-22T06:00:00Z'), 3))).toEqual([
      '2026-11-23T08:00:00.000Z',
      '2026-11-30T08:00:00.000Z',
      '2026-12-07T08:00:00.000Z',
    ]);
    // Summer time begins on Sunday 28 March 2027.
    expect(iso(nextRuns(BERLIN_MONDAYS, new Date('2027-03-20T00:00:00Z'), 2))).toEqual([
      '2027-03-22T08:00:00.000Z',
      '2027-03-29T07:00:00.000Z',
    ]);
  });

  it('counts from strictly after `from`, and lists nothing after end_date', () => {
    const from = new Date('2026-11-23T08:00:00Z'); // a run time itself
    expect(iso(nextRuns(BERLIN_MONDAYS, from, 1))).toEqual(['2026-11-30T08:00:00.000Z']);
    const endDate = new Date('2026-12-07T08:00:00Z'); // the last run falls exactly on it
    expect(iso(nextRuns({ ...BERLIN_MONDAYS, endDate }, from, 5))).toEqual([
      '2026-11-30T08:00:00.000Z',
      '2026-12-07T08:00:00.000Z',
    ]);
    expect(nextRuns({ ...BERLIN_MONDAYS, endDate: from }, from, 5)).toEqual([]);
  });

  it('reads six fields as seconds first', () => {
    const from = new Date('2026-11-22T10:00:00.500Z');
    expect(iso(nextRuns({ cron: '*/2 * * * * *', timeZone: 'UTC' }, from, 2))).toEqual([
      '2026-11-22T10:00:02.000Z',
      '2026-11-22T10:00:04.000Z',
    ]);
  });

  it.each([
    ['0 9 * * 1', true],
    ['0 9 * * MON', true],
    ['*/2 * * * * *', true],
    ['@weekly', true],
    ['0 9 * * THU', true],
    ['* * *', false],
    ['', false],
    ['0 9 * * 1 2026 1', false],
    ['61 * * * *', false],
    ['0 25 * * *', false],
    ['H 9 * * 1', false],
    ['@fortnightly', false],
    ['0 0 30 2 *', false],
    ['every monday', false],
  ])('checkCron(%j) → valid: %s', (cron, valid) => {
    expect(checkCron(cron, 'Europe/Berlin').ok).toBe(valid);
  });

  it('says why a cron is refused', () => {
    expect(checkCron('* * *', 'UTC')).toEqual({
      ok: false,
      message: expect.stringMatching(/expected 5 fields .* or 6 .* got 3/),
    });
    expect(checkCron('61 * * * *', 'UTC')).toEqual({
      ok: false,
      message: expect.stringMatching(/61/),
    });
  });

  it.each([
    ['Europe/Berlin', 'Europe/Berlin'],
    ['europe/berlin', 'Europe/Berlin'],
    ['UTC', 'UTC'],
    ['utc', 'UTC'],
    // Node's own names for these are older aliases (America/Buenos_Aires, Asia/Calcutta).
    ['America/Argentina/Buenos_Aires', 'America/Argentina/Buenos_Aires'],
    ['Asia/Kolkata', 'Asia/Kolkata'],
    ['Mars/Olympus_Mons', undefined],
    ['+02:00', undefined],
    ['Europe/Berlin; DROP', undefined],
    ['', undefined],
  ])('timeZoneName(%j) → %j', (zone, canonical) => {
    expect(timeZoneName(zone)).toBe(canonical);
  });

  describe('runTimeAt: which run a job started at `now` is', () => {
    const monday = new Date('2026-11-23T08:00:00.000Z');
    const at = (ms: number) => new Date(monday.getTime() + ms);

    it('is the run at or before now, however late the job starts', () => {
      expect(runTimeAt(BERLIN_MONDAYS, monday)).toEqual(monday);
      expect(runTimeAt(BERLIN_MONDAYS, at(35))).toEqual(monday);
      expect(runTimeAt(BERLIN_MONDAYS, at(3 * 86_400_000))).toEqual(monday);
    });

    it('is the coming run when it is moments away (a worker clock slightly behind)', () => {
      expect(runTimeAt(BERLIN_MONDAYS, at(-5))).toEqual(monday);
      expect(runTimeAt(BERLIN_MONDAYS, at(-900))).toEqual(monday);
      expect(runTimeAt(BERLIN_MONDAYS, at(-5_000))).toEqual(new Date('2026-11-16T08:00:00Z'));
    });

    it('keeps runs every 2 s apart: a run a little late is not taken for the next', () => {
      const everyTwo = { cron: '*/2 * * * * *', timeZone: 'UTC' };
      expect(runTimeAt(everyTwo, at(40))).toEqual(monday);
      expect(runTimeAt(everyTwo, at(1_400))).toEqual(monday);
      expect(runTimeAt(everyTwo, at(1_600))).toEqual(at(2_000));
    });
  });
});
