import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import { sniffImageFormat } from '../../src/providers/sniff-format.js';
import { runToManifest, startHarness, TENANTS, type Harness } from '../support/harness.js';

/**
 * Routes as data: one batch over three routes — an OpenAI-compatible gateway, a
 * Replicate-shaped and a fal-shaped provider, each a simulator of its own with its own limit
 * and price — routed by cost or by capacity, fitted to what each route can do.
 */
const PRICES = { gateway: 0.005, replicate: 0.003, fal: 0.004 };
const LIMITS = { gateway: 600, replicate: 600, fal: 1200 };

let h: Harness;
let replicate: RunningSimulator;
let fal: RunningSimulator;
let gateway: RunningSimulator;

beforeAll(async () => {
  [replicate, fal] = await Promise.all([
    startSimulator({ imagesPerMinute: LIMITS.replicate, apiKeys: ['r8-key'] }),
    startSimulator({ imagesPerMinute: LIMITS.fal, apiKeys: ['fal-key'] }),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'rendermill-routes-'));
  const file = join(dir, 'providers.yaml');
  h = await startHarness({
    simulator: { imagesPerMinute: LIMITS.gateway, apiKeys: ['gw-key'] },
    env: {
      RENDERMILL_PROVIDERS_FILE: file,
      GATEWAY_KEY: 'gw-key',
      REPLICATE_API_TOKEN: 'r8-key',
      FAL_KEY: 'fal-key',
      RENDERMILL_CONCURRENCY: '48',
      RENDERMILL_RETRIES: '2',
      RENDERMILL_RETRY_BASE_MS: '50',
      RENDERMILL_QUEUED_FOLLOW_MS: '400',
      RENDERMILL_QUEUED_RECHECK_MS: '300',
      RENDERMILL_IMAGES_PER_MINUTE: '',
    },
    beforeConfig: (sim) => {
      gateway = sim;
      writeFileSync(
        file,
        [
          'routing: priority',
          'routes:',
          '  - name: gateway',
          '    kind: openai',
          `    base_url: ${sim.url}`,
          '    api_key_env: GATEWAY_KEY',
          '    models:',
          `      flux-schnell: { price_usd: ${PRICES.gateway}, images_per_minute: ${LIMITS.gateway} }`,
          `      dall-e-2: { images_per_minute: ${LIMITS.gateway} }`,
          '  - name: replicate',
          '    kind: replicate',
          `    base_url: ${replicate.url}`,
          '    api_key_env: REPLICATE_API_TOKEN',
          '    models:',
          `      flux-schnell: { price_usd: ${PRICES.replicate}, images_per_minute: ${LIMITS.replicate} }`,
          `      imagen-4: { images_per_minute: ${LIMITS.replicate} }`,
          '  - name: fal',
          '    kind: fal',
          `    base_url: ${fal.origin}/fal`,
          '    api_key_env: FAL_KEY',
          '    models:',
          `      flux-schnell: { price_usd: ${PRICES.fal}, images_per_minute: ${LIMITS.fal} }`,
          '',
        ].join('\n'),
      );
    },
  });
});
afterAll(async () => {
  // The gateway may have been restarted (the outage test): the harness stops its first one.
  if (gateway !== h?.sim) await gateway?.stop();
  await h?.stop();
  await Promise.all([replicate?.stop(), fal?.stop()]);
});
beforeEach(() => {
  for (const sim of [gateway, replicate, fal]) {
    sim.reset();
    sim.setKnobs({ errorRate: 0, queuedMs: 0, latencyMs: 0 });
  }
});

const sims = () => ({ gateway, replicate, fal });
/**
 * The large batches ask for PNG: every route renders flux-schnell at 1024x1024, and
 * Replicate's default WebP costs the simulator ~3× PNG's CPU — load that the time-bounded
 * suites running beside this one would feel.
 */
const BULK = { model: 'flux-schnell', output_format: 'png' } as const;
const items = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, prompt: `${prefix} ${i}` }));

/** Every prompt billed at most once over every route, and what each route billed. */
function billing() {
  const byPrompt = new Map<string, number>();
  const images = { gateway: 0, replicate: 0, fal: 0 };
  for (const [name, sim] of Object.entries(sims()) as [keyof typeof images, RunningSimulator][]) {
    const stats = sim.stats();
    images[name] = stats.billedImages;
    for (const [prompt, count] of Object.entries(stats.billedImagesByPrompt)) {
      byPrompt.set(prompt, (byPrompt.get(prompt) ?? 0) + count);
    }
  }
  return { images, byPrompt };
}

