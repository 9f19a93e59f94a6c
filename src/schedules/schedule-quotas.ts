import { z } from 'zod';
import { MAX_PAGE_LIMIT, pageQueryFields } from '../contracts/page-query.js';
import { ConflictError } from '../errors.js';
import { nextRuns } from './schedule-calendar.js';

/**
 * What one tenant's schedules may cost rendermill: how many there may be, how often each may
 * run, and how many a list answer holds. A thousand schedules listed at once, or a cron that
 * submits a batch every second, would hold up every tenant's requests.
 */

/** Runs looked at to find a cron's shortest interval: enough for every pattern's gaps to show. */
const RUNS_CHECKED = 25;
/**
 * ...within this much time: walking a sparse cron (29 February) 25 runs ahead would take
 * cron-parser seconds. A week and a day holds every weekly pattern's gaps.
 */
const HORIZON_MS = 8 * 24 * 3600 * 1000;
/** The longest look ahead, for minimums of days: two months hold every monthly pattern's gaps. */
const LONGEST_HORIZON_MS = 62 * 24 * 3600 * 1000;
/** Runs looked at without a horizon when fewer fall within it (a monthly or yearly cron). */
const SPARSE_RUNS_CHECKED = 3;

/**
 * Why `cron` runs too often, or undefined: its shortest gap between two of the next runs is
 * below `minIntervalMs`. Crons such as `0,10 0 9 * * *` run close together only at times, so
 * the runs of the coming week are looked at (up to 25), not the first two — and for a cron
 * that runs less often than that, its next three.
 */
export function cronIntervalProblem(
  timing: { cron: string; timeZone: string },
  minIntervalMs: number,
  now: Date,
): string | undefined {
  // A minimum of days needs a longer look: a monthly pattern's close pair (the 29th and 30th)
  // may lie weeks ahead. RUNS_CHECKED runs of the minimum, at most two months.
  const horizonMs = Math.max(
    HORIZON_MS,
    Math.min(RUNS_CHECKED * minIntervalMs, LONGEST_HORIZON_MS),
  );
  let runs = nextRuns(
    { ...timing, endDate: new Date(now.getTime() + horizonMs) },
    now,
    RUNS_CHECKED,
  );
  if (runs.length < SPARSE_RUNS_CHECKED) runs = nextRuns(timing, now, SPARSE_RUNS_CHECKED);
  let shortest = Number.POSITIVE_INFINITY;
  for (let i = 1; i < runs.length; i++) {
    shortest = Math.min(shortest, runs[i]!.getTime() - runs[i - 1]!.getTime());
  }
  if (shortest >= minIntervalMs) return undefined;
  return (
    `"${timing.cron.trim().slice(0, 100)}" runs ${describeMs(shortest)} apart; ` +
    `a schedule may run at most once every ${describeMs(minIntervalMs)} ` +
    '(RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS)'
  );
}

const describeMs = (ms: number) => {
  const seconds = Math.round(ms / 1000);
  if (seconds % 60 === 0 && seconds >= 60) {
    const minutes = seconds / 60;
    return minutes === 1 ? '1 minute' : `${minutes} minutes`;
  }
  return seconds === 1 ? '1 second' : `${seconds} seconds`;
};

/** The answer to a tenant at its quota of schedules: deleting one makes room. */
export function tooManySchedules(max: number): ConflictError {
  return new ConflictError(
    `you have ${max} schedules, the most allowed (RENDERMILL_MAX_SCHEDULES_PER_TENANT); ` +
      'delete one before creating another',
    'too_many_schedules',
  );
}

/** `GET /v1/schedules?limit&cursor`: pages in the style of `GET /v1/batches`. */
export const listSchedulesQuery = z.object(pageQueryFields('Schedules', MAX_PAGE_LIMIT)).strict();

export type ListSchedulesQuery = z.infer<typeof listSchedulesQuery>;
