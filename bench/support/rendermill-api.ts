import { Queue } from 'bullmq';
import { BULL_PREFIX } from '../../src/redis/redis-keys.js';

/** Whether a `rendermill api` answers its health check. */
export async function healthy(apiUrl: string): Promise<boolean> {
  try {
    return (await fetch(`${apiUrl}/healthz`)).ok;
  } catch {
    return false;
  }
}

/**
 * Workers log "worker started" only at info level and the benches run them at warn, so
 * readiness is read from Redis: BullMQ names each worker's connection after its queue.
 */
export async function waitForWorkers(redisUrl: string, expected: number): Promise<void> {
  const queue = new Queue('render', { connection: { url: redisUrl }, prefix: BULL_PREFIX });
  try {
    await waitUntil(
      async () => (await queue.getWorkersCount()) >= expected,
      30_000,
      () => `fewer than ${expected} rendermill workers registered with Redis after 30 s`,
    );
  } finally {
    await queue.close();
  }
}

export async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  why: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The API key every bench gives its `rendermill api` (tenant `bench`). */
export const BENCH_API_KEY = 'bench-key-0123456789abcdef';

/** One JSON call to a bench's `rendermill api`; throws with the answer on a non-2xx. */
export async function callApi<T>(
  apiUrl: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(`${apiUrl}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${BENCH_API_KEY}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok)
    throw new Error(`${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
