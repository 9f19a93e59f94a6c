import path from 'node:path';
import { findFreePort } from '../../src/runtime/free-port.js';
import { startChild, type Child } from '../support/children.js';
import {
  BENCH_API_KEY,
  callApi,
  healthy,
  waitForWorkers,
  waitUntil,
} from '../support/rendermill-api.js';
import { cleanEnv, type Stack } from '../support/stack.js';
import { BATCH_POLL_MS, LIMIT_PER_MINUTE, REQUEST, sleep } from './shape.js';

const CLI = path.resolve('dist/src/cli/main.js');

export interface BatchView {
  id: string;
  status: string;
  completed_at: string | null;
  counts: Record<string, number> & { total: number };
}

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
  const port = await findFreePort();
  const env = cleanEnv({
    ...stack.rendermillEnv(),
    RENDERMILL_IMAGES_PER_MINUTE: String(LIMIT_PER_MINUTE),
    RENDERMILL_CONCURRENCY: String(options.concurrency),
    RENDERMILL_API_KEYS: `bench=${BENCH_API_KEY}`,
    PORT: String(port),
    // Each process would serve /metrics on the same default port: the second could not start.
    RENDERMILL_METRICS_PORT: '0',
  });
  const apiUrl = `http://127.0.0.1:${port}`;
  const api = startChild('rendermill api', process.execPath, [CLI, 'api'], env);
  const workers = Array.from({ length: options.workers }, (_, i) =>
    startChild(`rendermill worker ${i + 1}`, process.execPath, [CLI, 'worker'], env),
  );
  const children = [api, ...workers];
  const stop = async () => {
    await Promise.all(children.map((child) => child.stop()));
  };
  try {
    await waitUntil(
      () => healthy(apiUrl),
      30_000,
      () => `rendermill api never answered:\n${api.output()}`,
    );
    await waitForWorkers(stack.redis.url, options.workers);
  } catch (error) {
    await stop();
    // The shared helper says only how many registered; the workers' own words say why.
    const outputs = workers.map((worker) => `${worker.name}:\n${worker.output() || '(no output)'}`);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n${outputs.join('\n')}`,
    );
  }

  return {
    api,
    workers,
    stop,
    errorLines: () =>
      children.flatMap((child) =>
        child
          .output()
          .split('\n')
          .filter((line) => /"level":(50|60)/.test(line))
          .map((line) => `${child.name}: ${line.slice(0, 300)}`),
      ),
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
