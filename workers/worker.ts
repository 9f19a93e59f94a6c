import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { setMaxListeners } from 'node:events';
import pRetry from 'p-retry';
import { AccountPausedError, ComeBackLaterError, ShutdownError } from '../src/errors.js';
import { bullPrefixFor } from '../src/redis/redis-keys.js';
import type { RedisConnection } from '../src/redis/redis-connection.js';
import type { Logger } from 'pino';
import {
  JOB_CATALOG,
  QUEUE_NAMES,
  type JobHandler,
  type JobHandlers,
  type JobName,
} from '../src/contracts/job-catalog.js';

export interface RunningWorkers {
  /** Stops taking jobs, lets active ones finish, then closes connections. */
  close(): Promise<void>;
}

export interface WorkerOptions {
  connection: RedisConnection;
  handlers: JobHandlers;
  logger: Logger;
  /** Jobs processed at once per queue in this process. */
  concurrency: number;
  /** BullMQ's key prefix. Default `rm:bull`, `rm:{bull}` on a cluster (as BullJobQueue's). */
  prefix?: string;
  /**
   * On close, how long in-flight jobs may keep waiting (between provider retries, for budget)
   * before the waits are cut short and their jobs handed back to the queue. Calls in flight
   * are never cut: they may be billed. RENDERMILL_SHUTDOWN_GRACE_MS.
   */
  shutdownGraceMs: number;
  /**
   * How long a job's lock outlives a worker that died holding it; the job then runs again
   * elsewhere. Also how often stalled jobs are looked for. RENDERMILL_JOB_LOCK_MS.
   */
  lockMs: number;
}

/**
 * Starts one BullMQ worker per queue of the job catalog and routes each job to its processor,
 * re-validating the payload first (a producer on another version may have queued it).
 * Refuses to start if a job of the catalog has no processor.
 */
export function startWorkers(options: WorkerOptions): RunningWorkers {
  const missing = (Object.keys(JOB_CATALOG) as JobName[]).filter((name) => !options.handlers[name]);
  if (missing.length > 0) throw new Error(`no processor for job(s): ${missing.join(', ')}`);

  const shutdown = new AbortController();
  // Every job in flight may listen for it (a wait in the rate limiter, between retries): as many
  // listeners as RENDERMILL_CONCURRENCY, each removed when its wait ends — not a leak to warn of.
  setMaxListeners(0, shutdown.signal);
  const givingUp = new Set<Promise<void>>();
  /** Jobs handed back to the queue because this process is shutting down, for the log. */
  const handedBack: string[] = [];
  const workers = QUEUE_NAMES.map((queueName) => {
    const worker = new Worker(
      queueName,
      async (job: Job, token?: string) => {
        const name = job.name as JobName;
        const definition = JOB_CATALOG[name];
        if (!definition) throw new UnrecoverableError(`unknown job "${job.name}"`);
        const parsed = definition.payload.safeParse(job.data);
        if (!parsed.success) {
          throw new UnrecoverableError(`invalid ${name} payload: ${parsed.error.message}`);
        }
        const handler = options.handlers[name] as JobHandler<JobName>;
        try {
          await handler.process(parsed.data as never, {
            attempt: job.attemptsMade + 1,
            maxAttempts: job.opts.attempts ?? 1,
            signal: shutdown.signal,
            scheduledFor: scheduledFor(job),
          });
        } catch (error) {
          // Handed back, not failed: the job waits in the queue without losing an attempt —
          // for another worker (shutdown), or until its provider account may be called again.
          if (error instanceof ShutdownError) {
            await job.moveToDelayed(Date.now() + 1_000, token);
            handedBack.push(`${queueName}/${job.id}`);
            options.logger.info(
              { job: job.id, name, queue: queueName, attempt: job.attemptsMade + 1 },
              'shutting down: job handed back to the queue, no attempt used',
            );
            throw new DelayedError();
          }
          if (error instanceof AccountPausedError) {
            await job.moveToDelayed(error.resumeAt + handBackJitterMs(), token);
            throw new DelayedError();
          }
          // Paid for and not finished yet (a queued prediction still running, images waiting
          // for S3, a provider's batch): the job comes back to finish it, its slot free meanwhile.
          if (error instanceof ComeBackLaterError) {
            await job.moveToDelayed(error.recheckAt, token);
            throw new DelayedError();
          }
          throw error;
        }
      },
      {
        connection: options.connection,
        prefix: options.prefix ?? bullPrefixFor(options.connection),
        concurrency: options.concurrency,
        lockDuration: options.lockMs,
        stalledInterval: options.lockMs,
        maxStalledCount: maxStallsOf(queueName),
      },
    );
    worker.on('failed', (job, error) => {
      options.logger.debug(
        { job: job?.id, queue: queueName, err: error.message },
        'job attempt failed',
      );
      if (!job) return;
      const recording = giveUpIfFinal(job, options);
      givingUp.add(recording);
      void recording.finally(() => givingUp.delete(recording));
    });
    worker.on('error', (error) =>
      options.logger.error({ err: error, queue: queueName }, 'worker error'),
    );
    return worker;
  });

  return {
    async close() {
      const graceMs = options.shutdownGraceMs;
      const abort = setTimeout(() => {
        options.logger.info(
          { graceMs },
          'shutdown grace period over: jobs still waiting are handed back to the queue',
        );
        shutdown.abort();
      }, graceMs);
      try {
        // BullMQ's close takes no new jobs and resolves once the active ones have ended.
        await Promise.all(workers.map((w) => w.close()));
        await Promise.all(givingUp); // record outcomes before the connections close
      } finally {
        clearTimeout(abort);
      }
      options.logger.info(
        { handedBack: handedBack.length, jobs: handedBack },
        handedBack.length > 0
          ? `workers closed: ${handedBack.length} job(s) handed back to the queue`
          : 'workers closed: no job handed back',
      );
    },
  };
}

