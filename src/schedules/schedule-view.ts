import { nextRuns } from './schedule-calendar.js';
import type { ScheduleRecord } from './schedule-store.js';

/** How many coming run times a schedule's view lists. */
export const NEXT_RUNS_SHOWN = 5;

/**
 * A schedule as the API shows it: its definition as accepted (time zone name case-corrected), the
 * next run times (computed as the runs are queued: cron in the time zone, none after
 * end_date) and how its latest run went.
 */
export function scheduleView(schedule: ScheduleRecord, now: Date = new Date()) {
  const { definition } = schedule;
  const { name, cron, timezone, end_date, template, variables, ...batchFields } = definition;
  return {
    id: schedule.id,
    name,
    cron,
    timezone,
    end_date: end_date ?? null,
    template,
    variables: variables ?? {},
    ...batchFields,
    next_runs: nextRuns(
      {
        cron: definition.cron,
        timeZone: definition.timezone,
        endDate: definition.end_date ? new Date(definition.end_date) : undefined,
      },
      now,
      NEXT_RUNS_SHOWN,
    ).map((run) => run.toISOString()),
    created_at: schedule.created_at,
    last_batch_id: schedule.last_batch_id ?? null,
    last_run_at: schedule.last_run_at ?? null,
    last_error: schedule.last_error ?? null,
  };
}

export type ScheduleView = ReturnType<typeof scheduleView>;
