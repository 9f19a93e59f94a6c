import { describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../src/models/model-registry.js';
import {
  actualCostMicros,
  batchPricing,
  maxCostMicros,
  outputTokensPerImage,
} from '../../src/models/pricing.js';
import type { PerTokenPricing } from '../../src/models/registry-schema.js';

const registry = ModelRegistry.load();
const model = (id: string) => {
  const m = registry.get(id);
  if (!m) throw new Error(`no ${id}`);
  return m;
};
const req = (size: string, n = 1, quality?: string, promptChars = 100, inputImages = 0) => ({
  size,
  n,
  quality,
  promptChars,
  inputImages,
});

describe('prices in micro-dollars', () => {
  it('prices DALL·E 2 per image by size', () => {
    expect(actualCostMicros(model('dall-e-2'), req('256x256'), undefined)).toBe(16_000);
    expect(actualCostMicros(model('dall-e-2'), req('512x512', 3), undefined)).toBe(54_000);
    expect(maxCostMicros(model('dall-e-2'), req('1024x1024', 10))).toBe(200_000);
  });

  it('prices DALL·E 3 by quality and size', () => {
    expect(actualCostMicros(model('dall-e-3'), req('1024x1024'), undefined)).toBe(40_000);
    expect(actualCostMicros(model('dall-e-3'), req('1792x1024', 1, 'hd'), undefined)).toBe(120_000);
  });

  it.each([
    ['gpt-image-1', 40, [11_000, 42_000, 167_000]],
    ['gpt-image-1-mini', 8, [5_000, 11_000, 36_000]],
  ] as const)(
    '%s matches the published per-image prices within a tenth of a cent',
    (id, rate, prices) => {
      const pricing = model(id).pricing as PerTokenPricing;
      (['low', 'medium', 'high'] as const).forEach((quality, i) => {
        const micros = outputTokensPerImage(pricing, '1024x1024', quality) * rate;
        expect(Math.abs(micros - prices[i]!)).toBeLessThanOrEqual(1000);
      });
    },
  );

  it.each([
    ['flux-schnell', 3_000],
    ['flux-dev', 25_000],
    ['flux-1.1-pro', 40_000],
    ['imagen-4', 40_000],
    ['recraft-v3', 40_000],
    ['ideogram-v3-turbo', 30_000],
    ['stable-diffusion-3.5-large', 65_000],
  ] as const)('prices %s at its flat Replicate price per image, any size', (id, micros) => {
    const sizes = model(id).sizes;
    const size = 'fixed' in sizes ? (sizes.fixed.at(-1) as string) : '1024x1024';
    expect(actualCostMicros(model(id), req(size), undefined)).toBe(micros);
    expect(maxCostMicros(model(id), req('1024x1024', 10))).toBe(10 * micros);
  });

  it('settles gpt-image models from usage', () => {
    const usage = {
      input_tokens: 50,
      output_tokens: 272,
      input_tokens_details: { text_tokens: 50, image_tokens: 0 },
    };
    // 272 × $40/M + 50 × $5/M = 10,880 + 250 micro-dollars
    expect(actualCostMicros(model('gpt-image-1'), req('1024x1024', 1, 'low'), usage)).toBe(11_130);
  });

  it('prices gpt-image-2 sizes by area against 1024x1024', () => {
    const pricing = model('gpt-image-2').pricing as PerTokenPricing;
    expect(outputTokensPerImage(pricing, '256x256', 'low')).toBe(17); // 272 / 16
    expect(outputTokensPerImage(pricing, '2048x1024', 'high')).toBe(8320);
  });

  it('reserves at least what any outcome can cost', () => {
    const m = model('gpt-image-2');
    const r = req('512x512', 2, 'auto', 400);
    const worstUsage = {
      input_tokens: 400,
      output_tokens: 2 * outputTokensPerImage(m.pricing as PerTokenPricing, '512x512', 'high'),
      input_tokens_details: { text_tokens: 400, image_tokens: 0 },
    };
    expect(maxCostMicros(m, r)).toBeGreaterThanOrEqual(actualCostMicros(m, r, worstUsage));
    expect(maxCostMicros(m, r)).toBeGreaterThan(actualCostMicros(m, r, undefined));
  });
});

describe('batchPricing: how a route prices a model in its provider’s Batch API', () => {
  const gptImage = model('gpt-image-2');
  const dalle = model('dall-e-3');

  it('takes the route’s flat batch price first, for any model', () => {
    expect(
      batchPricing(gptImage, { flatBatchImageMicros: 7_000, flatImageMicros: 20_000 }),
    ).toEqual({ flatImageMicros: 7_000 });
    expect(batchPricing(dalle, { flatBatchImageMicros: 7_000 })).toEqual({
      flatImageMicros: 7_000,
    });
  });

  it('else the registry’s factor, but never on top of a flat realtime price', () => {
    expect(batchPricing(gptImage, {})).toEqual({ factor: gptImage.batch!.price_factor });
    expect(batchPricing(gptImage, { flatImageMicros: 20_000 })).toBeUndefined();
  });

  it('offers nothing for a model the Batch API does not take, or one it does not know', () => {
    expect(dalle.batch).toBeUndefined();
    expect(batchPricing(dalle, {})).toBeUndefined();
    expect(batchPricing(undefined, {})).toBeUndefined();
  });
});
