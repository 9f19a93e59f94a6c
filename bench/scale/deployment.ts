import type { Child } from '../support/children.js';
import { startRendermillProcesses, type BatchView } from '../support/deployment.js';
import { callApi } from '../support/rendermill-api.js';
import type { Stack } from '../support/stack.js';
import { BATCH_POLL_MS, LIMIT_PER_MINUTE, REQUEST, sleep } from './shape.js';

export interface BatchRun {
  batch: BatchView;
  /** Epoch ms just before the POST. */
  postedAt: number;
  /** From just before the POST until a poll saw the batch completed (or the deadline). */
  wallSeconds: number;
}

export interface Deployment {
  api: Child;
  workers: Child[];
  runBatch(
    items: { id: string; prompt: string }[],
    deadlineMs: number,
    log: (line: string) => void,
  ): Promise<BatchRun>;
  /** Error-level lines the processes logged, for the notes. */
  errorLines(): string[];
  stop(): Promise<void>;
}

/**
 * rendermill as production runs it: one `rendermill api` and N `rendermill worker` processes,
 * configured only through the environment with the provider's true limit, so the limiter they
 * share through Redis is what keeps N processes under it.
 */
export async function startRendermill(
  stack: Stack,
  options: { workers: number; concurrency: number },
): Promise<Deployment> {
  const processes = await startRendermillProcesses(stack, {
    workers: options.workers,
    env: {
      RENDERMILL_IMAGES_PER_MINUTE: String(LIMIT_PER_MINUTE),
      RENDERMILL_CONCURRENCY: String(options.concurrency),
    },
  });
  const { apiUrl } = processes;

  return {
    api: processes.api,
    workers: processes.workers,
    stop: processes.stop,
    errorLines: processes.errorLines,
    async runBatch(items, deadlineMs, log) {
      const postedAt = Date.now();
      const started = performance.now();
      const submitted = await callApi<BatchView>(apiUrl, 'POST', '/v1/batches', {
        ...REQUEST,
        items,
      });
      const deadline = Date.now() + deadlineMs;
      let lastLog = Date.now();
      for (;;) {
        const batch = await callApi<BatchView>(apiUrl, 'GET', `/v1/batches/${submitted.id}`);
        if (batch.status === 'completed' || Date.now() > deadline) {
          return { batch, postedAt, wallSeconds: (performance.now() - started) / 1000 };
        }
        if (Date.now() - lastLog >= 10_000) {
          const done =
            batch.counts.total - (batch.counts.queued ?? 0) - (batch.counts.running ?? 0);
          log(`${done}/${batch.counts.total} items done`);
          lastLog = Date.now();
        }
        await sleep(BATCH_POLL_MS);
      }
    },
  };
}
