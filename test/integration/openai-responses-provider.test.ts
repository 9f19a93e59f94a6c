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
import {
  DEFAULT_RESPONSES_MODEL,
  OpenAIResponsesImageProvider,
} from '../../src/providers/openai-responses-provider.js';

/** The Responses API adapter (image_generation tool) against the simulator's POST /v1/responses. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();
const PROMPT = 'a red ceramic mug';
const provider = (
  options: Partial<ConstructorParameters<typeof OpenAIResponsesImageProvider>[0]> = {},
) =>
  new OpenAIResponsesImageProvider({
    baseURL: sim.url,
    apiKey: 'sk-test',
    registry,
    timeoutMs: 5000,
    ...options,
  });
const spec = (s: Partial<RenderSpec> = {}): RenderSpec => ({
  operation: 'generate',
  model: 'gpt-image-2',
  prompt: PROMPT,
  size: '1024x1024',
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
  });
  sim.reset();
});

describe('OpenAIResponsesImageProvider against the simulator', () => {
  it('says what the tool can do: one image per call, generate and edit only', () => {
    const capabilities = provider().capabilities(registry.get('dall-e-2')!);
    expect(capabilities).toEqual({
      operations: ['generate', 'edit'],
      sizing: 'size',
      maxImagesPerCall: 1,
      outputFormats: ['png'],
      mode: 'sync',
    });
    expect(provider().capabilities(registry.get('gpt-image-2')!).outputFormats).toEqual([
      'png',
      'jpeg',
      'webp',
    ]);
  });

  it('shares the account id of the Images API adapter on the same URL and key', () => {
    const images = new OpenAIImageProvider({
      baseURL: sim.url,
      apiKey: 'sk-test',
      registry,
      timeoutMs: 5000,
    });
    expect(provider().accountId).toBe(images.accountId);
    expect(provider({ apiKey: 'sk-other' }).accountId).not.toBe(images.accountId);
  });

  it.each([
    ['1024x1024', 1024, 1024],
    ['256x256', 256, 256],
  ])(
    'renders a real PNG at %s and reports the image usage the simulator billed',
    async (size, w, h) => {
      const result = await render({ size, quality: 'low' });
      expect(result.images).toHaveLength(1);
      const meta = await sharp(result.images[0]!.data).metadata();
      expect([result.images[0]!.format, meta.format, meta.width, meta.height]).toEqual([
        'png',
        'png',
        w,
        h,
      ]);
      const outputTokens = Math.round((272 * w * h) / (1024 * 1024));
      expect(result.usage).toEqual({
        input_tokens: textTokens(PROMPT),
        output_tokens: outputTokens,
        input_tokens_details: { text_tokens: textTokens(PROMPT), image_tokens: 0 },
      });
      expect(sim.stats().billedTokens).toEqual({
        input: result.usage!.input_tokens,
        output: result.usage!.output_tokens,
      });
      expect(result.rate?.tokensUsed).toBe(textTokens(PROMPT) + outputTokens);
      expect(result.revisedPrompt).toBe(`An image of ${PROMPT}`);
      const stats = sim.stats();
      expect(stats.byEndpoint).toMatchObject({ responses: 1, generations: 0 });
      expect([stats.billedImages, stats.billedImagesByModel]).toEqual([1, { 'gpt-image-2': 1 }]);
    },
  );

  it('returns jpeg and webp when asked', async () => {
    expect((await render({ size: '256x256', output_format: 'jpeg' })).images[0]!.format).toBe(
      'jpeg',
    );
    expect((await render({ size: '256x256', output_format: 'webp' })).images[0]!.format).toBe(
      'webp',
    );
  });

  it('sends an edit as input_image data URLs and a mask, billed for the input images', async () => {
    const png = await sharp({
      create: { width: 256, height: 256, channels: 4, background: '#c33' },
    })
      .png()
      .toBuffer();
    const input = { data: png, filename: 'mug.png', contentType: 'image/png' };
    const result = await provider().render({
      spec: spec({ operation: 'edit', size: '256x256', images: ['mug.png'], mask: 'mask.png' }),
      images: [input],
      mask: { ...input, filename: 'mask.png' },
    });
    expect((await sharp(result.images[0]!.data).metadata()).width).toBe(256);
    // The image and the mask are both input images of the tool's model.
    expect(result.usage?.input_tokens_details?.image_tokens).toBe(2 * IMAGE_INPUT_TOKENS);
    expect(sim.stats().billedTokens.input).toBe(textTokens(PROMPT) + 2 * IMAGE_INPUT_TOKENS);
    const generated = await render({ size: '256x256' });
    expect(result.images[0]!.data.equals(generated.images[0]!.data)).toBe(false);
  });

  it('a completed answer without an image is a PaidResultError carrying the billed usage', async () => {
    sim.setKnobs({ dropImages: 1 });
    const error = (await render({ size: '256x256' }).catch((e: unknown) => e)) as PaidResultError;
    expect(error).toBeInstanceOf(PaidResultError);
    expect(error.message).toMatch(/carried no image/);
    expect(error.usage?.output_tokens).toBe(sim.stats().billedTokens.output);
    expect(sim.stats().billedImages).toBe(1);
  });

  it('refuses n > 1 itself, calling nobody', async () => {
    await expect(render({ n: 2 })).rejects.toThrow(/1 image per call/);
    expect(sim.stats().requests).toBe(0);
  });

  it('is an answer the official SDK parses, with the image usage beside the mainline usage', async () => {
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: sim.url, maxRetries: 0 });
    const response = await client.responses.create({
      model: DEFAULT_RESPONSES_MODEL,
      input: 'a lighthouse at dusk',
      // No model: the tool's default (gpt-image-1), whose sizes are fixed; `auto` picks 1024².
      tools: [{ type: 'image_generation', size: 'auto', quality: 'low' }],
      tool_choice: { type: 'image_generation' },
    });
    expect(response.status).toBe('completed');
    expect(response.model).toBe(DEFAULT_RESPONSES_MODEL);
    const call = response.output.find((item) => item.type === 'image_generation_call');
    expect(call?.status).toBe('completed');
    const meta = await sharp(Buffer.from(call!.result!, 'base64')).metadata();
    expect([meta.width, meta.height]).toEqual([1024, 1024]);
    expect(sim.stats().billedImagesByModel).toEqual({ 'gpt-image-1': 1 });
    expect(response.usage?.input_tokens).toBe(textTokens('a lighthouse at dusk'));
    expect((response as unknown as { tool_usage: unknown }).tool_usage).toMatchObject({
      image_gen: { output_tokens: 272, output_tokens_details: { image_tokens: 272 } },
    });
  });

  it('bills nothing for a request without an image_generation tool', async () => {
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: sim.url, maxRetries: 0 });
    await expect(
      client.responses.create({ model: DEFAULT_RESPONSES_MODEL, input: 'hello' }),
    ).rejects.toMatchObject({ status: 400 });
    expect(sim.stats()).toMatchObject({ billedImages: 0, byStatus: { '400': 1 } });
  });
});

describe('each provider failure becomes a typed error', () => {
  it('429 rate_limit_exceeded → ProviderRateLimitedError with the wait the provider asked for', async () => {
    sim.setKnobs({ imagesPerMinute: 60 }); // one image per second
    await render({ size: '256x256' });
    const error = await render({ size: '256x256' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRateLimitedError);
    const wait = (error as ProviderRateLimitedError).retryAfterMs!;
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(1000);
    await new Promise((resolve) => setTimeout(resolve, wait));
    await expect(render({ size: '256x256' })).resolves.toBeDefined();
    const stats = sim.stats();
    expect([stats.rateLimited, stats.billedImages]).toEqual([1, 2]);
  });

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
    ['moderation_blocked', { contentPolicyPattern: 'mug' }, ProviderRejectedError, /safety system/],
    ['503', { failNext: { count: 1, status: 503 } }, ProviderUnavailableError, /503/],
    ['500 (errorRate 1)', { errorRate: 1 }, ProviderUnavailableError, /provider error 5\d\d/],
  ] as const)('%s', async (_name, knobs, type, message) => {
    sim.setKnobs(knobs as Partial<SimulatorKnobs>);
    const error = await render({ size: '256x256' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    expect(sim.stats()).toMatchObject({ requests: 1, billedImages: 0 });
    expect(sim.stats().billedTokens).toEqual({ input: 0, output: 0 });
  });

  it('moderation is ProviderRejectedError with code moderation_blocked', async () => {
    sim.setKnobs({ contentPolicyPattern: 'mug' });
    const error = (await render().catch((e: unknown) => e)) as ProviderRejectedError;
    expect(error.code).toBe('moderation_blocked');
  });

  it('a model the registry does not know → ModelUnavailableError', async () => {
    const error = await render({ model: 'gpt-image-9' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelUnavailableError);
  });

  it('a dropped connection → ProviderUnavailableError that may have been billed', async () => {
    sim.setKnobs({ resetRate: 1 });
    const error = (await render().catch((e: unknown) => e)) as ProviderUnavailableError;
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error.message).toMatch(/provider unreachable/);
    expect(error.maybeBilled).toBe(true);
  });
});
