import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsServer, type RunningMetricsServer } from '../../src/runtime/metrics-server.js';
import { READINESS_TIMEOUT_MS } from '../../src/metrics/readiness.js';
import { startHarness, type Harness } from '../support/harness.js';

/**
 * /healthz and /readyz as Kubernetes probes them, on the API and on a worker's metrics server.
 * This file has its own harness: it stops its redis-server and its S3 server on purpose.
 */
let h: Harness;
let worker: RunningMetricsServer;
let s3Stopped = false;
beforeAll(async () => {
  h = await startHarness({ workers: false });
  worker = await startMetricsServer({
    metrics: h.services.metrics,
    probes: { redis: h.services.redis, storage: h.services.storage },
    port: 0,
    logger: h.services.logger,
  });
});
afterAll(async () => {
  await worker?.close();
  if (!h) return;
  // The harness's own stop, less the S3 server the last test stopped already.
  await h.api.close();
  await h.workers.close();
  await h.services.close();
  await Promise.all([h.sim.stop(), h.redis?.stop(), s3Stopped ? undefined : h.s3.stop()]);
});

interface ReadyAnswer {
  ready: boolean;
  checks: { redis: string; s3: string };
  failed?: string[];
}

/** The harness's redis-server (this file always has one). */
const redisServer = () => {
  if (!h.redis) throw new Error('the harness was started without a redis-server of its own');
  return h.redis;
};

/** /readyz from the API and from the worker's server, with how long the slower one took. */
async function readyz() {
  const started = Date.now();
  const [api, fromWorker] = await Promise.all([
    h.api.inject({ method: 'GET', url: '/readyz' }),
    fetch(`http://127.0.0.1:${worker.port}/readyz`),
  ]);
  return {
    api: { status: api.statusCode, body: api.json<ReadyAnswer>() },
    worker: { status: fromWorker.status, body: (await fromWorker.json()) as ReadyAnswer },
    ms: Date.now() - started,
  };
}

describe('health endpoints', () => {
  it('/healthz answers without a key and without asking any dependency', async () => {
    const response = await h.api.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ ok: true });
    const fromWorker = await fetch(`http://127.0.0.1:${worker.port}/healthz`);
    expect(fromWorker.status).toBe(200);
    expect(await fromWorker.json()).toEqual({ ok: true });
  });

  it('/readyz is 200 with Redis and S3 reachable, 503 naming redis while it is down, 200 once it is back', async () => {
    const up = await readyz();
    for (const answer of [up.api, up.worker]) {
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ ready: true, checks: { redis: 'ok', s3: 'ok' } });
    }

    redisServer().kill();
    try {
      const down = await readyz();
      for (const answer of [down.api, down.worker]) {
        expect(answer.status).toBe(503);
        expect(answer.body).toMatchObject({
          ready: false,
          failed: ['redis'],
          checks: { s3: 'ok' },
        });
        expect(answer.body.checks.redis).not.toBe('ok');
      }
      // A Redis that is away never refuses a PING by itself: the time limit answers.
      expect(down.ms).toBeLessThan(READINESS_TIMEOUT_MS + 1_500);
    } finally {
      await redisServer().restart();
    }
    // The connections come back by themselves.
    await expect.poll(async () => (await readyz()).api.status, { timeout: 10_000 }).toBe(200);
  });

  it('/readyz is 503 naming s3 when the S3 server is gone', async () => {
    await h.s3.stop();
    s3Stopped = true;
    const down = await readyz();
    for (const answer of [down.api, down.worker]) {
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({
        ready: false,
        failed: ['s3'],
        checks: { redis: 'ok' },
      });
      expect(answer.body.checks.s3).not.toBe('ok');
    }
    expect(down.ms).toBeLessThan(READINESS_TIMEOUT_MS + 1_500);
    // The process itself is fine: liveness must not restart it for a dependency.
    expect((await h.api.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
