import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging.js';
import S3rver from 's3rver';
import { startServices, type Services } from '../../src/runtime/services.js';
import { ImageSpool } from '../../src/storage/image-spool.js';
import { startRenderWorkers } from '../../workers/render-workers.js';
import type { RunningWorkers } from '../../workers/worker.js';
import { auth, startHarness, submit, waitForBatch, type Harness } from '../support/harness.js';

/**
 * S3 goes away for 15 s in the middle of a batch rendered by two worker processes: images
 * bought meanwhile wait in the spool in Redis and are uploaded once S3 is back, so every
 * unique prompt is billed exactly once and the batch's spend is what the provider billed.
 */

const BUCKET = 'rendermill';
/** dall-e-2 at 256x256 costs $0.016 an image, whatever the prompt: spend is images × this. */
const DALL_E_2_256_MICROS = 16_000;
const OUTAGE_MS = 15_000;

let h: Harness;
/** The bucket both workers write to: stopped and started again on the same port and folder. */
let s3: BucketServer;
let s3Dir: string;
let second: { services: Services; workers: RunningWorkers };

beforeAll(async () => {
  s3Dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-s3-outage-'));
  s3 = await startBucketServer(s3Dir);
  h = await startHarness({
    // Slow, uneven renders: S3 stops with calls in flight and most of the batch still to come.
    simulator: { latencyMs: 300, latencyJitterMs: 500 },
    env: { AWS_ENDPOINT_URL_S3: s3.endpoint, RENDERMILL_CONCURRENCY: '6' },
  });
  const services = await startServices(loadConfig(h.env), createLogger('silent'), {
    embed: false,
    provider: true,
  });
  second = { services, workers: startRenderWorkers(services) };
});

afterAll(async () => {
  await second?.workers.close();
  await second?.services.close();
  await h?.stop();
  await s3?.stop();
  await rm(s3Dir, { recursive: true, force: true });
});

