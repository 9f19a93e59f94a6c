import { Worker } from 'bullmq';
import type { RawWorkerJob } from './raw-bullmq.js';

/**
 * The anchor's worker process: a BullMQ Worker whose processor does nothing, so its CPU and
 * throughput are BullMQ's own cost of taking, running and completing a job — the floor under
 * any queue-backed service, rendermill included.
 */
const raw = process.env.BENCH_JOB;
if (!raw) throw new Error('BENCH_JOB is not set: this file is started by the dedupe bench');
const job = JSON.parse(raw) as RawWorkerJob;

const worker = new Worker(job.queue, async () => {}, {
  connection: { url: job.redisUrl, maxRetriesPerRequest: null },
  prefix: job.prefix,
  concurrency: job.concurrency,
});
await worker.waitUntilReady();
process.stdout.write('READY\n');

const stop = () => void worker.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
