import { CronExpressionParser, type CronExpression } from 'cron-parser';

/**
 * When a schedule runs: its cron expression read in its time zone, with the same parser BullMQ's
 * job schedulers use, so the times rendermill shows are the times the runs are queued at.
 */

/** `@weekly` and friends, which cron-parser understands. */
const CRON_ALIASES = [
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@hourly',
  '@minutely',
  '@secondly',
  '@weekdays',
  '@weekends',
];

/** A cron expression checked and ready to walk, or why it is not one. */
export type CronCheck = { ok: true } | { ok: false; message: string };

/**
 * Checks a cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6
 * (seconds first), or an alias such as `@weekly`. cron-parser alone fills in missing fields
 * (`* * *` would mean every minute), so the field count is checked here.
 */
export function checkCron(cron: string, timeZone: string): CronCheck {
  const expression = cron.trim();
  if (expression.startsWith('@')) {
    if (!CRON_ALIASES.includes(expression.toLowerCase())) {
      return {
        ok: false,
        message: `unknown alias "${expression}"; known: ${CRON_ALIASES.join(', ')}`,
      };
    }
  } else {
    const fields = expression.split(/\s+/).filter(Boolean);
    if (fields.length !== 5 && fields.length !== 6) {
      return {
        ok: false,
        message:
          `expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), ` +
          `got ${fields.length}: "${expression}"`,
      };
    }
    // A hashed value (H) is picked from a seed: rendermill and BullMQ could pick differently.
    if (fields.some((field) => /(^|[^A-Za-z])H([^A-Za-z]|$)/.test(field))) {
      return { ok: false, message: 'hashed values (H) are not supported: write the exact time' };
    }
  }
  try {
    const walk = cronIn(expression, timeZone, new Date());
    walk.next(); // an expression no date matches (30 February) throws only here
  } catch (error) {
    return { ok: false, message: `not a valid cron expression: ${(error as Error).message}` };
  }
  return { ok: true };
}

/**
 * The name to keep for an IANA time zone (`europe/berlin` → `Europe/Berlin`), or undefined if
 * the runtime does not know it. cron-parser silently yields no dates for an unknown zone, so a
 * zone must pass here first. The name is kept as given, but for its case: the runtime's own
 * names are older aliases (Asia/Calcutta for Asia/Kolkata) that a user would not recognise.
 */
export function timeZoneName(timeZone: string): string | undefined {
  // Offsets (+02:00) are not zones: they do not follow summer time.
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(timeZone)) return undefined;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
  } catch {
    return undefined;
  }
  const lower = timeZone.toLowerCase();
  return (
    ['UTC', ...Intl.supportedValuesOf('timeZone')].find((z) => z.toLowerCase() === lower) ??
    timeZone
  );
}

function cronIn(cron: string, timeZone: string, currentDate: Date, endDate?: Date): CronExpression {
  return CronExpressionParser.parse(cron.trim(), {
    tz: timeZone,
    currentDate,
    ...(endDate ? { endDate } : {}),
  });
}

/** The next `count` run times strictly after `from`, none after `endDate`. */
export function nextRuns(
  timing: { cron: string; timeZone: string; endDate?: Date | undefined },
  from: Date,
  count: number,
): Date[] {
  if (timing.endDate && timing.endDate <= from) return [];
  const walk = cronIn(timing.cron, timing.timeZone, from, timing.endDate);
  const runs: Date[] = [];
  while (runs.length < count && walk.hasNext()) runs.push(new Date(walk.next().getTime()));
  return runs;
}

/**
 * How early a run may start and still count as the coming run: BullMQ queues a run when the
 * clock of the worker that promotes it reaches the run's time, and another worker whose clock
 * is a little behind may be the one that takes it. At most a second, and at most a quarter of
 * the gap between two runs, so that a run late by a few milliseconds is never mistaken for the
 * next one even when the cron fires every second.
 */
const EARLY_TOLERANCE_MS = 1_000;

/**
 * The run a job started at `now` belongs to: the latest run time at or before `now`, unless the
 * next one is only moments away (see EARLY_TOLERANCE_MS). The job of a schedule carries no time
 * of its own, so this is what names the run — the same for a job that runs twice — and what its
 * template's date is.
 */
export function runTimeAt(timing: { cron: string; timeZone: string }, now: Date): Date {
  const afterNow = cronIn(timing.cron, timing.timeZone, now);
  const next = afterNow.next().getTime();
  // prev() is strictly before its current date: start 1 ms later so `now` itself can be a run.
  const beforeNow = cronIn(timing.cron, timing.timeZone, new Date(now.getTime() + 1));
  const previous = beforeNow.prev().getTime();
  const tolerance = Math.min(EARLY_TOLERANCE_MS, (next - previous) / 4);
  return new Date(next - now.getTime() <= tolerance ? next : previous);
}
