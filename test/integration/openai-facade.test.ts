import type { AddressInfo } from 'node:net';
import OpenAI, {
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  RateLimitError,
  toFile,
} from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import { contentHash } from '../../src/models/request-hash.js';
import { buildApiForServices } from '../../src/runtime/api-wiring.js';
import {
  TENANTS,
  auth,
  startHarness,
  submit,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * The OpenAI-compatible Images API: the official openai SDK, with only its base URL and key
 * changed, against rendermill on a real redis-server, s3rver and the simulator. Every test
 * uses prompts of its own: the cache is shared by the whole suite's harness.
 */

/** A third tenant that lives on the default monthly cap, $0.02: one dall-e-2 256x256 image. */
const FRUGAL_KEY = 'frugal-key-0123456789abcdef';

let h: Harness;
let baseURL: string;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000 },
    env: {
      RENDERMILL_API_KEYS: [...Object.entries(TENANTS), ['frugal', FRUGAL_KEY]]
        .map(([tenant, key]) => `${tenant}=${key}`)
        .join(','),
      RENDERMILL_TENANT_MONTHLY_BUDGET_USD: '0.02',
      RENDERMILL_TENANT_BUDGETS_USD: JSON.stringify({ acme: 100, globex: 100 }),
    },
  });
  baseURL = await listen(h.api);
});
afterAll(async () => {
  await h?.stop();
});

