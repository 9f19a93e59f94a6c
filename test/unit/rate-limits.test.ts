import { describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { RateLimitError, modelRateLimit } from '../../src/models/rate-limits.js';
import type { ModelSpec } from '../../src/models/registry-schema.js';

const registry = ModelRegistry.load();
const model = (id: string): ModelSpec => {
  const spec = registry.get(id);
  if (!spec) throw new Error(`no ${id} in the built-in registry`);
  return spec;
};

describe('modelRateLimit', () => {
  it.each([
    [1, 5, 100_000],
    [2, 20, 250_000],
    [3, 50, 800_000],
    [4, 150, 3_000_000],
    [5, 250, 8_000_000],
  ])('gives gpt-image-2 at tier %i its row: %i images and %i tokens a minute', (tier, i, t) => {
    expect(modelRateLimit(model('gpt-image-2'), { tier })).toEqual({
      imagesPerMinute: i,
      tokensPerMinute: t,
      source: `gpt-image-2 at usage tier ${tier}`,
    });
  });

  it('gives DALL·E models images only', () => {
    expect(modelRateLimit(model('dall-e-2'), { tier: 1 })).toEqual({
      imagesPerMinute: 500,
      tokensPerMinute: undefined,
      source: 'dall-e-2 at usage tier 1',
    });
    expect(modelRateLimit(model('dall-e-2'), { tier: 5 }).imagesPerMinute).toBe(10_000);
  });

  it('lets each override replace its own figure only', () => {
    const m = model('gpt-image-2');
    expect(modelRateLimit(m, { tier: 3, imagesPerMinute: 40 })).toEqual({
      imagesPerMinute: 40,
      tokensPerMinute: 800_000,
      source: 'RENDERMILL_IMAGES_PER_MINUTE, otherwise gpt-image-2 at usage tier 3',
    });
    expect(modelRateLimit(m, { tier: 3, tokensPerMinute: 1_000 })).toEqual({
      imagesPerMinute: 50,
      tokensPerMinute: 1_000,
      source: 'RENDERMILL_TOKENS_PER_MINUTE, otherwise gpt-image-2 at usage tier 3',
    });
    expect(modelRateLimit(m, { tier: 3, imagesPerMinute: 7, tokensPerMinute: 9_000 })).toEqual({
      imagesPerMinute: 7,
      tokensPerMinute: 9_000,
      source: 'RENDERMILL_IMAGES_PER_MINUTE and RENDERMILL_TOKENS_PER_MINUTE',
    });
  });

  it('names an override as wholly the source when the model has nothing else to give', () => {
    expect(modelRateLimit(model('dall-e-3'), { tier: 2, imagesPerMinute: 12 })).toEqual({
      imagesPerMinute: 12,
      tokensPerMinute: undefined,
      source: 'RENDERMILL_IMAGES_PER_MINUTE',
    });
  });

  it("names a fallback's overrides by the fallback", () => {
    const limit = modelRateLimit(model('gpt-image-2'), {
      tier: 1,
      imagesPerMinute: 3,
      overridesFrom: 'fallback "gateway"',
    });
    expect(limit.source).toBe(
      'fallback "gateway" images_per_minute, otherwise gpt-image-2 at usage tier 1',
    );
  });

  it('refuses a tier the model has no row for, naming model and tier', () => {
    const m = model('gpt-image-2');
    const partial: ModelSpec = {
      ...m,
      rate_limits: { ...m.rate_limits, tiers: { '1': { images_per_minute: 5 } } },
    };
    expect(() => modelRateLimit(partial, { tier: 4 })).toThrow(RateLimitError);
    expect(() => modelRateLimit(partial, { tier: 4 })).toThrow(
      /model gpt-image-2 has no rate limits for usage tier 4 \(the registry has tiers 1\)/,
    );
    // One override is not enough: the other figure would still come from the missing row.
    expect(() => modelRateLimit(partial, { tier: 4, imagesPerMinute: 10 })).toThrow(RateLimitError);
    // Both given: the table is not needed.
    expect(modelRateLimit(partial, { tier: 4, imagesPerMinute: 10, tokensPerMinute: 20 })).toEqual({
      imagesPerMinute: 10,
      tokensPerMinute: 20,
      source: 'RENDERMILL_IMAGES_PER_MINUTE and RENDERMILL_TOKENS_PER_MINUTE',
    });
  });
});
