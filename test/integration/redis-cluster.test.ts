import { Writable } from 'node:stream';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.js';
import { CLUSTER_BULL_PREFIX, bullKey } from '../../src/redis/redis-keys.js';
import {
  auth,
  runToManifest,
  startHarness,
  submit,
  waitForBatch,
  type Harness,
} from '../support/harness.js';
import { startTestRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';

/**
 * rendermill on a real Redis Cluster of three masters: batches, the result cache, the budget,
 * Idempotency-Key, schedules, webhook secrets, the rate limiter and the account pause all run
 * against it, and every group of keys one script or transaction touches shares a slot.
 */
let cluster: TestRedisCluster | undefined;
let h: Harness | undefined;
/** Every line rendermill logged at warn or above: Redis errors it retried would show here. */
const problems: string[] = [];

beforeAll(async () => {
  cluster = await startTestRedisCluster(3);
  try {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        problems.push(chunk.toString());
        done();
      },
    });
    h = await startHarness({
      redisEnv: { REDIS_CLUSTER_NODES: cluster.nodes.join(',') },
      simulator: { imagesPerMinute: 60_000, latencyMs: 20 },
      // A schedule is seen firing every second: shorter than the default minimum interval.
      env: { RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: '1' },
      logger: createLogger('warn', sink),
    });
  } catch (error) {
    await cluster.stop();
    throw error;
  }
});
afterAll(async () => {
  try {
    await h?.stop();
  } finally {
    await cluster?.stop();
  }
});

const harness = () => {
  if (!h) throw new Error('the harness did not start');
  return h;
};

/** A plain connection to each master, to look at what it holds. */
async function eachMaster<T>(look: (node: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all(
    cluster!.ports.map(async (port) => {
      const node = new Redis(port, '127.0.0.1');
      try {
        return await look(node);
      } finally {
        node.disconnect();
      }
    }),
  );
}

/** Every key of one master (SCAN: a cluster has to be scanned master by master). */
async function keysOf(node: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await node.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

const GPT = { model: 'gpt-image-2', size: '256x256', quality: 'low' } as const;
const catalog = (tag: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, prompt: `${tag} product ${i}` }));

