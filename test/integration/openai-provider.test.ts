import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  IMAGE_INPUT_TOKENS,
  startSimulator,
  textTokens,
  type RunningSimulator,
  type SimulatorKnobs,
} from '../../infra/simulator/server.js';
import {
  ModelUnavailableError,
  PaidResultError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../src/errors.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import { OpenAIImageProvider } from '../../src/providers/openai-provider.js';

/** The OpenAI adapter against the simulator: shapes, formats, and one typed error per provider failure. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();
const provider = (options: Partial<ConstructorParameters<typeof OpenAIImageProvider>[0]> = {}) =>
  new OpenAIImageProvider({
    baseURL: sim.url,
    apiKey: 'sk-test',
    registry,
    timeoutMs: 5000,
    ...options,
  });
const spec = (s: Partial<RenderSpec> = {}): RenderSpec => ({
  operation: 'generate',
  model: 'gpt-image-2',
  prompt: 'a red ceramic mug',
  size: '256x256',
  n: 1,
  ...s,
});
const render = (s: Partial<RenderSpec> = {}, p = provider()) =>
  p.render({ spec: spec(s), images: [] });

beforeAll(async () => {
  sim = await startSimulator({ imagesPerMinute: 0 });
});
afterAll(async () => {
  await sim?.stop();
});
beforeEach(() => {
  sim.setKnobs({
    imagesPerMinute: 0,
    retryHeaders: 'all',
    failNext: undefined,
    contentPolicyPattern: undefined,
    insufficientQuota: false,
    retiredModels: [],
    forbiddenKeys: [],
    apiKeys: undefined,
    errorRate: 0,
    resetRate: 0,
    dropImages: 0,
    urlTtlMs: 3_600_000,
  });
  sim.reset();
});

describe('OpenAIImageProvider against the simulator', () => {
  it('renders real images of the requested size and reports token usage', async () => {
    const result = await render({ quality: 'low', n: 2 });
    expect(result.images).toHaveLength(2);
    for (const image of result.images) {
      const meta = await sharp(image.data).metadata();
      expect([image.format, meta.width, meta.height]).toEqual(['png', 256, 256]);
    }
    expect(result.images[0]!.data.equals(result.images[1]!.data)).toBe(false);
    expect(result.usage).toEqual({
      input_tokens: textTokens('a red ceramic mug'),
      output_tokens: 2 * 17, // 272 low-quality tokens at 1024², scaled to 256² (1/16)
      total_tokens: textTokens('a red ceramic mug') + 34,
      input_tokens_details: { text_tokens: textTokens('a red ceramic mug'), image_tokens: 0 },
    });
  });

  it('gives the same request the same bytes and different prompts different bytes', async () => {
    const [a, b, c] = await Promise.all([
      render(),
      render(),
      render({ prompt: 'a blue ceramic mug' }),
    ]);
    expect(a.images[0]!.data.equals(b.images[0]!.data)).toBe(true);
    expect(a.images[0]!.data.equals(c.images[0]!.data)).toBe(false);
  });

  it('honours output formats', async () => {
    expect((await render({ output_format: 'jpeg' })).images[0]!.format).toBe('jpeg');
    expect((await render({ output_format: 'webp' })).images[0]!.format).toBe('webp');
  });

  it('downloads URL responses at once (they expire)', async () => {
    const result = await render(
      { model: 'dall-e-2', size: '512x512' },
      provider({ responseFormat: 'url' }),
    );
    expect((await sharp(result.images[0]!.data).metadata()).width).toBe(512);

    sim.setKnobs({ urlTtlMs: 1 });
    const raw = new OpenAI({ apiKey: 'sk-test', baseURL: sim.url, maxRetries: 0 });
    const response = await raw.images.generate({ model: 'dall-e-2', prompt: 'x', size: '256x256' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await fetch(response.data![0]!.url!)).status).toBe(404);
  });

  it('sends edits with image and mask, and variations, as multipart', async () => {
    const png = await sharp({
      create: { width: 256, height: 256, channels: 4, background: '#c33' },
    })
      .png()
      .toBuffer();
    const input = { data: png, filename: 'mug.png', contentType: 'image/png' };
    const edit = await provider().render({
      spec: spec({ operation: 'edit', model: 'dall-e-2', images: ['mug.png'], mask: 'mask.png' }),
      images: [input],
      mask: { ...input, filename: 'mask.png' },
    });
    expect(edit.images).toHaveLength(1);
    const variation = await provider().render({
      spec: spec({ operation: 'variation', model: 'dall-e-2', prompt: undefined, n: 2 }),
      images: [input],
    });
    expect(variation.images).toHaveLength(2);
    const gptEdit = await provider().render({
      spec: spec({ operation: 'edit', images: ['a.png', 'b.png'] }),
      images: [input, { ...input, filename: 'b.png' }],
    });
    expect(gptEdit.usage?.input_tokens_details?.image_tokens).toBe(2 * IMAGE_INPUT_TOKENS);
    expect(sim.stats().byEndpoint).toMatchObject({ generations: 0, edits: 2, variations: 1 });
  });

  it('counts exactly what was billed', async () => {
    sim.setKnobs({ failNext: { count: 1, status: 500 } });
    await expect(render()).rejects.toThrow();
    await render({ n: 3 });
    await render({ prompt: 'other', model: 'dall-e-2' });
    const stats = sim.stats();
    expect(stats.requests).toBe(3);
    expect(stats.byStatus).toEqual({ '200': 2, '500': 1 });
    expect(stats.billedImages).toBe(4);
    expect(stats.billedImagesByPrompt).toEqual({ 'a red ceramic mug': 3, other: 1 });
    expect(stats.billedImagesByModel).toEqual({ 'gpt-image-2': 3, 'dall-e-2': 1 });
  });
});

describe('each provider failure becomes a typed error', () => {
  it('429 rate_limit_exceeded → ProviderRateLimitedError with the wait the provider asked for', async () => {
    sim.setKnobs({ imagesPerMinute: 60 }); // one image per second
    await render();
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    const wait = (error as ProviderRateLimitedError).retryAfterMs!;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, wait));
    await expect(render()).resolves.toBeDefined();
    expect(sim.stats().rateLimited).toBe(1);
  });

  it.each(['retry-after-ms', 'retry-after', 'x-ratelimit-reset-requests'] as const)(
    'reads the wait from %s alone',
    async (retryHeaders) => {
      sim.setKnobs({ imagesPerMinute: 60, retryHeaders });
      await render();
      const error = (await render().catch((e: unknown) => e)) as ProviderRateLimitedError;
      expect(error).toBeInstanceOf(ProviderRateLimitedError);
      expect(error.retryAfterMs).toBeGreaterThan(0);
      expect(error.retryAfterMs).toBeLessThanOrEqual(1000);
    },
  );

  it.each([
    ['insufficient_quota', { insufficientQuota: true }, ProviderQuotaError, /insufficient_quota/],
    ['401', { apiKeys: ['sk-other'] }, ProviderAuthError, /401/],
    ['403', { forbiddenKeys: ['sk-test'] }, ProviderAuthError, /403/],
    [
      '404 model_not_found',
      { retiredModels: ['gpt-image-2'] },
      ModelUnavailableError,
      /retired or unknown/,
    ],
    ['content policy', { contentPolicyPattern: 'mug' }, ProviderRejectedError, /safety system/],
    ['503', { failNext: { count: 1, status: 503 } }, ProviderUnavailableError, /503/],
    ['500 (errorRate 1)', { errorRate: 1 }, ProviderUnavailableError, /provider error 5\d\d/],
    ['connection reset', { resetRate: 1 }, ProviderUnavailableError, /provider unreachable/],
  ] as const)('%s', async (_name, knobs, type, message) => {
    sim.setKnobs(knobs as Partial<SimulatorKnobs>);
    const error = await render().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    expect((error as { retryable: boolean }).retryable).toBe(type === ProviderUnavailableError);
    expect(sim.stats().billedImages).toBe(0);
  });

  it('a billed answer with fewer images than asked for is a PaidResultError carrying the usage', async () => {
    sim.setKnobs({ dropImages: 1 });
    const error = await render({ n: 2, quality: 'low' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PaidResultError);
    expect((error as PaidResultError).usage?.output_tokens).toBe(2 * 17);
    expect((error as PaidResultError).retryable).toBe(false);
  });

  it('a refused content policy carries the provider’s code', async () => {
    sim.setKnobs({ contentPolicyPattern: 'mug' });
    const dalle = await render({ model: 'dall-e-2' }).catch((e: unknown) => e);
    expect((dalle as ProviderRejectedError).code).toBe('content_policy_violation');
    const gpt = await render().catch((e: unknown) => e);
    expect((gpt as ProviderRejectedError).code).toBe('moderation_blocked');
  });

  it('an unreachable provider is retryable', async () => {
    const error = await render(
      {},
      new OpenAIImageProvider({
        baseURL: 'http://127.0.0.1:9/v1',
        apiKey: 'k',
        registry,
        timeoutMs: 2000,
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
  });

  it('refuses bad knobs over HTTP with a readable message', async () => {
    const response = await fetch(`${sim.origin}/_sim/knobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errorRate: 2 }),
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(await response.json())).toMatch(/errorRate/);
  });
});
