import { Worker } from 'bullmq';
import OpenAI from 'openai';
import { REQUEST_SHAPE } from '../scenario.js';
import { readJob, type BullmqJob } from './child-job.js';

/**
 * The BullMQ-limiter anchor's worker process: BullMQ's own `limiter` paces jobs (not images)
 * across every worker of the queue; the SDK does not retry (maxRetries 0), so a 429 fails the
 * attempt and BullMQ's attempts + backoff retry it.
 */
const job = readJob<BullmqJob>();
const client = new OpenAI({ baseURL: job.baseUrl, apiKey: 'sk-bench', maxRetries: 0 });
const { model, size, quality } = REQUEST_SHAPE;
const { n } = job;

const worker = new Worker<{ prompt: string }>(
  job.queue,
  async ({ data }) => {
    const response = await client.images.generate({ model, prompt: data.prompt, n, size, quality });
    if ((response.data?.length ?? 0) !== n) throw new Error('fewer images than asked');
  },
  {
    connection: { url: job.redisUrl, maxRetriesPerRequest: null },
    prefix: job.prefix,
    concurrency: job.concurrency,
    limiter: job.limiter,
  },
);
await worker.waitUntilReady();
process.stdout.write('READY\n');

const stop = () => void worker.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
