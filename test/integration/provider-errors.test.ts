import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import { startHarness, submit, waitForBatch, auth, type Harness } from '../support/harness.js';

/**
 * The provider error table, one row per test, against the simulator: what each answer makes
 * rendermill do. Retries are few and short here so that the rows that give up do so quickly.
 */
let h: Harness;
const RETRIES = 3;
beforeAll(async () => {
  h = await startHarness({
    env: {
      RENDERMILL_RETRIES: String(RETRIES),
      RENDERMILL_RETRY_BASE_MS: '50',
      // A quota or key pause shorter than the longest backoff must still hand items back.
      RENDERMILL_RETRY_MAX_MS: '5000',
      RENDERMILL_ACCOUNT_RECHECK_MS: '2500',
      RENDERMILL_REQUEST_TIMEOUT_MS: '1000',
    },
  });
});
afterAll(async () => {
  await h?.stop();
});
beforeEach(async () => {
  h.sim.reset();
  h.sim.setKnobs({
    imagesPerMinute: 6000,
    failNext: undefined,
    contentPolicyPattern: undefined,
    insufficientQuota: false,
    retiredModels: [],
    errorRate: 0,
    resetRate: 0,
    slowRate: 0,
    apiKeys: undefined,
    forbiddenKeys: [],
  });
  // Each row starts with the account neither paused nor slowed down by the previous one.
  const keys = await h.services.redis.keys('rm:limit:*');
  const own = keys.filter((k) => k.endsWith(':pause') || k.endsWith(':rate'));
  if (own.length > 0) await h.services.redis.del(...own);
});

const DALLE2 = { model: 'dall-e-2', size: '256x256' };

async function start(body: object) {
  const response = await submit(h, body);
  expect(response.statusCode, response.body).toBe(202);
  return response.json<{ id: string }>().id;
}

async function manifestOf(batchId: string) {
  const batch = await waitForBatch(h, batchId);
  const response = await h.api.inject({
    method: 'GET',
    url: `/v1/batches/${batchId}/manifest`,
    headers: auth(),
  });
  return { batch, manifest: response.json<Manifest>() };
}