describe('routing a batch over three routes', () => {
  it('cheapest: every item goes to the cheapest route while it is up, at its price', async () => {
    const manifest = await runToManifest(h, {
      ...BULK,
      routing: 'cheapest',
      items: items('cheap', 30),
    });
    expect(manifest.totals.items).toBe(30);
    expect(manifest.items.every((item) => item.status === 'succeeded')).toBe(true);
    expect(new Set(manifest.items.map((item) => item.route))).toEqual(new Set(['replicate']));
    expect(manifest.items[0]).toMatchObject({
      provider_model: 'black-forest-labs/flux-schnell',
      cost_usd: PRICES.replicate,
    });
    const { images } = billing();
    expect(images).toEqual({ gateway: 0, replicate: 30, fal: 0 });
    expect(manifest.totals.spend_usd).toBeCloseTo(30 * PRICES.replicate, 9);
  });

  it('spread: fills every route in proportion to its limit, spend exact', async () => {
    const count = 240;
    const manifest = await runToManifest(
      h,
      { ...BULK, routing: 'spread', items: items('spread', count) },
      'acme',
      120_000,
    );
    expect(manifest.items.every((item) => item.status === 'succeeded')).toBe(true);
    const { images, byPrompt } = billing();
    expect([...byPrompt.values()].every((n) => n === 1)).toBe(true);
    expect(images.gateway + images.replicate + images.fal).toBe(count);
    // Each route's share follows its limit (600 : 600 : 1,200 a minute → ¼ : ¼ : ½), loosely:
    // on a busy machine a route's calls slow down and it takes less. How fast that is against
    // the sum of the limits is a speed figure: bench:providers measures it.
    const total = LIMITS.gateway + LIMITS.replicate + LIMITS.fal;
    for (const route of ['gateway', 'replicate', 'fal'] as const) {
      expect(images[route] / count).toBeGreaterThan((LIMITS[route] / total) * 0.4);
      expect(images[route] / count).toBeLessThan((LIMITS[route] / total) * 1.8);
    }
    // Spend is each route's price for what it rendered, to the micro-dollar.
    const expected =
      images.gateway * PRICES.gateway +
      images.replicate * PRICES.replicate +
      images.fal * PRICES.fal;
    expect(Math.round(manifest.totals.spend_usd * 1e6)).toBe(Math.round(expected * 1e6));
    const onGateway = manifest.items.filter((item) => item.route === 'gateway');
    expect(onGateway).toHaveLength(images.gateway);
    for (const sim of Object.values(sims())) expect(sim.stats().rateLimited).toBe(0);
  });

  it('leaves a route that goes down mid-batch; the others finish it, nothing bought twice', async () => {
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { authorization: `Bearer ${TENANTS.acme}` },
      payload: { ...BULK, routing: 'spread', items: items('down', 120) },
    });
    expect(response.statusCode, response.body).toBe(202);
    const { id } = response.json<{ id: string }>();
    // Once the gateway has rendered a few it goes away (connection refused), then comes back
    // answering 5xx to everything.
    while (gateway.stats().billedImages < 5) await new Promise((r) => setTimeout(r, 20));
    const billedBefore = gateway.stats();
    const { port } = gateway;
    await gateway.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));
    gateway = await startSimulator({ port, apiKeys: ['gw-key'], errorRate: 1 });
    const batch = await waitUntilEnded(id);
    // Every item has its outcome: rendered — or, for a call the gateway answered with a URL
    // just before it went away, bought but never delivered (`unusable_result`, its price
    // spent): the outage took the image with it, and buying it again elsewhere is the user's
    // call, not a silent second payment.
    const failed = (await h.services.store.items(id)).filter((i) => i.status !== 'succeeded');
    expect(failed.every((item) => item.error?.code === 'unusable_result')).toBe(true);
    expect(failed.length).toBeLessThanOrEqual(5);
    expect(batch.counts.succeeded + failed.length).toBe(120);
    const { byPrompt, images } = billing();
    for (const [prompt, count] of Object.entries(billedBefore.billedImagesByPrompt)) {
      byPrompt.set(prompt, (byPrompt.get(prompt) ?? 0) + count);
    }
    images.gateway += billedBefore.billedImages;
    expect([...byPrompt.values()].every((n) => n === 1)).toBe(true);
    expect(images.gateway + images.replicate + images.fal).toBe(120);
    // What was billed is spent at each route's price; a call cut by the outage may have been
    // billed too, so it counts as spent (never less than what was billed).
    const billed = Math.round(
      (images.gateway * PRICES.gateway +
        images.replicate * PRICES.replicate +
        images.fal * PRICES.fal) *
        1e6,
    );
    expect(batch.spent_micros).toBeGreaterThanOrEqual(billed);
    expect(batch.spent_micros - billed).toBeLessThanOrEqual(48 * PRICES.gateway * 1e6);
    expect(batch.reserved_micros).toBe(0);
    gateway.setKnobs({ errorRate: 0 });
  });

  it('hands a slow queued prediction back and collects it later, billed once', async () => {
    replicate.setKnobs({ queuedMs: 1_500 });
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { authorization: `Bearer ${TENANTS.acme}` },
      payload: { model: 'flux-schnell', routing: 'cheapest', items: items('slow', 3) },
    });
    expect(response.statusCode, response.body).toBe(202);
    const { id } = response.json<{ id: string }>();
    // Followed for 400 ms, then handed back: the items wait, running, with their predictions.
    let handedBack = false;
    for (let tries = 0; tries < 100 && !handedBack; tries++) {
      const stored = await h.services.store.items(id);
      handedBack = stored.some((item) => item.status === 'running' && item.pending);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(handedBack).toBe(true);
    const batch = await waitUntilEnded(id);
    expect(batch.counts.succeeded).toBe(3);
    expect(replicate.stats().billedImages).toBe(3);
    expect(replicate.stats().byEndpoint.predictions).toBe(3);
    expect(batch.spent_micros).toBe(Math.round(3 * PRICES.replicate * 1e6));
    expect(batch.reserved_micros).toBe(0);
    const stored = await h.services.store.items(id);
    expect(stored.every((item) => item.pending === undefined)).toBe(true);
    expect(stored.map((item) => item.rendered_by?.provider)).toEqual([
      'replicate',
      'replicate',
      'replicate',
    ]);
  });
});