async function listen(api: Harness['api']): Promise<string> {
  await api.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}/v1`;
}

/** The SDK as a user would construct it; no retries, so that a test sees every answer. */
const client = (apiKey: string = TENANTS.acme, url = baseURL) =>
  new OpenAI({ baseURL: url, apiKey, maxRetries: 0 });

const calls = () => ({ ...h.sim.stats().byEndpoint });

async function manifestOf(batchId: string, tenant: 'acme' | 'globex' = 'acme') {
  const response = await h.api.inject({
    method: 'GET',
    url: `/v1/batches/${batchId}/manifest`,
    headers: auth(tenant),
  });
  expect(response.statusCode).toBe(200);
  return response.json<Manifest>();
}

/** The bytes the manifest's first image points at, read from the bucket. */
async function manifestImage(batchId: string) {
  const manifest = await manifestOf(batchId);
  const key = manifest.items[0]!.images[0]!.key;
  const object = await h.s3.storage.get(key);
  expect(object, key).toBeDefined();
  return { manifest, key, bytes: object!.body };
}

const png = (width: number, colour: string) =>
  sharp({ create: { width, height: width, channels: 3, background: colour } })
    .png()
    .toBuffer();

/** A dall-e-2 mask: opaque, with a transparent square in the middle (the area to repaint). */
async function maskFor(width: number) {
  const hole = await sharp({
    create: { width: width / 2, height: width / 2, channels: 4, background: '#00000000' },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width, height: width, channels: 4, background: '#000000ff' } })
    .composite([{ input: hole, left: width / 4, top: width / 4, blend: 'dest-in' }])
    .png()
    .toBuffer();
}

describe('POST /v1/images/generations', () => {
  it('renders gpt-image-2 through the queue and answers b64_json, the image the manifest records', async () => {
    const before = calls();
    const { data: answer, response } = await client()
      .images.generate({
        model: 'gpt-image-2',
        prompt: 'facade: a teal enamel mug',
        size: '256x256',
        quality: 'low',
        user: 'ignored-by-rendermill',
      })
      .withResponse();

    expect(calls().generations - before.generations).toBe(1);
    expect(answer).toMatchObject({ size: '256x256', quality: 'low', output_format: 'png' });
    expect(Math.abs(answer.created - Date.now() / 1000)).toBeLessThan(60);
    expect(answer.data).toHaveLength(1);
    const bytes = Buffer.from(answer.data![0]!.b64_json!, 'base64');
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'png', width: 256, height: 256 });

    const batchId = response.headers.get('x-rendermill-batch-id')!;
    expect(response.headers.get('x-rendermill-cached')).toBe('false');
    expect(Number(response.headers.get('x-rendermill-cost-usd'))).toBeGreaterThan(0);
    const recorded = await manifestImage(batchId);
    expect(bytes.equals(recorded.bytes)).toBe(true);
    expect(recorded.manifest.batch.metadata).toMatchObject({ source: 'images-api' });
    expect(recorded.manifest.items[0]).toMatchObject({ status: 'succeeded', model: 'gpt-image-2' });
  });

  it('answers a repeated request from the cache: no provider call, $0, the same image', async () => {
    const ask = { model: 'gpt-image-2', prompt: 'facade: twice asked', size: '256x256' } as const;
    const first = await client().images.generate(ask);
    const before = calls();
    const { data: again, response } = await client().images.generate(ask).withResponse();

    expect(calls()).toEqual(before);
    expect(response.headers.get('x-rendermill-cached')).toBe('true');
    expect(response.headers.get('x-rendermill-cost-usd')).toBe('0');
    expect(again.data![0]!.b64_json).toBe(first.data![0]!.b64_json);
    const { manifest } = await manifestImage(response.headers.get('x-rendermill-batch-id')!);
    expect(manifest.items[0]).toMatchObject({ status: 'cached', cost_usd: 0 });
  });

  it('answers dall-e-2 with a presigned S3 URL when response_format is url', async () => {
    const before = calls();
    const { data: answer, response } = await client()
      .images.generate({
        model: 'dall-e-2',
        prompt: 'facade: a paper lantern',
        size: '256x256',
        response_format: 'url',
      })
      .withResponse();

    expect(calls().generations - before.generations).toBe(1);
    const url = answer.data![0]!.url!;
    expect(answer.data![0]!.b64_json).toBeUndefined();
    const fetched = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(fetched.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    const recorded = await manifestImage(response.headers.get('x-rendermill-batch-id')!);
    expect(url).toContain(recorded.key);
    expect(fetched.equals(recorded.bytes)).toBe(true);
  });

  it.each([
    [{ model: 'dall-e-2', size: '300x300' }, 'size', /size: size "300x300" is not offered/],
    [{ model: 'gpt-image-2', size: '100x100' }, 'size', /size: .*divisible by 16/],
    [{ model: 'dall-e-2', n: 11 }, 'n', /n: n must be between 1 and 10/],
    [{ model: 'dall-e-9' }, 'model', /model: unknown model "dall-e-9"/],
    [
      { model: 'dall-e-2', output_format: 'tiff' },
      'output_format',
      /output_format: output_format must/,
    ],
    [{ stream: true }, 'stream', /streaming is not supported/],
    [{ colour: 'red' }, 'colour', /Unknown parameter: 'colour'/],
  ])('refuses %j with a 400 whose param is %s', async (change, param, message) => {
    const before = calls();
    const error = await client()
      .images.generate({ prompt: 'facade: refused', ...change } as never)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, param, type: 'invalid_request_error' });
    expect((error as Error).message).toMatch(message);
    expect(calls()).toEqual(before);
  });

  it('passes a content refusal on as OpenAI does: 400 content_policy_violation, nothing billed', async () => {
    h.sim.setKnobs({ contentPolicyPattern: 'forbidden-facade' });
    try {
      const billed = h.sim.stats().billedImages;
      const error = await client()
        .images.generate({ model: 'dall-e-2', prompt: 'a forbidden-facade scene', size: '256x256' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(BadRequestError);
      expect(error).toMatchObject({ code: 'content_policy_violation' });
      expect(h.sim.stats().billedImages).toBe(billed);
    } finally {
      h.sim.setKnobs({ contentPolicyPattern: undefined });
    }
  });

  it('refuses a wrong key with 401 (AuthenticationError)', async () => {
    const error = await client('not-a-rendermill-key-000000')
      .images.generate({ prompt: 'facade: who am I' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(AuthenticationError);
    expect(error).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });
});

describe('budgets', () => {
  it('answers 429 insufficient_quota naming the cap once the tenant’s month is spent, and asks the SDK not to retry', async () => {
    const frugal = client(FRUGAL_KEY);
    // $0.016 of the $0.02 month.
    await frugal.images.generate({
      model: 'dall-e-2',
      prompt: 'facade: frugal 1',
      size: '256x256',
    });
    const before = calls();
    const error = await frugal.images
      .generate({ model: 'dall-e-2', prompt: 'facade: frugal 2', size: '256x256' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );

    expect(error).toBeInstanceOf(RateLimitError);
    expect(error).toMatchObject({
      status: 429,
      code: 'insufficient_quota',
      type: 'insufficient_quota',
    });
    expect((error as Error).message).toMatch(
      /billing hard limit reached: tenant "frugal"'s budget for \d{4}-\d{2}/,
    );
    expect((error as RateLimitError).headers.get('x-should-retry')).toBe('false');
    expect(calls()).toEqual(before);
    // A cached image is still free.
    const again = await frugal.images.generate({
      model: 'dall-e-2',
      prompt: 'facade: frugal 1',
      size: '256x256',
      response_format: 'b64_json',
    });
    expect(again.data![0]!.b64_json).toBeTruthy();
  });
});

describe('POST /v1/images/edits and /v1/images/variations', () => {
  it('edits an uploaded PNG within a mask: the files go to the tenant’s uploads, the item refers to them', async () => {
    const image = await png(256, '#884422');
    const mask = await maskFor(256);
    const before = calls();
    const { data: answer, response } = await client()
      .images.edit({
        model: 'dall-e-2',
        image: await toFile(image, 'x.png', { type: 'image/png' }),
        mask: await toFile(mask, 'mask.png', { type: 'image/png' }),
        prompt: 'facade: put a hat on it',
        size: '256x256',
        response_format: 'b64_json',
      })
      .withResponse();

    expect(calls().edits - before.edits).toBe(1);
    const bytes = Buffer.from(answer.data![0]!.b64_json!, 'base64');
    const batchId = response.headers.get('x-rendermill-batch-id')!;
    expect(bytes.equals((await manifestImage(batchId)).bytes)).toBe(true);

    const scope = h.services.cache.scopeFor('acme');
    const item = await h.services.store.item(batchId, 'image');
    expect(item?.spec).toMatchObject({
      operation: 'edit',
      images: [`uploads/${scope}/${contentHash(image)}.png`],
      mask: `uploads/${scope}/${contentHash(mask)}.png`,
    });
    expect(await h.s3.storage.head(item!.spec.mask!)).toBeDefined();
  });

  it('creates a variation with dall-e-2, answered with a URL by default as OpenAI does', async () => {
    const before = calls();
    const { data: answer, response } = await client()
      .images.createVariation({
        model: 'dall-e-2',
        image: await toFile(await png(256, '#226688'), 'x.png', { type: 'image/png' }),
        size: '256x256',
      })
      .withResponse();

    expect(calls().variations - before.variations).toBe(1);
    const fetched = Buffer.from(await (await fetch(answer.data![0]!.url!)).arrayBuffer());
    const recorded = await manifestImage(response.headers.get('x-rendermill-batch-id')!);
    expect(fetched.equals(recorded.bytes)).toBe(true);
    expect(recorded.manifest.items[0]).toMatchObject({
      operation: 'variation',
      status: 'succeeded',
    });
  });

  it('honours Idempotency-Key on an edit: the same form replays, another prompt or file is refused', async () => {
    const image = await png(256, '#445566');
    const edit = async (prompt: string, file = image) =>
      client()
        .images.edit(
          {
            model: 'dall-e-2',
            image: await toFile(file, 'x.png', { type: 'image/png' }),
            prompt,
            size: '256x256',
            response_format: 'b64_json',
          },
          { headers: { 'idempotency-key': 'edit-42' } },
        )
        .withResponse();
    const before = calls();
    const first = await edit('facade: idempotent hat');
    const again = await edit('facade: idempotent hat');
    expect(calls().edits - before.edits).toBe(1);
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    expect(again.response.headers.get('x-rendermill-batch-id')).toBe(
      first.response.headers.get('x-rendermill-batch-id'),
    );
    expect(again.data.data![0]!.b64_json).toBe(first.data.data![0]!.b64_json);
    for (const attempt of [
      () => edit('facade: idempotent scarf'),
      async () => edit('facade: idempotent hat', await png(256, '#445567')),
    ]) {
      const refused = await attempt().catch((error: unknown) => error);
      expect(refused).toMatchObject({ status: 422 });
    }
    expect(calls().edits - before.edits).toBe(1);
  });

  it('refuses a file over the model’s limit before storing or queueing anything', async () => {
    // A PNG padded to 4.5 MB: under gpt-image's 50 MB, over dall-e-2's 4 MB.
    const big = Buffer.concat([await png(64, '#ffffff'), Buffer.alloc(4.5 * 1024 * 1024)]);
    const before = calls();
    const error = await client()
      .images.createVariation({ model: 'dall-e-2', image: await toFile(big, 'big.png') })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ param: 'image', code: 'invalid_input_image' });
    expect((error as Error).message).toMatch(/dall-e-2 needs less than 4194304/);
    const scope = h.services.cache.scopeFor('acme');
    expect(await h.s3.storage.head(`uploads/${scope}/${contentHash(big)}.png`)).toBeUndefined();
    expect(calls()).toEqual(before);
  });

  it('does not let another tenant use an upload key as an edit input: the item fails, nothing billed', async () => {
    const image = await png(256, '#335577');
    await client().images.createVariation({
      model: 'dall-e-2',
      image: await toFile(image, 'mine.png', { type: 'image/png' }),
      size: '256x256',
    });
    const acmeUpload = `uploads/${h.services.cache.scopeFor('acme')}/${contentHash(image)}.png`;
    expect(await h.s3.storage.head(acmeUpload)).toBeDefined();

    const before = calls();
    const response = await submit(
      h,
      {
        model: 'dall-e-2',
        size: '256x256',
        items: [{ id: 'peek', operation: 'variation', image: acmeUpload }],
      },
      'globex',
    );
    expect(response.statusCode).toBe(202);
    const batchId = response.json<{ id: string }>().id;
    await waitForBatch(h, batchId);
    const manifest = await manifestOf(batchId, 'globex');
    expect(manifest.items[0]).toMatchObject({ status: 'failed', cost_usd: 0 });
    expect(manifest.items[0]!.error).toMatchObject({
      code: 'invalid_input_image',
      message: expect.stringContaining("keys under uploads/ are other tenants' uploads"),
    });
    expect(manifest.totals.spend_usd).toBe(0);

    // Nor by stepping out of its own uploads folder.
    const globexScope = h.services.cache.scopeFor('globex');
    const sideways = `uploads/${globexScope}/../${h.services.cache.scopeFor('acme')}/${contentHash(image)}.png`;
    const stepped = await submit(
      h,
      {
        model: 'dall-e-2',
        size: '256x256',
        items: [{ id: 'step', operation: 'variation', image: sideways }],
      },
      'globex',
    );
    const steppedId = stepped.json<{ id: string }>().id;
    await waitForBatch(h, steppedId);
    expect((await manifestOf(steppedId, 'globex')).items[0]!.error).toMatchObject({
      code: 'invalid_input_image',
      message: expect.stringContaining('must not contain . or .. segments'),
    });
    expect(calls()).toEqual(before);
  });

  it('refuses a file larger than any model accepts with 413 while it streams in', async () => {
    const huge = Buffer.concat([await png(64, '#000000'), Buffer.alloc(51 * 1024 * 1024)]);
    const error = await client()
      .images.edit({
        model: 'gpt-image-2',
        prompt: 'facade: huge',
        image: await toFile(huge, 'h.png'),
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toMatchObject({ status: 413, param: 'image', code: 'file_too_large' });
  });

  it('lists the three endpoints in the OpenAPI document, edits and variations as multipart', async () => {
    const paths = (await h.api.inject({ method: 'GET', url: '/openapi.json' })).json<{
      paths: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }>;
    }>().paths;
    expect(Object.keys(paths['/v1/images/generations']!.post.requestBody.content)).toEqual([
      'application/json',
    ]);
    for (const path of ['/v1/images/edits', '/v1/images/variations']) {
      expect(Object.keys(paths[path]!.post.requestBody.content)).toEqual(['multipart/form-data']);
    }
  });
});

describe('waiting', () => {
  it('answers 504 with the batch id when the render outlasts the wait; the render goes on', async () => {
    // The same services, with a wait of 100 ms × (0 + 1): the simulator takes longer.
    const { config } = h.services;
    const impatient = buildApiForServices({
      ...h.services,
      config: { ...config, requestTimeoutMs: 100, retry: { ...config.retry, retries: 0 } },
    });
    const url = await listen(impatient);
    h.sim.setKnobs({ latencyMs: 1_000 });
    try {
      const error = await client(TENANTS.acme, url)
        .images.generate({ model: 'gpt-image-2', prompt: 'facade: slow one', size: '256x256' })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(InternalServerError);
      expect(error).toMatchObject({ status: 504, code: 'timeout' });
      const batchId = (error as InternalServerError).headers.get('x-rendermill-batch-id')!;
      expect((error as InternalServerError).error).toMatchObject({ batch_id: batchId });
      expect((error as Error).message).toContain(`GET /v1/batches/${batchId}`);

      await waitForBatch(h, batchId);
      const { manifest } = await manifestImage(batchId);
      expect(manifest.items[0]).toMatchObject({ status: 'succeeded' });
    } finally {
      h.sim.setKnobs({ latencyMs: 0 });
      await impatient.close();
    }
  });
});
