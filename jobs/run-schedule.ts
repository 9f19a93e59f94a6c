import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import {
  scheduledBatchId,
  submitBatch,
  type SubmitBatchDeps,
} from '../src/batches/submit-batch.js';
import { RendermillError, RequestValidationError } from '../src/errors.js';
import { batchForRun } from '../src/schedules/schedule-batch.js';
import { runTimeAt } from '../src/schedules/schedule-calendar.js';
import type { ScheduleStore } from '../src/schedules/schedule-store.js';
import { runSchedulePayload, type JobHandler } from '../src/contracts/job-catalog.js';

export interface RunScheduleDeps {
  schedules: ScheduleStore;
  /** The `schedules` queue: a run that finds its schedule deleted removes its job scheduler. */
  queue: Pick<Queue, 'removeJobScheduler'>;
  /** What the run's batch is submitted with, exactly as `POST /v1/batches` would. */
  submit: SubmitBatchDeps;
  logger: Logger;
  /**
   * How long a run claimed by one attempt is left to it before another attempt of the same job
   * takes it over (its worker died mid-submission). The worker's job lock: BullMQ hands a dead
   * worker's job to another after that long too.
   */
  leaseMs: number;
  now?: () => Date;
}

/** Another attempt of the same run is submitting its batch right now: try again shortly. */
export class ScheduleRunInProgressError extends RendermillError {
  override name = 'ScheduleRunInProgressError';
  readonly code = 'schedule_run_in_progress';
  override readonly retryable = true;
}

/**
 * One run of a schedule: loads it, works out which run this is (runTimeAt: the schedule's cron
 * in its time zone), fills the template for that run's date and submits the batch with the
 * schedule's id on it. A run makes one batch however often its job runs: the run is claimed in
 * the schedule's record first (ScheduleStore.claimRun), and a run already done does nothing.
 * A deleted schedule does nothing. A batch refused (a model retired since, say) is recorded as
 * the schedule's `last_error` and the run ends: trying again would be refused again.
 */
export function createRunScheduleHandler(deps: RunScheduleDeps): JobHandler<'run-schedule'> {
  const { schedules, logger } = deps;
  const clock = () => deps.now?.() ?? new Date();

  return {
    async process({ scheduleId, tenant }, attempt) {
      const now = clock();
      const where = { schedule: scheduleId, tenant };
      const schedule = await schedules.get(tenant, scheduleId);
      if (!schedule) {
        // Deleted while this run was queued; make sure its job scheduler is gone too.
        await deps.queue.removeJobScheduler(scheduleId);
        logger.info(where, 'schedule run skipped: the schedule was deleted');
        return;
      }
      const { definition } = schedule;
      // The tick the job scheduler made this job for; worked out from the clock only for a job
      // that does not say (queued by hand, or by another version).
      const runTime =
        attempt.scheduledFor ??
        runTimeAt({ cron: definition.cron, timeZone: definition.timezone }, now);
      const run = { ...where, run_time: runTime.toISOString() };
      const claim = await schedules.claimRun(tenant, scheduleId, runTime, {
        now,
        leaseMs: deps.leaseMs,
        token: randomUUID(),
      });
      if (claim.outcome === 'busy') {
        throw new ScheduleRunInProgressError(
          `run ${runTime.toISOString()} of ${scheduleId} is being submitted by another attempt`,
        );
      }
      if (claim.outcome !== 'claimed') {
        logger.info({ ...run, outcome: claim.outcome }, 'schedule run already seen to');
        return;
      }

      let batchId: string;
      try {
        const batch = await submitBatch(
          { ...deps.submit, now: () => now },
          tenant,
          batchForRun(definition, runTime),
          // One id per run: a run re-attempted after its worker died mid-way finds its batch.
          { scheduleId, batchId: scheduledBatchId(scheduleId, runTime) },
        );
        batchId = batch.id;
      } catch (error) {
        if (error instanceof RequestValidationError && !error.retryable) {
          logger.warn({ ...run, err: error.message }, 'schedule run refused');
          await schedules.recordError(
            tenant,
            scheduleId,
            runTime,
            {
              code: error.code,
              message: error.message,
              field: error.field ?? null,
              run_time: runTime.toISOString(),
            },
            now,
          );
          return;
        }
        // Nothing was submitted: the job's next attempt may claim the run again.
        await schedules.releaseRun(tenant, scheduleId, runTime, claim.token);
        throw error;
      }
      // The batch exists: recording it must not fail the job, whose retry would find the run
      // claimed and unrecorded. Keep trying through a short Redis blip.
      await pRetry(() => schedules.recordBatch(tenant, scheduleId, runTime, batchId, now), {
        retries: 5,
        minTimeout: 200,
      });
      logger.info({ ...run, batch: batchId }, 'schedule run submitted its batch');
    },

    /** Every attempt failed (Redis or the queue out of reach): the schedule says so. */
    async onGiveUp(data, reason) {
      const parsed = runSchedulePayload.safeParse(data);
      if (!parsed.success) return;
      const { scheduleId, tenant } = parsed.data;
      const schedule = await schedules.get(tenant, scheduleId);
      if (!schedule) return;
      const now = clock();
      const { cron, timezone } = schedule.definition;
      const runTime = runTimeAt({ cron, timeZone: timezone }, now);
      await schedules.recordError(
        tenant,
        scheduleId,
        runTime,
        {
          code: 'run_failed',
          message: `the run could not submit its batch: ${reason}`,
          field: null,
          run_time: runTime.toISOString(),
        },
        now,
      );
    },
  };
}