describe('rendermill on a Redis Cluster of three masters', () => {
  it('runs a batch to completion with its images in S3, then re-runs it for $0', async () => {
    const h = harness();
    expect([h.services.redis.isCluster, h.services.state.isCluster]).toEqual([true, true]);
    const first = await runToManifest(h, { ...GPT, items: catalog('cluster', 10) });
    expect(first.batch.counts).toMatchObject({ succeeded: 10 });
    expect(first.batch.spend_usd).toBeGreaterThan(0);
    const stored = await h.s3.storage.get(first.items[0]!.images[0]!.key);
    expect((await sharp(stored!.body).metadata()).format).toBe('png');
    const billed = h.sim.stats().billedImages;
    expect(billed).toBe(10);

    // Unchanged: settled from the cache index (one slot per request) at submission.
    const again = await submit(h, { ...GPT, items: catalog('cluster', 10) });
    expect(again.json()).toMatchObject({ status: 'completed', counts: { cached: 10 } });
    const rerun = await waitForBatch(h, again.json<{ id: string }>().id);
    expect(rerun.spent_micros).toBe(0);
    expect(rerun.saved_micros).toBe(Math.round(first.batch.spend_usd * 1e6));
    expect(h.sim.stats().billedImages).toBe(billed);
  });

  it('refuses what the budget cannot pay for', async () => {
    const h = harness();
    // $0.016 an image: $0.05 buys 3 of 10.
    const manifest = await runToManifest(h, {
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 0.05,
      items: catalog('budget', 10),
    });
    expect(manifest.batch.counts).toMatchObject({ succeeded: 3, budget_exceeded: 7 });
    expect(manifest.batch.spend_usd).toBeCloseTo(0.048, 6);
  });

  it('replays a request under the same Idempotency-Key', async () => {
    const h = harness();
    const post = () =>
      h.api.inject({
        method: 'POST',
        url: '/v1/batches',
        headers: { ...auth(), 'idempotency-key': 'cluster-order-1' },
        payload: { ...GPT, items: catalog('idempotent', 2) },
      });
    const first = await post();
    const retry = await post();
    expect(first.statusCode).toBe(202);
    expect(retry.json().id).toBe(first.json().id);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    await waitForBatch(h, first.json<{ id: string }>().id);
  });

  it('fires a schedule through a BullMQ job scheduler, and deletes it', async () => {
    const h = harness();
    const created = await h.api.inject({
      method: 'POST',
      url: '/v1/schedules',
      headers: auth(),
      payload: {
        name: 'cluster stickers',
        cron: '* * * * * *',
        timezone: 'UTC',
        template: 'A sticker at {{time}}, take {{variation}}',
        variations: 1,
        ...GPT,
        budget_usd: 1,
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    const deadline = Date.now() + 10_000;
    let batches: { id: string }[] = [];
    while (batches.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const listed = await h.api.inject({
        method: 'GET',
        url: `/v1/batches?schedule_id=${id}`,
        headers: auth(),
      });
      batches = listed.json<{ data: { id: string }[] }>().data;
    }
    expect(batches.length).toBeGreaterThan(0);
    expect((await waitForBatch(h, batches.at(-1)!.id)).counts).toMatchObject({ succeeded: 1 });
    const removed = await h.api.inject({
      method: 'DELETE',
      url: `/v1/schedules/${id}`,
      headers: auth(),
    });
    expect(removed.statusCode).toBe(204);
  });

  it('rotates a webhook secret, teaches a rate window, pauses an account, rebuilds the cache index', async () => {
    const h = harness();
    const rotated = await h.api.inject({
      method: 'POST',
      url: '/v1/webhooks/secret/rotate',
      headers: auth(),
    });
    expect(rotated.statusCode, rotated.body).toBe(200);

    const [account] = h.services.routes;
    // The window's scripts touch five or six keys each (acquire reads the account's pause
    // too): they must share the account's slot.
    const limiter = account!.limits.for('dall-e-2');
    const grant = await limiter.acquire({ images: 1, tokens: 0 });
    await limiter.observe(grant, {
      refused: true,
      limits: { images: 30_000 },
      remaining: {},
      resetMs: {},
      retryAfterMs: 20,
    });
    expect(await limiter.headroom()).toBeGreaterThanOrEqual(0);
    await account!.gate.pause(50, 'provider_auth', 'a test pause');
    expect((await account!.gate.current())?.code).toBe('provider_auth');
    await h.services.cache.rebuildIndex();
  });

  it('spread keys over several masters, with every multi-key group in one slot and no CROSSSLOT', async () => {
    const keys = await eachMaster(keysOf);
    expect(keys.filter((k) => k.length > 0).length).toBeGreaterThan(1);

    // Each group that scripts or transactions touch together lives on a single master.
    const masterIndexes = (pattern: RegExp) =>
      keys.flatMap((k, i) => (k.some((key) => pattern.test(key)) ? [i] : []));
    const bullmq = masterIndexes(new RegExp(`^${escape(CLUSTER_BULL_PREFIX)}:`));
    const ledger = masterIndexes(/^rm:\{batches\}:/);
    expect(bullmq).toHaveLength(1);
    expect(ledger).toHaveLength(1);
    expect(masterIndexes(/^(b_)?rm:limit:/)).toHaveLength(1);
    // …while requests' cache entries, each its own slot, go everywhere.
    expect(masterIndexes(/^rm:cache:\{t-/).length).toBeGreaterThan(1);
    expect(keys.flat()).toContain(bullKey(CLUSTER_BULL_PREFIX, 'render', 'meta'));

    const errors = await eachMaster(async (node) => String(await node.info('errorstats')));
    for (const stats of errors) expect(stats).not.toMatch(/CROSSSLOT/);
    expect(problems.join('')).not.toMatch(/CROSSSLOT|same slot/);
  });
});

const escape = (text: string) => text.replace(/[{}]/g, '\\$&');