describe('queued predictions handed back', () => {
  async function submitBatch(payload: object) {
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { authorization: `Bearer ${TENANTS.acme}` },
      payload,
    });
    expect(response.statusCode, response.body).toBe(202);
    return response.json<{ id: string }>().id;
  }
  async function untilHandedBack(id: string, count: number) {
    for (let tries = 0; tries < 200; tries++) {
      const stored = await h.services.store.items(id);
      if (stored.filter((item) => item.status === 'running' && item.pending).length >= count)
        return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`fewer than ${count} items were handed back`);
  }

  it('buys a request once while its prediction runs, however many items ask for it', async () => {
    replicate.setKnobs({ queuedMs: 1_500 });
    const same = { prompt: 'one lamp, asked four times' };
    const id = await submitBatch({
      model: 'flux-schnell',
      routing: 'cheapest',
      items: [1, 2, 3, 4].map((i) => ({ id: `same-${i}`, ...same })),
    });
    const batch = await waitUntilEnded(id);
    expect(batch.counts.succeeded + batch.counts.cached).toBe(4);
    expect(replicate.stats().byEndpoint.predictions).toBe(1);
    expect(replicate.stats().billedImages).toBe(1);
    expect(batch.spent_micros).toBe(Math.round(PRICES.replicate * 1e6));
    expect(batch.reserved_micros).toBe(0);
  });

  it('stops handed-back predictions when their batch is cancelled, their holds counted as spent', async () => {
    replicate.setKnobs({ queuedMs: 2_500 });
    const id = await submitBatch({
      model: 'flux-schnell',
      routing: 'cheapest',
      items: items('cancelled', 2),
    });
    await untilHandedBack(id, 2);
    const cancel = await h.api.inject({
      method: 'POST',
      url: `/v1/batches/${id}/cancel`,
      headers: { authorization: `Bearer ${TENANTS.acme}` },
    });
    expect(cancel.statusCode, cancel.body).toBeLessThan(300);
    // The items' jobs come back, find the batch cancelled and stop the predictions at the
    // provider; what the items held stays counted (a cancel may come after the provider billed).
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const batch = await h.services.store.get(id);
    expect(batch!.status).toBe('cancelled');
    expect(replicate.stats().byEndpoint.predictions).toBe(2);
    expect(replicate.stats().billedImages).toBe(0);
    expect(batch!.spent_micros).toBe(Math.round(2 * PRICES.replicate * 1e6));
    expect(batch!.reserved_micros).toBe(0);
  });
});

