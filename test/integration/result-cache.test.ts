import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import { requestHash } from '../../src/models/request-hash.js';
import {
  auth,
  runToManifest,
  startHarness,
  submit,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * Paying once per image: the result cache, single-flight and derived copies, on a real
 * redis-server, s3rver and the simulator. Every test uses prompts of its own, since the cache
 * is shared by the whole suite's harness — as it is by a deployment.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ simulator: { imagesPerMinute: 60_000, latencyMs: 150 } });
});
afterAll(async () => {
  await h?.stop();
});

const GPT = { model: 'gpt-image-2', size: '256x256', quality: 'low' } as const;

const run = (body: object, tenant: 'acme' | 'globex' = 'acme') => runToManifest(h, body, tenant);

const catalog = (tag: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, prompt: `${tag} product ${i}` }));

describe('the result cache', () => {
  it('re-runs an unchanged catalog for $0, with no provider call, and says what it saved', async () => {
    const first = await run({ ...GPT, items: catalog('rerun', 10) });
    const billed = h.sim.stats().billedImages;
    expect(first.totals).toMatchObject({ images: 10, images_cached: 0 });

    // One row changed: only that one is bought.
    const rows = catalog('rerun', 10);
    rows[3] = { id: 'rerun-3', prompt: 'rerun product 3, now in blue' };
    const second = await run({ ...GPT, items: rows });
    expect(h.sim.stats().billedImages - billed).toBe(1);
    expect(second.batch.counts).toMatchObject({ cached: 9, succeeded: 1 });
    const unchanged = second.items.filter((item) => item.id !== 'rerun-3');
    for (const item of unchanged) {
      const before = first.items.find((i) => i.id === item.id)!;
      expect(item.cost_usd).toBe(0);
      expect(item.saved_usd).toBe(before.cost_usd);
      expect(item.images.map((i) => i.key)).toEqual(before.images.map((i) => i.key));
      expect(item.images[0]!.cached).toBe(true);
    }
    const spentOnChange = second.items.find((i) => i.id === 'rerun-3')!.cost_usd;
    expect(second.batch.spend_usd).toBe(spentOnChange);
    const savedMicros = unchanged.reduce((sum, i) => sum + Math.round(i.saved_usd * 1e6), 0);
    expect(Math.round(second.totals.saved_by_cache_usd * 1e6)).toBe(savedMicros);
    expect(second.totals.images_cached).toBe(9);

    // Unchanged entirely: settled at submission from the index, no job queued at all.
    const response = await submit(h, { ...GPT, items: catalog('rerun', 10) });
    expect(response.json<{ status: string; counts: object }>()).toMatchObject({
      status: 'completed',
      counts: { cached: 10, queued: 0 },
    });
    const third = await waitForBatch(h, response.json<{ id: string }>().id);
    expect(third.saved_micros).toBe(Math.round(first.batch.spend_usd * 1e6));
    expect(h.sim.stats().billedImages - billed).toBe(1);
  });

  it('buys a request asked by several rows, items or batches at once exactly once', async () => {
    const billed = h.sim.stats().billedImages;
    const rows = [
      ...Array.from({ length: 6 }, (_, i) => ({ id: `dup-a${i}`, prompt: 'a  duplicated mug ' })),
      ...Array.from({ length: 4 }, (_, i) => ({ id: `dup-b${i}`, prompt: 'a duplicated plate' })),
    ];
    // Two batches with the same rows, submitted together: 20 items, 2 distinct requests.
    const [a, b] = await Promise.all([
      run({ ...GPT, items: rows }),
      run({ ...GPT, items: rows.map((r) => ({ ...r, id: `other-${r.id}` })) }),
    ]);
    expect(h.sim.stats().billedImages - billed).toBe(2);
    const statuses = [...a.items, ...b.items].map((i) => i.status);
    expect(statuses.filter((s) => s === 'succeeded')).toHaveLength(2);
    expect(statuses.filter((s) => s === 'cached')).toHaveLength(18);
    const mugKeys = new Set(
      [...a.items, ...b.items]
        .filter((i) => i.prompt?.includes('mug'))
        .map((i) => i.images[0]!.key),
    );
    expect(mugKeys.size).toBe(1); // whitespace does not make a new request
  });

  it('keeps the variants of n: n=2 stores two, a later n=3 reuses them and renders one', async () => {
    const billed = h.sim.stats().billedImages;
    const two = await run({ ...GPT, n: 2, items: [{ id: 'v', prompt: 'variant teapot' }] });
    expect(two.items[0]!.images).toHaveLength(2);
    expect(h.sim.stats().billedImages - billed).toBe(2);

    const three = await run({ ...GPT, n: 3, items: [{ id: 'v', prompt: 'variant teapot' }] });
    const images = three.items[0]!.images;
    expect(images.map((i) => i.cached)).toEqual([true, true, false]);
    expect(images.slice(0, 2).map((i) => i.key)).toEqual(two.items[0]!.images.map((i) => i.key));
    expect(new Set(images.map((i) => i.key)).size).toBe(3);
    expect(h.sim.stats().billedImages - billed).toBe(3);
    expect(three.items[0]!.status).toBe('succeeded');
    expect(three.items[0]!.saved_usd).toBeGreaterThan(0);

    // n=1 of the same request is a pure hit.
    const one = await run({ ...GPT, n: 1, items: [{ id: 'v', prompt: 'variant teapot' }] });
    expect(one.items[0]!.status).toBe('cached');
    expect(h.sim.stats().billedImages - billed).toBe(3);
  });

  it('renders again when a batch asks to refresh, and later batches reuse the new images', async () => {
    const items = [{ id: 'r', prompt: 'refresh lamp' }];
    const first = await run({ ...GPT, items });
    const billed = h.sim.stats().billedImages;
    const fresh = await run({ ...GPT, cache: 'refresh', items });
    expect(fresh.items[0]!.status).toBe('succeeded');
    expect(h.sim.stats().billedImages - billed).toBe(1);
    const stored = await h.s3.storage.get(fresh.items[0]!.images[0]!.key);
    const again = await run({ ...GPT, items });
    expect(again.items[0]!.status).toBe('cached');
    expect(again.items[0]!.images[0]!.key).toBe(first.items[0]!.images[0]!.key);
    const reused = await h.s3.storage.get(again.items[0]!.images[0]!.key);
    expect(reused!.body.equals(stored!.body)).toBe(true);
    expect(h.sim.stats().billedImages - billed).toBe(1);
  });

  it('answers from S3 when Redis has lost everything', async () => {
    const items = catalog('flush', 5);
    const first = await run({ ...GPT, items });
    const billed = h.sim.stats().billedImages;
    await h.services.redis.flushall();

    const second = await run({ ...GPT, items });
    expect(h.sim.stats().billedImages).toBe(billed);
    expect(second.batch.counts.cached).toBe(5);
    expect(second.items.map((i) => i.images[0]!.key)).toEqual(
      first.items.map((i) => i.images[0]!.key),
    );
    // The index was rebuilt with what each image cost, so the savings are still known.
    expect(second.totals.saved_by_cache_usd).toBe(first.batch.spend_usd);
  });

  it('keeps each tenant’s renders to itself', async () => {
    const items = [{ id: 't', prompt: 'tenant secret prototype' }];
    await run({ ...GPT, items }, 'acme');
    const billed = h.sim.stats().billedImages;
    const other = await run({ ...GPT, items }, 'globex');
    expect(other.items[0]!.status).toBe('succeeded');
    expect(h.sim.stats().billedImages - billed).toBe(1);
  });

  it('makes derived copies at $0, stored beside the image, and reuses them too', async () => {
    const derive = [
      { px: 128, format: 'webp' },
      { px: 64, format: 'avif' },
    ];
    const billed = h.sim.stats().billedImages;
    const first = await run({ ...GPT, derive, items: [{ id: 'd', prompt: 'derived vase' }] });
    const image = first.items[0]!.images[0]!;
    expect(image.derived.map((d) => d.name)).toEqual(['128px.webp', '64px.avif']);
    const folder = image.key.slice(0, image.key.lastIndexOf('/') + 1);
    for (const [copy, format, width] of [
      [image.derived[0]!, 'webp', 128],
      [image.derived[1]!, 'heif', 64], // sharp reports AVIF as its container, HEIF
    ] as const) {
      expect(copy.key.startsWith(folder)).toBe(true);
      const stored = await h.s3.storage.get(copy.key);
      const meta = await sharp(stored!.body).metadata();
      expect([meta.format, meta.width, meta.height]).toEqual([format, width, width]);
    }
    expect(first.totals.derived_images).toBe(2);

    // A later batch asking one more size: the image is reused, only the new copy is made.
    const more = [...derive, { px: 32, format: 'png' }];
    const second = await run({
      ...GPT,
      derive: more,
      items: [{ id: 'd', prompt: 'derived vase' }],
    });
    expect(second.items[0]!.status).toBe('cached');
    expect(second.items[0]!.images[0]!.derived.map((d) => d.key)).toEqual([
      ...image.derived.map((d) => d.key),
      `${folder}0-32px.png`,
    ]);
    expect(h.sim.stats().billedImages - billed).toBe(1);
    const csv = await h.s3.storage.get(`batches/${second.batch.id}/manifest.csv`);
    expect(csv!.body.toString()).toContain(`${folder}0-32px.png`);
  });

  it('refuses a derivation asked twice, naming it', async () => {
    const response = await submit(h, {
      ...GPT,
      derive: [
        { px: 64, format: 'webp' },
        { px: 64, format: 'webp' },
      ],
      items: [{ id: 'x', prompt: 'x' }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json<{ error: { message: string } }>().error.message).toMatch(
      /derive\[1\].*64px\.webp twice/,
    );
  });

  it('writes manifest.json, .csv and .jsonl with the batch totals', async () => {
    const manifest = await run({ ...GPT, budget_usd: 1, items: catalog('files', 3) });
    const id = manifest.batch.id;
    const [json, csv, jsonl] = await Promise.all(
      ['json', 'csv', 'jsonl'].map((ext) => h.s3.storage.get(`batches/${id}/manifest.${ext}`)),
    );
    const stored = JSON.parse(json!.body.toString()) as Manifest;
    expect(stored.partial).toBe(false);
    expect(stored.totals).toMatchObject({ items: 3, images: 3, budget_usd: 1 });
    expect(stored.totals.budget_left_usd).toBeCloseTo(1 - stored.totals.spend_usd, 6);
    expect(csv!.body.toString().trim().split('\n')).toHaveLength(4);
    const lines = jsonl!.body
      .toString()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['batch', 'item', 'item', 'item']);
    expect(jsonl!.contentType).toBe('application/x-ndjson');
  });

  it('estimates a batch before it is submitted, with the cache’s answer and no call', async () => {
    await run({ model: 'dall-e-2', size: '256x256', items: catalog('estimate', 3) });
    const billed = h.sim.stats().billedImages;
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches/estimate',
      headers: auth(),
      payload: {
        model: 'dall-e-2',
        size: '256x256',
        budget_usd: 0.05,
        items: [...catalog('estimate', 3), ...catalog('estimate-new', 4)],
      },
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toEqual({
      mode: 'realtime',
      items: 7,
      items_cached: 3,
      items_to_render: 4,
      images_to_render: 4,
      max_usd: 0.064, // 4 × $0.016: DALL·E 2 is priced per image
      typical_usd: 0.064,
      saved_usd: 0.048,
      budget_usd: 0.05,
      fits_budget: false,
      images_per_minute: 60000,
      eta_seconds: 1, // 4 images at 60,000/min
      routing: 'priority',
      routes: [
        {
          route: 'primary',
          model: 'dall-e-2',
          images: 4,
          max_usd: 0.064,
          typical_usd: 0.064,
          images_per_minute: 60000,
          eta_seconds: 1,
        },
      ],
      rejected: { count: 0, rows: [] },
    });
    expect(h.sim.stats().billedImages).toBe(billed);
    const bad = await h.api.inject({
      method: 'POST',
      url: '/v1/batches/estimate',
      headers: auth(),
      payload: { model: 'dall-e-2', size: '300x300', items: [{ id: 'x', prompt: 'x' }] },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('lets waiting duplicates go when the item holding the request cannot pay for it', async () => {
    // Three rows of one request, a budget below one image: none may hang on the others.
    const manifest = await run({
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 0.01,
      items: Array.from({ length: 3 }, (_, i) => ({ id: `poor-${i}`, prompt: 'unaffordable' })),
    });
    expect(manifest.batch.counts.budget_exceeded).toBe(3);
  });

  it('reuses an image a crashed run uploaded but never indexed', async () => {
    await run({ ...GPT, items: [{ id: 'warm', prompt: 'warm the index up' }] });
    const scope = h.services.cache.scopeFor('acme');
    const hash = requestHash({ operation: 'generate', n: 1, ...GPT, prompt: 'crashed upload' });
    const key = h.services.cache.imageKey(scope, hash, 0, 'png');
    const png = await sharp({
      create: { width: 256, height: 256, channels: 3, background: '#123456' },
    })
      .png()
      .toBuffer();
    await h.s3.storage.put({
      key,
      body: png,
      contentType: 'image/png',
      metadata: h.services.cache.objectMetadata(hash, { cost_micros: 5_000, rendered_at: 1 }),
    });
    const billed = h.sim.stats().billedImages;
    const manifest = await run({ ...GPT, items: [{ id: 'c', prompt: 'crashed upload' }] });
    expect(manifest.items[0]).toMatchObject({ status: 'cached', saved_usd: 0.005 });
    expect(manifest.items[0]!.images[0]!.key).toBe(key);
    expect(h.sim.stats().billedImages).toBe(billed);
  });

  it('refuses another tenant’s render as an edit input, without saying whether it exists', async () => {
    const theirs = await run(
      { ...GPT, items: [{ id: 's', prompt: 'globex private render' }] },
      'globex',
    );
    const manifest = await run({
      model: 'dall-e-2',
      size: '256x256',
      items: [{ id: 'peek', operation: 'variation', image: theirs.items[0]!.images[0]!.key }],
    });
    expect(manifest.items[0]!.error).toMatchObject({
      code: 'invalid_input_image',
      message: expect.stringContaining("keys under images/ and batches/ are rendermill's own"),
    });
  });
});