it('buys every image once through a 15 s S3 outage mid-batch, with two workers', async () => {
  const unique = 100;
  // Every fifth of the first 100 prompts is asked twice: 120 items, 100 purchases.
  const prompts = [
    ...Array.from({ length: unique }, (_, i) => `outage product ${i}`),
    ...Array.from({ length: 20 }, (_, i) => `outage product ${i * 5}`),
  ];
  const response = await submit(h, {
    model: 'dall-e-2',
    size: '256x256',
    items: prompts.map((prompt, i) => ({ id: `item-${i}`, prompt })),
  });
  expect(response.statusCode, response.body).toBe(202);
  const id = response.json<{ id: string }>().id;

  // Images are being bought when S3 goes: they are paid for, and cannot be stored.
  await until(
    async () =>
      ((await h.services.store.get(id))?.counts.succeeded ?? 0) >= 15 &&
      h.sim.stats().inFlight >= 4,
  );
  const stoppedWith = (await h.services.store.get(id))!.counts;
  await s3.stop();
  const spool = new ImageSpool(h.services.state, h.services.config.spool);
  let mostSpooled = 0;
  for (const end = Date.now() + OUTAGE_MS; Date.now() < end;) {
    mostSpooled = Math.max(mostSpooled, (await spool.entries()).length);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  s3 = await startBucketServer(s3Dir, s3.port);

  const batch = await waitForBatch(h, id, 150_000);
  expect(stoppedWith.succeeded + stoppedWith.cached).toBeLessThan(prompts.length);
  // Images bought while S3 was away waited in the spool.
  expect(mostSpooled).toBeGreaterThan(0);
  expect(batch.counts.succeeded + batch.counts.cached).toBe(prompts.length);

  const stats = h.sim.stats();
  const billedPrompts = Object.entries(stats.billedImagesByPrompt);
  expect(billedPrompts).toHaveLength(unique);
  expect(billedPrompts.filter(([, images]) => images !== 1)).toEqual([]);
  expect(stats.billedImages).toBe(unique);
  expect(batch.spent_micros).toBe(stats.billedImages * DALL_E_2_256_MICROS);
  expect(batch.reserved_micros).toBe(0);

  // Every image is in the bucket, and nothing is left waiting in the spool.
  const items = await h.services.store.items(id);
  for (const item of items) {
    expect(item.spooled).toBeUndefined();
    for (const image of item.images) expect(await h.services.storage.head(image.key)).toBeDefined();
  }
  expect(await spool.entries()).toEqual([]);
  expect(await spool.usedBytes()).toBe(0);
}, 200_000);

it('fails an item whose paid images the full spool cannot keep, its price counted, never bought again', async () => {
  // A spool of about 1 KB: no image fits.
  await withOwnBucket({ RENDERMILL_SPOOL_MAX_MB: '0.001' }, async (own, bucket) => {
    const id = await submitTwo(own, 'full spool');
    await until(async () => own.sim.stats().inFlight === 2);
    await bucket.stop();
    await until(async () => (await own.services.store.get(id))?.counts.failed === 2);
    await bucket.start();
    const batch = await waitForBatch(own, id, 60_000);

    expect(own.sim.stats().billedImages).toBe(2);
    expect(batch.spent_micros).toBe(2 * DALL_E_2_256_MICROS);
    for (const item of await own.services.store.items(id)) {
      expect(item.status).toBe('failed');
      expect(item.error?.code).toBe('spool_full');
      expect(item.error?.message).toMatch(/\$0\.016, stays counted as spent/);
      expect(item.cost_micros).toBe(DALL_E_2_256_MICROS);
    }
    expect(await spoolOf(own).entries()).toEqual([]);
  });
}, 120_000);

it('stores the spooled images of a cancelled batch for reuse once S3 is back', async () => {
  await withOwnBucket({}, async (own, bucket) => {
    const id = await submitTwo(own, 'cancelled while spooled');
    await until(async () => own.sim.stats().inFlight === 2);
    await bucket.stop();
    await until(async () => (await spoolOf(own).entries()).length === 2);
    const cancel = await own.api.inject({
      method: 'POST',
      url: `/v1/batches/${id}/cancel`,
      headers: auth(),
    });
    expect(cancel.statusCode, cancel.body).toBe(200);
    await bucket.start();
    const batch = await waitForBatch(own, id, 60_000);

    expect(batch.status).toBe('cancelled');
    expect(batch.counts.cancelled).toBe(2);
    expect(batch.spent_micros).toBe(2 * DALL_E_2_256_MICROS);
    expect(await spoolOf(own).entries()).toEqual([]);
    // Paid for, so kept: the same prompts again cost nothing.
    const again = await submitTwo(own, 'cancelled while spooled');
    const rerun = await waitForBatch(own, again, 30_000);
    expect(rerun.counts.cached).toBe(2);
    expect(rerun.spent_micros).toBe(0);
    expect(own.sim.stats().billedImages).toBe(2);
  });
}, 120_000);

/**
 * Runs `test` against a harness of its own whose bucket it may stop and start, with slow
 * renders (1.5 s) so that S3 can be stopped with calls in flight.
 */
async function withOwnBucket(
  env: Record<string, string>,
  test: (own: Harness, bucket: { stop(): Promise<void>; start(): Promise<void> }) => Promise<void>,
) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-s3-own-'));
  let server = await startBucketServer(dir);
  let running = true;
  const bucket = {
    stop: async () => {
      running = false;
      await server.stop();
    },
    start: async () => {
      server = await startBucketServer(dir, server.port);
      running = true;
    },
  };
  const own = await startHarness({
    simulator: { latencyMs: 1_500 },
    env: { AWS_ENDPOINT_URL_S3: server.endpoint, ...env },
  });
  try {
    await test(own, bucket);
  } finally {
    await own.stop();
    if (running) await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Submits two dall-e-2 items with prompts starting `prompt`; returns the batch id. */
async function submitTwo(own: Harness, prompt: string): Promise<string> {
  const response = await submit(own, {
    model: 'dall-e-2',
    size: '256x256',
    items: [
      { id: 'a', prompt: `${prompt} a` },
      { id: 'b', prompt: `${prompt} b` },
    ],
  });
  expect(response.statusCode, response.body).toBe(202);
  return response.json<{ id: string }>().id;
}

const spoolOf = (own: Harness) => new ImageSpool(own.services.state, own.services.config.spool);

async function until(condition: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface BucketServer {
  endpoint: string;
  port: number;
  /** Stops at once: connections kept alive are cut too, as when the server goes away. */
  stop(): Promise<void>;
}

/** An s3rver storing under `dir` (kept across restarts), on `port` or a free one. */
async function startBucketServer(dir: string, port = 0): Promise<BucketServer> {
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory: dir,
    configureBuckets: [{ name: BUCKET }],
  });
  const address = await server.run();
  const http = (server as unknown as { httpServer: import('node:http').Server }).httpServer;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    stop: async () => {
      const closed = server.close();
      http.closeAllConnections();
      await closed;
    },
  };
}
