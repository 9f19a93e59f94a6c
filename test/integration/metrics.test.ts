import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowAllowance } from '../../src/limits/redis-rate-limiter.js';
import { limiterId } from '../../src/redis/redis-keys.js';
import { startWorkerMetricsServer } from '../../src/runtime/metrics-server.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { buildApiForServices } from '../../src/runtime/api-wiring.js';
import { startRenderWorkers } from '../../workers/render-workers.js';
import {
  auth,
  runToManifest,
  startHarness,
  submit,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * GET /metrics as Prometheus reads it, on a real redis-server, s3rver and the simulator: every
 * counter moves by exactly what a batch did. Each test reads deltas, with prompts of its own.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000, latencyMs: 20 },
    env: {
      RENDERMILL_RETRY_BASE_MS: '50',
      RENDERMILL_IMAGES_PER_MINUTE: '60000',
      RENDERMILL_ADMIN_TENANTS: 'acme',
    },
  });
});
afterAll(async () => {
  await h?.stop();
});

const GPT = { model: 'gpt-image-2', size: '256x256', quality: 'low' } as const;

/** One sample of the exposition: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (no escapes in rendermill's label values). */
function parseExposition(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`not an exposition line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
      );
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** Scrapes the API's /metrics: a reader of the values of one moment. */
async function scrape(harness = h) {
  // Without a metrics token, the API's /metrics needs an operator's key (acme is one here).
  const response = await harness.api.inject({ method: 'GET', url: '/metrics', headers: auth() });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toContain('text/plain');
  const samples = parseExposition(response.body);
  /** The value of the sample with these labels (among others); 0 when there is none yet. */
  return (name: string, labels: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name)
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
}

/** What changed between two scrapes. */
const delta =
  (before: Awaited<ReturnType<typeof scrape>>, after: Awaited<ReturnType<typeof scrape>>) =>
  (name: string, labels: Record<string, string> = {}) =>
    after(name, labels) - before(name, labels);

describe('GET /metrics', () => {
  it('counts rendered, derived, failed and cached images, items, spend by tenant and provider latency', async () => {
    h.sim.setKnobs({ contentPolicyPattern: 'forbidden-metrics' });
    const items = [
      { id: 'ok-1', prompt: 'metrics mug one' },
      { id: 'ok-2', prompt: 'metrics mug two' },
      { id: 'bad', prompt: 'a forbidden-metrics mug' },
    ];
    const derive = [{ px: 64, format: 'webp' }];
    const before = await scrape();
    const first = await runToManifest(h, { ...GPT, derive, items });
    const afterFirst = await scrape();
    const changed = delta(before, afterFirst);
    const model = { model: 'gpt-image-2' };

    expect(first.batch.counts).toMatchObject({ succeeded: 2, failed: 1 });
    expect(changed('rendermill_images_total', { ...model, outcome: 'rendered' })).toBe(2);
    expect(changed('rendermill_images_total', { ...model, outcome: 'derived' })).toBe(2);
    expect(changed('rendermill_images_total', { ...model, outcome: 'failed' })).toBe(1);
    expect(changed('rendermill_images_total', { ...model, outcome: 'cached' })).toBe(0);
    expect(changed('rendermill_items_total', { status: 'succeeded' })).toBe(2);
    expect(changed('rendermill_items_total', { status: 'failed' })).toBe(1);
    // One request per item: two answered, one refused for its content (never retried).
    expect(changed('rendermill_provider_request_seconds_count', { ...model, outcome: 'ok' })).toBe(
      2,
    );
    expect(
      changed('rendermill_provider_request_seconds_count', { ...model, outcome: 'rejected' }),
    ).toBe(1);
    expect(changed('rendermill_provider_request_seconds_sum', model)).toBeGreaterThan(0);
    // The simulator answers in ~20 ms: both answers land in the first bucket (≤ 0.1 s) or the next.
    expect(
      changed('rendermill_provider_request_seconds_bucket', {
        ...model,
        outcome: 'ok',
        le: '+Inf',
      }),
    ).toBe(2);
    expect(first.batch.spend_usd).toBeGreaterThan(0);
    expect(changed('rendermill_spend_usd_total', { tenant: 'acme' })).toBeCloseTo(
      first.batch.spend_usd,
      9,
    );
    expect(changed('rendermill_spend_usd_total', { tenant: 'globex' })).toBe(0);

    // The same good rows again: settled from the cache at submission, no job, no call, $0.
    const rerun = await runToManifest(h, { ...GPT, derive, items: items.slice(0, 2) });
    const afterRerun = await scrape();
    const again = delta(afterFirst, afterRerun);
    expect(rerun.batch.counts).toMatchObject({ cached: 2 });
    expect(again('rendermill_images_total', { ...model, outcome: 'cached' })).toBe(2);
    expect(again('rendermill_images_total', { ...model, outcome: 'rendered' })).toBe(0);
    expect(again('rendermill_items_total', { status: 'cached' })).toBe(2);
    expect(again('rendermill_provider_request_seconds_count')).toBe(0);
    expect(again('rendermill_spend_usd_total')).toBe(0);
  });

  it('counts a 429 from the provider by account, and the call that followed it', async () => {
    const before = await scrape();
    h.sim.setKnobs({
      failNext: { count: 1, status: 429, code: 'rate_limit_exceeded', type: 'requests' },
    });
    const manifest = await runToManifest(h, {
      ...GPT,
      items: [{ id: 'limited', prompt: 'metrics rate limited mug' }],
    });
    const changed = delta(before, await scrape());
    expect(manifest.batch.counts).toMatchObject({ succeeded: 1 });
    expect(changed('rendermill_provider_rate_limited_total', { route: 'primary' })).toBe(1);
    expect(changed('rendermill_provider_request_seconds_count', { outcome: 'rate_limited' })).toBe(
      1,
    );
    expect(changed('rendermill_provider_request_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(changed('rendermill_images_total', { outcome: 'rendered' })).toBe(1);
    expect(changed('rendermill_spend_usd_total', { tenant: 'acme' })).toBeCloseTo(
      manifest.batch.spend_usd,
      9,
    );
  });

  it("reports the limiter's headroom and whether the account is paused, read on scrape", async () => {
    // The tests above rendered gpt-image-2, told 60,000 images/min: a window of 1,000 images.
    const headroom = (await scrape())('rendermill_limiter_headroom_images', {
      route: 'primary',
      model: 'gpt-image-2',
    });
    expect(headroom).toBeGreaterThanOrEqual(0);
    expect(headroom).toBeLessThanOrEqual(windowAllowance(60_000));

    const account = h.services.routes[0]!;
    await account.gate.pause(10_000, 'provider_quota_exhausted', 'test pause');
    expect((await scrape())('rendermill_account_paused', { route: 'primary' })).toBe(1);
    // The pause's key (account-gate.ts): gone, the account may be called again.
    await h.services.redis.del(`${limiterId(account.provider.accountId)}:pause`);
    expect((await scrape())('rendermill_account_paused', { route: 'primary' })).toBe(0);
  });

  it('answers on the worker metrics server: /metrics, /healthz, /readyz, 404 elsewhere', async () => {
    const port = await findFreePort();
    const server = await startWorkerMetricsServer({
      ...h.services,
      config: { ...h.services.config, metricsPort: port },
    });
    try {
      expect(server?.port).toBe(port);
      const base = `http://127.0.0.1:${port}`;
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toContain('text/plain');
      const text = await metrics.text();
      expect(text).toContain('# TYPE rendermill_images_total counter');
      expect(text).toContain('# TYPE rendermill_provider_request_seconds histogram');
      expect(text).toContain('rendermill_queue_jobs{queue="render",state="waiting"}');
      expect(text).toContain('process_cpu_user_seconds_total');
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ ready: true, checks: { redis: 'ok', s3: 'ok' } });
      expect((await fetch(`${base}/nothing`)).status).toBe(404);
    } finally {
      await server?.close();
    }
    // Port 0 in the configuration: no server at all.
    const none = await startWorkerMetricsServer({
      ...h.services,
      config: { ...h.services.config, metricsPort: 0 },
    });
    expect(none).toBeUndefined();
  });

  it('keeps the API’s /metrics, which names every tenant, from anyone but an operator', async () => {
    for (const headers of [{}, auth('globex')]) {
      const refused = await h.api.inject({ method: 'GET', url: '/metrics', headers });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.message).toMatch(/RENDERMILL_ADMIN_TENANTS/);
    }
    const allowed = await h.api.inject({ method: 'GET', url: '/metrics', headers: auth('acme') });
    expect(allowed.statusCode).toBe(200);
  });

  it('keeps /metrics behind RENDERMILL_METRICS_TOKEN when one is set, on the API and the worker', async () => {
    const token = 'metrics-token-0123456789';
    const config = { ...h.services.config, metricsToken: token };
    const api = buildApiForServices({ ...h.services, config });
    const port = await findFreePort();
    const server = await startWorkerMetricsServer({
      ...h.services,
      config: { ...config, metricsPort: port },
    });
    try {
      const bare = await api.inject({ method: 'GET', url: '/metrics' });
      expect(bare.statusCode).toBe(401);
      const wrong = await api.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer metrics-token-9999999999' },
      });
      expect(wrong.statusCode).toBe(401);
      const right = await api.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('rendermill_items_total');
      // Probes carry no key: health stays public.
      expect((await api.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/metrics`)).status).toBe(401);
      const allowed = await fetch(`${base}/metrics`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(allowed.status).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await api.close();
      await server?.close();
    }
  });
});

describe('queue gauges', () => {
  let idle: Harness;
  beforeAll(async () => {
    idle = await startHarness({ workers: false, env: { RENDERMILL_ADMIN_TENANTS: 'acme' } });
  });
  afterAll(async () => {
    await idle?.stop();
  });

  it('report the jobs waiting in each queue when scraped', async () => {
    const before = await scrape(idle);
    expect(before('rendermill_queue_jobs', { queue: 'render', state: 'waiting' })).toBe(0);
    const response = await submit(idle, {
      ...GPT,
      items: [1, 2, 3].map((i) => ({ id: `q-${i}`, prompt: `metrics queued mug ${i}` })),
    });
    expect(response.statusCode).toBe(202);
    const after = await scrape(idle);
    expect(after('rendermill_queue_jobs', { queue: 'render', state: 'waiting' })).toBe(3);
    expect(after('rendermill_queue_jobs', { queue: 'render', state: 'active' })).toBe(0);
    expect(after('rendermill_queue_jobs', { queue: 'render', state: 'failed' })).toBe(0);

    // Workers take them: the gauge follows.
    const workers = startRenderWorkers(idle.services);
    try {
      await waitForBatch(idle, response.json<{ id: string }>().id);
      const done = await scrape(idle);
      expect(done('rendermill_queue_jobs', { queue: 'render', state: 'waiting' })).toBe(0);
      expect(done('rendermill_items_total', { status: 'succeeded' })).toBe(3);
    } finally {
      await workers.close();
    }
  });
});