describe('parameters fitted to each route', () => {
  it('lands aspect_ratio 16:9 on the nearest size the model takes, on every route', async () => {
    for (const route of ['gateway', 'replicate', 'fal'] as const) {
      const others = Object.entries(sims()).filter(([name]) => name !== route);
      for (const [, sim] of others) sim.setKnobs({ errorRate: 1 });
      const manifest = await runToManifest(h, {
        model: 'flux-schnell',
        aspect_ratio: '16:9',
        items: [{ id: 'wide', prompt: `a wide banner via ${route}` }],
      });
      for (const [, sim] of others) sim.setKnobs({ errorRate: 0 });
      const item = manifest.items[0]!;
      expect(item).toMatchObject({ status: 'succeeded', route, size: '1344x768' });
      const image = await h.services.storage.get(item.images[0]!.key);
      expect(await sharp(image!.body).metadata()).toMatchObject({ width: 1344, height: 768 });
    }
  });

  it('says when the nearest size is not the ratio asked for', async () => {
    const manifest = await runToManifest(h, {
      model: 'dall-e-2',
      aspect_ratio: '16:9',
      items: [{ id: 'square', prompt: 'a banner that can only be square' }],
    });
    const item = manifest.items[0]!;
    expect(item).toMatchObject({ status: 'succeeded', route: 'gateway', size: '1024x1024' });
    expect(item.warnings).toEqual([expect.objectContaining({ field: 'aspect_ratio' })]);
  });

  it('makes n=4 four calls on a route that returns one image per call', async () => {
    const manifest = await runToManifest(h, {
      model: 'imagen-4',
      n: 4,
      items: [{ id: 'four', prompt: 'four product shots' }],
    });
    const item = manifest.items[0]!;
    expect(item).toMatchObject({ status: 'succeeded', route: 'replicate', n: 4 });
    expect(item.images).toHaveLength(4);
    expect(replicate.stats().byEndpoint.predictions).toBe(4);
    expect(item.warnings).toEqual([
      expect.objectContaining({ field: 'n', asked: '4', done: '4 calls of at most 1 image(s)' }),
    ]);
  });

  it('stores AVIF from a route that renders PNG only, converted with sharp', async () => {
    const manifest = await runToManifest(h, {
      model: 'dall-e-2',
      size: '256x256',
      output_format: 'avif',
      items: [{ id: 'avif', prompt: 'a mug, stored as avif' }],
    });
    const item = manifest.items[0]!;
    expect(item).toMatchObject({ status: 'succeeded', route: 'gateway' });
    const image = await h.services.storage.get(item.images[0]!.key);
    expect(sniffImageFormat(image!.body)).toBe('avif');
    expect(item.warnings).toEqual([
      expect.objectContaining({ field: 'output_format', asked: 'avif' }),
    ]);
  });
});

describe('the façade on any route', () => {
  it('answers the official SDK from the route the routing picks, saying where and what it cost', async () => {
    await h.api.listen({ port: 0, host: '127.0.0.1' });
    const address = h.api.server.address() as { port: number };
    const client = new OpenAI({
      baseURL: `http://127.0.0.1:${address.port}/v1`,
      apiKey: TENANTS.acme,
      maxRetries: 0,
    });
    const { data, response } = await client.images
      .generate({
        model: 'flux-schnell',
        prompt: 'a lamp through the façade',
        size: '1024x1024',
        // rendermill's own field, sent as an extra body parameter.
        ...({ routing: 'cheapest' } as object),
      })
      .withResponse();
    expect(data.data?.[0]?.b64_json ?? data.data?.[0]?.url).toBeTruthy();
    expect(response.headers.get('x-rendermill-route')).toBe('replicate');
    expect(response.headers.get('x-rendermill-model')).toBe('black-forest-labs/flux-schnell');
    expect(response.headers.get('x-rendermill-cost-usd')).toBe(String(PRICES.replicate));
    expect(response.headers.get('x-rendermill-cache')).toBe('miss');
    // The same request again is a cache hit, whichever route made the image.
    const again = await client.images
      .generate({
        model: 'flux-schnell',
        prompt: 'a lamp through the façade',
        size: '1024x1024',
        ...({ routing: 'spread' } as object),
      })
      .withResponse();
    expect(again.response.headers.get('x-rendermill-cache')).toBe('hit');
    expect(again.response.headers.get('x-rendermill-cost-usd')).toBe('0');
  });
});

async function waitUntilEnded(id: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await h.services.store.get(id);
    if (batch && batch.status === 'completed' && batch.manifest_key) return batch;
    if (Date.now() > deadline) throw new Error(`batch ${id} did not end: ${JSON.stringify(batch)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
