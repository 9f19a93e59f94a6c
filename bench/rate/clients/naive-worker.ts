import OpenAI from 'openai';
import pLimit from 'p-limit';
import { REQUEST_SHAPE } from '../scenario.js';
import { describeError, readJob, type NaiveJob, type WorkerResult } from './child-job.js';

/**
 * The naive anchor's worker process: what a team writes first. Concurrency capped with
 * p-limit, the official SDK at its defaults (2 retries that honour retry-after), no pacing.
 * An item whose call still fails after the SDK's retries is lost.
 */
const job = readJob<NaiveJob>();
const client = new OpenAI({ baseURL: job.baseUrl, apiKey: 'sk-bench' });
const limit = pLimit(job.concurrency);
const result: WorkerResult = { succeeded: 0, lost: 0, errors: {} };

await new Promise((resolve) => setTimeout(resolve, Math.max(0, job.startAt - Date.now())));
const { model, size, quality } = REQUEST_SHAPE;
const { n } = job;
await Promise.all(
  job.prompts.map((prompt) =>
    limit(async () => {
      try {
        const response = await client.images.generate({ model, prompt, n, size, quality });
        if ((response.data?.length ?? 0) === n) result.succeeded += 1;
        else {
          result.lost += 1;
          result.errors['fewer images than asked'] =
            (result.errors['fewer images than asked'] ?? 0) + 1;
        }
      } catch (error) {
        result.lost += 1;
        const why = describeError(error);
        result.errors[why] = (result.errors[why] ?? 0) + 1;
      }
    }),
  ),
);
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