/** Polls the item until `check` holds, for rows whose items wait in the queue. */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('provider errors decide what happens', () => {
  it('429 rate limit: backs off, honours the wait, retries, and every item succeeds', async () => {
    // The provider allows 60/min (one at a time); rendermill was told ten times that.
    h.sim.setKnobs({ imagesPerMinute: 60 });
    const started = Date.now();
    const items = Array.from({ length: 4 }, (_, i) => ({ id: `r${i}`, prompt: `rate ${i}` }));
    const { batch } = await manifestOf(await start({ ...DALLE2, items }));
    expect(batch.counts.succeeded).toBe(4);
    const stats = h.sim.stats();
    expect(stats.rateLimited).toBeGreaterThan(0);
    expect(stats.billedImages).toBe(4);
    // It waited for the provider's window rather than hammering: 4 images at 1/s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    expect(stats.rateLimited).toBeLessThanOrEqual(8);
  });

  it('429 insufficient_quota: stops calling the account; items stay queued and say why', async () => {
    h.sim.setKnobs({ insufficientQuota: true });
    const id = await start({
      ...DALLE2,
      items: [
        { id: 'q1', prompt: 'x' },
        { id: 'q2', prompt: 'y' },
      ],
    });
    const item = await until(
      () => h.services.store.item(id, 'q2'),
      (i) => i?.error?.code === 'provider_quota_exhausted',
    );
    expect(item!.status).toBe('queued');
    expect(item!.error!.message).toMatch(/out of quota.*items stay queued/);
    // The account is left alone while paused: no retry storm.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const calls = h.sim.stats().requests;
    expect(calls).toBeLessThanOrEqual(2);

    h.sim.setKnobs({ insufficientQuota: false }); // billing fixed: the recheck finds out
    const { batch } = await manifestOf(id);
    expect(batch.counts.succeeded).toBe(2);
    expect(h.sim.stats().billedImages).toBe(2);
  });

  it('429 with a spend-limit code is treated like insufficient_quota', async () => {
    h.sim.setKnobs({
      failNext: { count: 1, status: 429, code: 'billing_hard_limit_reached', type: 'requests' },
    });
    const id = await start({ ...DALLE2, items: [{ id: 's', prompt: 'spend' }] });
    await until(
      () => h.services.store.item(id, 's'),
      (i) => i?.error?.code === 'provider_quota_exhausted' && i.status === 'queued',
    );
    const { batch } = await manifestOf(id);
    expect(batch.counts.succeeded).toBe(1);
    expect(h.sim.stats().byStatus['429']).toBe(1); // one refusal, then one call after the pause
  });

  it('400 content policy: the item fails with the provider’s reason, never retried', async () => {
    h.sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    const { manifest } = await manifestOf(
      await start({
        model: 'gpt-image-2',
        size: '256x256',
        items: [
          { id: 'ok', prompt: 'a teapot' },
          { id: 'bad', prompt: 'a forbidden teapot' },
        ],
      }),
    );
    const bad = manifest.items.find((i) => i.id === 'bad')!;
    expect(bad.status).toBe('failed');
    expect(bad.error?.code).toBe('moderation_blocked');
    expect(bad.cost_usd).toBe(0);
    expect(manifest.items.find((i) => i.id === 'ok')!.status).toBe('succeeded');
    expect(h.sim.stats().byEndpoint.generations).toBe(2);
  });

  it.each([
    ['401', { apiKeys: ['sk-someone-else'] }, /refused the API key \(401\)/],
    ['403', { forbiddenKeys: ['sk-harness'] }, /refused the API key \(403\)/],
  ])(
    '%s: pauses the account with a clear message until the key works',
    async (status, knobs, why) => {
      h.sim.setKnobs(knobs);
      // A prompt of its own: a request rendered before would come from the cache, with no call.
      const id = await start({ ...DALLE2, items: [{ id: 'k', prompt: `key ${status}` }] });
      const item = await until(
        () => h.services.store.item(id, 'k'),
        (i) => i?.error?.code === 'provider_auth',
      );
      expect(item!.status).toBe('queued');
      expect(item!.error!.message).toMatch(why);
      expect(item!.error!.message).toMatch(/fix the account or its key/);
      h.sim.setKnobs({ apiKeys: undefined, forbiddenKeys: [] });
      const { batch } = await manifestOf(id);
      expect(batch.counts.succeeded).toBe(1);
    },
  );

  it('404 model_not_found: the item fails with "model retired or unknown", no retry', async () => {
    h.sim.setKnobs({ retiredModels: ['dall-e-3'] });
    const { manifest } = await manifestOf(
      await start({ model: 'dall-e-3', items: [{ id: 'r', prompt: 'x' }] }),
    );
    expect(manifest.items[0]!.error).toEqual({
      code: 'model_unavailable',
      message: expect.stringContaining('model retired or unknown'),
    });
    expect(h.sim.stats().requests).toBe(1);
  });

  it('5xx: retried, and paid once when it recovers', async () => {
    h.sim.setKnobs({ failNext: { count: 2, status: 503 } });
    const { manifest } = await manifestOf(
      await start({ ...DALLE2, items: [{ id: 'a', prompt: 'retry me' }] }),
    );
    expect(manifest.items[0]!.status).toBe('succeeded');
    expect(h.sim.stats().byStatus['503']).toBe(2);
    expect(h.sim.stats().billedImages).toBe(1);
    expect(manifest.batch.spend_usd).toBe(0.016);
  });

  // An answer that never came may have been billed (the simulator bills a timed-out request
  // once its delay is over): each such request counts as spent at its maximum price.
  it.each([
    ['5xx', { errorRate: 1 }, /provider error 50\d/, 0],
    ['timeouts', { slowRate: 1, slowMs: 1_500 }, /timed out/i, RETRIES + 1],
    ['connection resets', { resetRate: 1 }, /provider unreachable/, RETRIES + 1],
  ])(
    '%s that never stop: retried up to the limit, then the item fails with the last error',
    async (kind, knobs, why, countedAsSpent) => {
      h.sim.setKnobs(knobs);
      const { manifest } = await manifestOf(
        await start({ ...DALLE2, items: [{ id: 'f', prompt: `fail: ${kind}` }] }),
      );
      const item = manifest.items[0]!;
      expect(item.status).toBe('failed');
      expect(item.error?.code).toBe('provider_unavailable');
      expect(item.error?.message).toMatch(why);
      expect(h.sim.stats().requests).toBe(RETRIES + 1); // one job attempt: nothing retries forever
      expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(countedAsSpent * 16_000);
      expect(item.cost_usd).toBe(manifest.batch.spend_usd);
      expect(manifest.batch.reserved_usd).toBe(0);
      // Never under the provider's own count.
      expect(manifest.batch.spend_usd * 1e6).toBeGreaterThanOrEqual(
        h.sim.stats().billedImages * 16_000,
      );
    },
  );

  it('a timed-out request is spent: the next try needs budget of its own, or is not made', async () => {
    h.sim.setKnobs({ slowRate: 1, slowMs: 1_500 });
    const { manifest } = await manifestOf(
      await start({ ...DALLE2, budget_usd: 0.02, items: [{ id: 't', prompt: 'one try only' }] }),
    );
    const item = manifest.items[0]!;
    expect(item.status).toBe('budget_exceeded');
    expect(item.error?.message).toMatch(
      /got no answer was counted as spent \(\$0\.016\).*cannot hold another try/,
    );
    expect(h.sim.stats().requests).toBe(1);
    expect(manifest.batch.spend_usd).toBe(0.016);
    expect(manifest.batch.spend_usd).toBeLessThanOrEqual(0.02);
  });
});
