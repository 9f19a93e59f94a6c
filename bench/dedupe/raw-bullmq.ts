import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { startChild } from '../support/children.js';
import { cleanEnv, type Stack } from '../support/stack.js';
import { PhaseMeter } from './load.js';
import { POLL_MS, sleep } from './shape.js';

/** A queue and prefix of its own, so nothing of rendermill's is counted. */
const QUEUE = 'bench-noop';
const PREFIX = 'bench:dedupe';
/** A producer adds in chunks rather than one 10,000-job call (rendermill's API does too). */
const CHUNK = 1_000;

/** What the driver hands the worker process (as JSON in BENCH_JOB). */
export interface RawWorkerJob {
  redisUrl: string;
  queue: string;
  prefix: string;
  concurrency: number;
}

export interface RawBullmqResult {
  jobs: number;
  completed: number;
  failed: number;
  /** From the first addBulk until a poll saw every job completed (or the deadline). */
  seconds: number;
  /** From the first addBulk until the last job's own finishedOn: the same without poll granularity. */
  secondsToLastFinished: number | null;
  itemsPerSecond: number;
  /** CPU seconds per role: the worker process, the producer (this driver), Redis and other. */
  cpuSeconds: Record<string, number>;
  workerCpuMsPerJob: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The anchor: what BullMQ itself does with as many jobs as the catalog has items, with nothing
 * in them — addBulk in chunks from this process, one Worker at rendermill's concurrency in a
 * child process (as a real worker would run), both against the bench's own redis-server.
 */
export async function runRawBullmq(
  stack: Stack,
  options: { jobs: number; concurrency: number; deadlineMs: number },
  log: (line: string) => void,
): Promise<RawBullmqResult> {
  const job: RawWorkerJob = {
    redisUrl: stack.redis.url,
    queue: QUEUE,
    prefix: PREFIX,
    concurrency: options.concurrency,
  };
  // Bench code, not part of the build: run through tsx's loader, like the rate bench's anchors.
  const worker = startChild(
    'raw bullmq worker',
    process.execPath,
    ['--import', 'tsx', path.join(here, 'raw-bullmq-worker.ts')],
    cleanEnv({ BENCH_JOB: JSON.stringify(job) }),
  );
  // Connection options, not a shared client: the queue then owns its connection and closes it.
  const queue = new Queue(QUEUE, { connection: { url: stack.redis.url }, prefix: PREFIX });
  try {
    await worker.waitFor(/READY/);
    await queue.waitUntilReady();
    const cpu = new PhaseMeter();
    cpu.track('workers', worker.pid);
    cpu.track('producer', process.pid);
    cpu.track('redis', stack.redisPid);

    const startedAt = Date.now();
    const started = performance.now();
    for (let first = 0; first < options.jobs; first += CHUNK) {
      const size = Math.min(CHUNK, options.jobs - first);
      await queue.addBulk(
        Array.from({ length: size }, (_, i) => ({ name: 'noop', data: { index: first + i } })),
      );
    }
    const deadline = Date.now() + options.deadlineMs;
    let lastLog = Date.now();
    for (;;) {
      const counts = await queue.getJobCounts('completed', 'failed');
      const completed = counts.completed ?? 0;
      const failed = counts.failed ?? 0;
      if (completed + failed >= options.jobs || Date.now() > deadline) {
        const seconds = (performance.now() - started) / 1000;
        const cpuSeconds = cpu.finish();
        // The completed set is ordered by finish time: its newest entry finished last.
        const [last] = await queue.getCompleted(0, 0);
        return {
          jobs: options.jobs,
          completed,
          failed,
          seconds,
          secondsToLastFinished:
            last?.finishedOn === undefined ? null : (last.finishedOn - startedAt) / 1000,
          itemsPerSecond: completed / seconds,
          cpuSeconds,
          workerCpuMsPerJob: ((cpuSeconds.workers ?? 0) * 1000) / Math.max(1, completed),
        };
      }
      if (Date.now() - lastLog >= 5_000) {
        log(`${completed + failed}/${options.jobs} jobs done`);
        lastLog = Date.now();
      }
      await sleep(POLL_MS);
    }
  } finally {
    // Its 10,000 completed jobs stay in Redis until the next repetition's FLUSHALL.
    await worker.stop();
    await queue.close();
  }
}
