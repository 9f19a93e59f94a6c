import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import { startHarness, submit, waitForBatch, auth, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  // An edit below reads its input from a presigned URL of the local S3 server, on 127.0.0.1.
  h = await startHarness({ env: { RENDERMILL_ALLOW_PRIVATE_URLS: 'true' } });
});
afterAll(async () => {
  await h?.stop();
});
beforeEach(() => {
  h.sim.reset();
  h.sim.setKnobs({
    failNext: undefined,
    contentPolicyPattern: undefined,
    insufficientQuota: false,
    retiredModels: [],
    errorRate: 0,
    latencyMs: 0,
    dropImages: 0,
  });
});

async function runBatch(body: object) {
  const response = await submit(h, body);
  expect(response.statusCode, response.body).toBe(202);
  const batch = await waitForBatch(h, response.json<{ id: string }>().id);
  const manifest = (
    await h.api.inject({ method: 'GET', url: `/v1/batches/${batch.id}/manifest`, headers: auth() })
  ).json<Manifest>();
  return { batch, manifest };
}

describe('the render pipeline', () => {
  it('renders every item, stores real PNGs in S3 and records what each cost', async () => {
    const items = Array.from({ length: 12 }, (_, i) => ({
      id: `sku-${i}`,
      prompt: `product photo ${i}`,
    }));
    const { batch, manifest } = await runBatch({
      model: 'gpt-image-2',
      size: '256x256',
      quality: 'low',
      items,
    });

    expect(batch.counts.succeeded).toBe(12);
    expect(manifest.items.map((i) => i.status)).toEqual(Array(12).fill('succeeded'));
    expect(h.sim.stats().billedImages).toBe(12);

    const first = manifest.items[0]!;
    const stored = await h.s3.storage.get(first.images[0]!.key);
    expect(stored?.contentType).toBe('image/png');
    // Enough metadata for the result cache to be rebuilt from the bucket alone.
    expect(stored?.metadata).toMatchObject({
      'request-hash': first.hash,
      'cost-micros': String(Math.round(first.cost_usd * 1e6)),
    });
    const meta = await sharp(stored!.body).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 256, 256]);
    // The presigned URL in the API's manifest downloads the same bytes.
    const download = Buffer.from(await (await fetch(first.images[0]!.url)).arrayBuffer());
    expect(download.equals(stored!.body)).toBe(true);

    // Spend is exactly the sum of item costs, each settled from the provider's token usage.
    const sum = manifest.items.reduce((s, i) => s + Math.round(i.cost_usd * 1e6), 0);
    expect(Math.round(manifest.batch.spend_usd * 1e6)).toBe(sum);
    expect(sum).toBeGreaterThan(0);
    expect(manifest.batch.reserved_usd).toBe(0);

    // The stored manifest says the same.
    const json = await h.s3.storage.get(`batches/${batch.id}/manifest.json`);
    expect(JSON.parse(json!.body.toString()).items).toHaveLength(12);
    const csv = await h.s3.storage.get(`batches/${batch.id}/manifest.csv`);
    expect(csv!.body.toString().trim().split('\n')).toHaveLength(13);
  });

  it('prices DALL·E 2 per image from the registry', async () => {
    const items = Array.from({ length: 5 }, (_, i) => ({
      id: `d${i}`,
      prompt: `mug ${i}`,
      n: i === 0 ? 3 : 1,
    }));
    const { batch, manifest } = await runBatch({ model: 'dall-e-2', size: '512x512', items });
    expect(batch.spent_micros).toBe(7 * 18_000);
    expect(manifest.items[0]!.images).toHaveLength(3);
    expect(new Set(manifest.items[0]!.images.map((i) => i.key)).size).toBe(3);
    expect(h.sim.stats().billedImages).toBe(7);
  });

  it('never passes the budget, even with 8 jobs racing for it', async () => {
    // $0.016 per image: $0.05 buys exactly 3 of 10.
    const items = Array.from({ length: 10 }, (_, i) => ({ id: `b${i}`, prompt: `budget ${i}` }));
    const { batch } = await runBatch({
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 0.05,
      items,
    });
    expect(batch.counts.succeeded).toBe(3);
    expect(batch.counts.budget_exceeded).toBe(7);
    expect(batch.spent_micros).toBe(48_000);
    expect(h.sim.stats().billedImages).toBe(3);
  });

  it('waits for in-flight reservations rather than refusing items the budget can pay for', async () => {
    // gpt-image-2 at 1024² with quality auto reserves the high-quality price (~$0.133) but is
    // billed medium (~$0.034): refusing whenever reservations fill the budget would stop early.
    const items = Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, prompt: `reserve ${i}` }));
    const { batch, manifest } = await runBatch({ model: 'gpt-image-2', budget_usd: 0.3, items });
    const spent = batch.spent_micros;
    const maxPrice = 4160 * 32 + 'reserve 0'.length * 5;
    expect(spent).toBeLessThanOrEqual(300_000);
    // Every refused item was refused because no more could fit once all in flight had settled.
    expect(spent + maxPrice).toBeGreaterThan(300_000);
    expect(batch.counts.succeeded).toBeGreaterThanOrEqual(4);
    expect(batch.counts.succeeded + batch.counts.budget_exceeded).toBe(10);
    expect(h.sim.stats().billedImages).toBe(batch.counts.succeeded);
    expect(manifest.batch.reserved_usd).toBe(0);
  });

  it('records the cost of a paid result it cannot use, and does not buy it again', async () => {
    h.sim.setKnobs({ dropImages: 1 });
    const { batch, manifest } = await runBatch({
      model: 'dall-e-2',
      size: '256x256',
      items: [{ id: 'short', prompt: 'two mugs', n: 2 }],
    });
    expect(manifest.items[0]!.status).toBe('failed');
    expect(manifest.items[0]!.error?.code).toBe('unusable_result');
    expect(manifest.items[0]!.cost_usd).toBe(0.032);
    expect(batch.spent_micros).toBe(32_000);
    expect(h.sim.stats().requests).toBe(1);
  });

  it('gives an item an outcome even when its job can never run', async () => {
    // A producer on another version queued a payload this worker refuses: the queue gives up
    // on the job at once, and the item must say so instead of staying queued forever.
    const batchId = 'batch_badpayload';
    await h.services.store.create(
      {
        id: batchId,
        tenant: 'acme',
        created_at: new Date().toISOString(),
        budget_micros: undefined,
        metadata: {},
      },
      [
        {
          id: 'x',
          index: 0,
          status: 'queued',
          spec: { operation: 'generate', model: 'dall-e-2', prompt: 'x', size: '256x256', n: 1 },
          hash: 'h',
          cost_micros: 0,
          images: [],
          attempts: 0,
          updated_at: new Date().toISOString(),
        },
      ],
    );
    await h.services.queue
      .queue('render')
      .add(
        'render-item',
        { batchId, itemId: 'x', tenant: 'acme', spec: { model: 42 } },
        { attempts: 3 },
      );
    const batch = await waitForBatch(h, batchId);
    expect(batch.counts.failed).toBe(1);
    const item = await h.services.store.item(batchId, 'x');
    expect(item?.error).toEqual({
      code: 'job_failed',
      message: expect.stringMatching(/invalid render-item payload/),
    });
    expect(h.sim.stats().requests).toBe(0);
  });

  it('edits an image from the bucket with a mask, and makes variations', async () => {
    const square = await sharp({
      create: { width: 256, height: 256, channels: 4, background: '#3366cc' },
    })
      .png()
      .toBuffer();
    const mask = await sharp({
      create: { width: 256, height: 256, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .png()
      .toBuffer();
    await h.s3.storage.put({ key: 'inputs/mug.png', body: square, contentType: 'image/png' });
    await h.s3.storage.put({ key: 'inputs/mask.png', body: mask, contentType: 'image/png' });
    const wide = await sharp({
      create: { width: 300, height: 200, channels: 3, background: '#fff' },
    })
      .png()
      .toBuffer();
    await h.s3.storage.put({ key: 'inputs/wide.png', body: wide, contentType: 'image/png' });

    const { manifest } = await runBatch({
      model: 'dall-e-2',
      size: '256x256',
      items: [
        {
          id: 'edit',
          operation: 'edit',
          prompt: 'put it on a beach',
          image: 'inputs/mug.png',
          mask: 'inputs/mask.png',
        },
        { id: 'variation', operation: 'variation', image: 'inputs/mug.png', n: 2 },
        {
          id: 'from-url',
          operation: 'variation',
          image: await h.s3.storage.presignedUrl('inputs/mug.png', 300),
        },
        { id: 'not-square', operation: 'variation', image: 'inputs/wide.png' },
        { id: 'missing', operation: 'variation', image: 'inputs/nope.png' },
      ],
    });
    const byId = Object.fromEntries(manifest.items.map((i) => [i.id, i]));
    expect(byId.edit!.status).toBe('succeeded');
    expect(byId.variation!.images).toHaveLength(2);
    // The same photo by URL is the same request: hashed by content, it reuses the variation
    // already rendered (or renders the one the other item then reuses).
    expect(byId['from-url']!.hash).toBe(byId.variation!.hash);
    expect(['succeeded', 'cached']).toContain(byId['from-url']!.status);
    expect(byId['not-square']!.error?.code).toBe('invalid_input_image');
    expect(byId['not-square']!.error?.message).toMatch(/300x200; dall-e-2 needs a square image/);
    expect(byId.missing!.error?.message).toMatch(/does not exist/);
    expect(h.sim.stats().byEndpoint).toMatchObject({ edits: 1 });
    expect(h.sim.stats().billedImages).toBe(3); // 1 edit + the 2 variations of the mug
  });
});
