import { PromptTemplate } from '../catalog/template.js';

/**
 * The placeholders a schedule's template gets from the run itself, all read on the run's
 * calendar in the schedule's time zone (a run at Monday 00:30 in Berlin is a Monday even though
 * it is still Sunday in UTC).
 */
export const RUN_PLACEHOLDERS = {
  date: 'the run’s date, YYYY-MM-DD',
  time: 'the run’s time, HH:MM (24 h)',
  year: 'e.g. 2026',
  month: '01–12',
  month_name: 'January … December',
  day: 'day of the month, 01–31',
  weekday: 'Monday … Sunday',
  week: 'ISO week, e.g. 2026-W48',
  quarter: 'Q1 … Q4',
  season: 'winter, spring, summer or autumn (northern hemisphere, by month)',
} as const;

/** The placeholders each item gets: its id and its 1-based position among the run's items. */
export const ITEM_PLACEHOLDERS = {
  item: 'the item’s id (v1 … vk for variations)',
  variation: 'the item’s number, 1 … k',
} as const;

export const BUILT_IN_PLACEHOLDERS: readonly string[] = [
  ...Object.keys(RUN_PLACEHOLDERS),
  ...Object.keys(ITEM_PLACEHOLDERS),
];

export type RunValues = Record<keyof typeof RUN_PLACEHOLDERS, string>;

const SEASONS = ['winter', 'spring', 'summer', 'autumn'] as const;

/** The run's own placeholder values: its date and time as the schedule's time zone sees them. */
export function runValues(runAt: Date, timeZone: string): RunValues {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
      weekday: 'long',
    })
      .formatToParts(runAt)
      .map((part) => [part.type, part.value]),
  ) as Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'weekday', string>;
  const [year, month, day] = [Number(parts.year), Number(parts.month), Number(parts.day)];
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${parts.hour}:${parts.minute}`,
    year: parts.year,
    month: parts.month,
    month_name: new Intl.DateTimeFormat('en-US', { timeZone, month: 'long' }).format(runAt),
    day: parts.day,
    weekday: parts.weekday,
    week: isoWeek(year, month, day),
    quarter: `Q${Math.ceil(month / 3)}`,
    season: SEASONS[Math.floor((month % 12) / 3)]!,
  };
}

/**
 * The ISO 8601 week of a calendar date, `YYYY-Www`: weeks start on Monday and belong to the
 * year of their Thursday, so 2027-01-01 (a Friday) is in 2026-W53.
 */
export function isoWeek(year: number, month: number, day: number): string {
  const date = new Date(Date.UTC(year, month - 1, day));
  const mondayBased = (date.getUTCDay() + 6) % 7;
  const thursday = new Date(date.getTime() + (3 - mondayBased) * 86_400_000);
  const weekYear = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(weekYear, 0, 1)) / (7 * 86_400_000));
  return `${weekYear}-W${String(week).padStart(2, '0')}`;
}

/** Placeholders a template names that neither the run, the item nor `variables` provide. */
export function unknownPlaceholders(text: string, variables: Record<string, string>): string[] {
  return new PromptTemplate(text).missingColumns([
    ...BUILT_IN_PLACEHOLDERS,
    ...Object.keys(variables),
  ]);
}

/** Whether the text names a placeholder that differs from one item of a run to the next. */
export function variesByItem(text: string): boolean {
  const placeholders = new PromptTemplate(text).placeholders;
  return Object.keys(ITEM_PLACEHOLDERS).some((name) => placeholders.includes(name));
}

/** Fills a template for one item of one run. */
export function renderPrompt(
  text: string,
  values: { run: RunValues; variables: Record<string, string>; item: string; variation: number },
): string {
  return new PromptTemplate(text).render({
    ...values.variables,
    ...values.run,
    item: values.item,
    variation: String(values.variation),
  });
}