/**
 * How often a job may be found stalled (its worker died while running it) before BullMQ fails
 * it for good: as often as it may fail. BullMQ counts stalls over a job's whole life, and jobs
 * here come back many times without using an attempt — a provider-batch job every poll for up
 * to a day, a render job waiting for the same request's provider batch, prediction or spooled
 * upload every few seconds. With BullMQ's default of 1, the second time every worker was killed
 * while such a job happened to be running failed it for good (`job_failed`), however briefly it
 * ran each time.
 */
function maxStallsOf(queueName: string): number {
  const attempts = Object.values(JOB_CATALOG)
    .filter((definition) => definition.queue === queueName)
    .map((definition) => definition.options.attempts);
  return Math.max(1, ...attempts);
}

/** Spreads jobs handed back for the same pause, so they do not all return in the same instant. */
const handBackJitterMs = () => Math.floor(Math.random() * 1_000);

/** Runs the job's give-up handler once BullMQ has moved it to the failed set for good. */
async function giveUpIfFinal(job: Job, options: WorkerOptions): Promise<void> {
  try {
    if (!(await job.isFailed())) return; // it will be retried
    const handler = options.handlers[job.name as JobName] as JobHandler<JobName> | undefined;
    options.logger.error(
      { job: job.id, name: job.name, reason: job.failedReason },
      'job failed for good',
    );
    const onGiveUp = handler?.onGiveUp;
    // Recording the outcome is what keeps the item from hanging: try past a brief Redis blip.
    if (onGiveUp) await pRetry(() => onGiveUp(job.data, job.failedReason), { retries: 5 });
  } catch (error) {
    options.logger.error({ err: error, job: job.id }, 'recording a failed job did not work');
  }
}

/** A job scheduler's job carries the tick it was made for as `prevMillis` (BullMQ 6). */
function scheduledFor(job: Job): Date | undefined {
  const millis = job.opts.prevMillis;
  return job.repeatJobKey && typeof millis === 'number' ? new Date(millis) : undefined;
}
