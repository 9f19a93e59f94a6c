import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  JOB_CATALOG,
  QUEUE_NAMES,
  type JobHandler,
  type JobHandlers,
  type JobName,
} from '../jobs/catalog.js';

export interface RunningWorkers {
  /** Stops taking jobs, lets active ones finish, then closes connections. */
  close(): Promise<void>;
}

export interface WorkerOptions {
  connection: Redis;
  handlers: JobHandlers;
  logger: Logger;
  /** Jobs processed at once per queue in this process. */
  concurrency: number;
  prefix?: string;
  /**
   * On close, how long in-flight jobs may run on before their provider calls, retry waits and
   * budget waits are aborted (their jobs are then retried elsewhere). Default 10 s.
   */
  shutdownGraceMs?: number;
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
  const workers = QUEUE_NAMES.map((queueName) => {
    const worker = new Worker(
      queueName,
      async (job: Job) => {
        const name = job.name as JobName;
        const definition = JOB_CATALOG[name];
        if (!definition) throw new UnrecoverableError(`unknown job "${job.name}"`);
        const parsed = definition.payload.safeParse(job.data);
        if (!parsed.success) {
          throw new UnrecoverableError(`invalid ${name} payload: ${parsed.error.message}`);
        }
        const handler = options.handlers[name] as JobHandler<JobName>;
        await handler.process(parsed.data as never, {
          attempt: job.attemptsMade + 1,
          maxAttempts: job.opts.attempts ?? 1,
          signal: shutdown.signal,
        });
      },
      {
        connection: options.connection,
        prefix: `${options.prefix ?? 'rm'}:bull`,
        concurrency: options.concurrency,
      },
    );
    worker.on('failed', (job, error) => {
      options.logger.debug(
        { job: job?.id, queue: queueName, err: error.message },
        'job attempt failed',
      );
      if (job) void giveUpIfFinal(job, options);
    });
    worker.on('error', (error) =>
      options.logger.error({ err: error, queue: queueName }, 'worker error'),
    );
    return worker;
  });

  return {
    async close() {
      const abort = setTimeout(() => shutdown.abort(), options.shutdownGraceMs ?? 10_000);
      try {
        await Promise.all(workers.map((w) => w.close()));
      } finally {
        clearTimeout(abort);
      }
    },
  };
}

/** Runs the job's give-up handler once BullMQ has moved it to the failed set for good. */
async function giveUpIfFinal(job: Job, options: WorkerOptions): Promise<void> {
  try {
    if (!(await job.isFailed())) return; // it will be retried
    const handler = options.handlers[job.name as JobName] as JobHandler<JobName> | undefined;
    options.logger.error(
      { job: job.id, name: job.name, reason: job.failedReason },
      'job failed for good',
    );
    await handler?.onGiveUp?.(job.data, job.failedReason);
  } catch (error) {
    options.logger.error({ err: error, job: job.id }, 'recording a failed job did not work');
  }
}
