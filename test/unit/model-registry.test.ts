import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import builtIn from '../../src/models/models.json' with { type: 'json' };
import { ModelRegistry, RegistryFileError } from '../../src/models/model-registry.js';

const dir = mkdtempSync(join(tmpdir(), 'rendermill-registry-'));
let files = 0;
const userFile = (content: unknown) => {
  const path = join(dir, `models-${++files}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
};
const builtInModel = (id: string) => {
  const model = builtIn.models.find((m) => m.id === id);
  if (!model) throw new Error(`no ${id} in models.json`);
  return model;
};

describe('the built-in registry', () => {
  it('gives every model rate limits for all five usage tiers, with their source and date', () => {
    const registry = ModelRegistry.load();
    for (const id of registry.ids()) {
      const limits = registry.get(id)?.rate_limits;
      expect(limits?.source, id).toBeTruthy();
      expect(limits?.checked_on, id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Object.keys(limits?.tiers ?? {}), id).toEqual(['1', '2', '3', '4', '5']);
    }
  });

  it('holds the per-model tables: gpt-image images and tokens, DALL·E images only', () => {
    const registry = ModelRegistry.load();
    const images = (id: string) =>
      Object.values(registry.get(id)?.rate_limits.tiers ?? {}).map((r) => r.images_per_minute);
    const tokens = (id: string) =>
      Object.values(registry.get(id)?.rate_limits.tiers ?? {}).map((r) => r.tokens_per_minute);
    for (const id of ['gpt-image-2', 'gpt-image-1', 'gpt-image-1-mini', 'gpt-image-1.5']) {
      expect(images(id), id).toEqual([5, 20, 50, 150, 250]);
      expect(tokens(id), id).toEqual([100_000, 250_000, 800_000, 3_000_000, 8_000_000]);
    }
    for (const id of ['dall-e-2', 'dall-e-3']) {
      expect(images(id), id).toEqual([500, 2_500, 5_000, 7_500, 10_000]);
      expect(tokens(id), id).toEqual([undefined, undefined, undefined, undefined, undefined]);
    }
  });
});

describe('the models served on Replicate and fal', () => {
  const registry = ModelRegistry.load();
  const routed = registry
    .ids()
    .flatMap((id) => registry.get(id) ?? [])
    .filter((m) => m.remote_ids !== undefined);
  const fixedSizes = (id: string) => {
    const sizes = registry.get(id)?.sizes;
    return sizes && 'fixed' in sizes ? sizes.fixed : [];
  };

  it('include the seven rendermill routes, each with its Replicate id', () => {
    expect(routed.map((m) => m.id)).toEqual(
      expect.arrayContaining([
        'flux-1.1-pro',
        'flux-dev',
        'flux-schnell',
        'ideogram-v3-turbo',
        'imagen-4',
        'recraft-v3',
        'stable-diffusion-3.5-large',
      ]),
    );
    for (const m of routed) expect(m.remote_ids?.replicate, m.id).toMatch(/^[\w.-]+\/[\w.-]+$/);
    for (const m of routed) {
      if (m.remote_ids?.fal) expect(m.remote_ids.fal, m.id).toMatch(/^fal-ai\//);
    }
  });

  it('say where and when their facts were checked', () => {
    for (const m of routed) {
      expect(m.checked?.source, m.id).toMatch(/https:\/\/replicate\.com\//);
      expect(m.checked?.checked_on, m.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('have fixed sizes with sides multiple of 8, except recraft-v3 (1365x1024 as published)', () => {
    for (const m of routed) {
      expect('fixed' in m.sizes, m.id).toBe(true);
      if (m.id === 'recraft-v3') continue;
      for (const size of fixedSizes(m.id)) {
        const [w, h] = size.split('x').map(Number) as [number, number];
        expect([w % 8, h % 8], `${m.id} ${size}`).toEqual([0, 0]);
      }
    }
    expect(fixedSizes('recraft-v3')).toContain('1365x1024');
  });

  it('list one size per aspect ratio, 1024x1024 for 1:1', () => {
    for (const m of routed) {
      const ratios = fixedSizes(m.id).map((size) => {
        const [w, h] = size.split('x').map(Number) as [number, number];
        return Math.round((w / h) * 100);
      });
      expect(new Set(ratios).size, m.id).toBe(ratios.length);
      expect(fixedSizes(m.id), m.id).toContain('1024x1024');
    }
  });

  /** What one prediction returns: flux-schnell and flux-dev take num_outputs 1–4 on Replicate. */
  const IMAGES_PER_PREDICTION: Record<string, number> = {
    'flux-schnell': 4,
    'flux-dev': 4,
    'flux-1.1-pro': 1,
    'imagen-4': 1,
    'recraft-v3': 1,
    'ideogram-v3-turbo': 1,
    'stable-diffusion-3.5-large': 1,
  };

  it('emulate n up to 10 by calls returning what one prediction does, priced per image', () => {
    for (const m of routed) {
      expect(m.n, m.id).toEqual({ min: 1, max: 10 });
      expect(m.images_per_call, m.id).toBe(IMAGES_PER_PREDICTION[m.id] ?? m.images_per_call);
      expect(m.pricing.kind, m.id).toBe('per_image');
      expect(
        Object.values(m.rate_limits.tiers).map((t) => t.images_per_minute),
        m.id,
      ).toEqual([600, 600, 600, 600, 600]);
    }
  });
});

describe('a user registry file', () => {
  it('refuses a model without rate_limits, saying so', () => {
    const { rate_limits: _, ...withoutLimits } = builtInModel('gpt-image-2');
    const path = userFile({ models: [{ ...withoutLimits, id: 'my-model' }] });
    expect(() => ModelRegistry.load(path)).toThrow(RegistryFileError);
    expect(() => ModelRegistry.load(path)).toThrow(/rate_limits/);
  });

  it('refuses rate limits with a tier outside 1–5 or without a source', () => {
    const model = builtInModel('gpt-image-2');
    const badTier = userFile({
      models: [
        {
          ...model,
          rate_limits: { ...model.rate_limits, tiers: { '6': { images_per_minute: 1 } } },
        },
      ],
    });
    expect(() => ModelRegistry.load(badTier)).toThrow(/a usage tier is 1, 2, 3, 4 or 5/);
    const { source: _, ...noSource } = model.rate_limits;
    const path = userFile({ models: [{ ...model, rate_limits: noSource }] });
    expect(() => ModelRegistry.load(path)).toThrow(/source/);
  });

  it('corrects single tiers of a model, field by field, keeping the rest', () => {
    const path = userFile({
      rate_limits: {
        'gpt-image-2': {
          source: 'our account limits page, 2026-12-04',
          tiers: { '1': { images_per_minute: 7 }, '3': { tokens_per_minute: 900_000 } },
        },
      },
    });
    const limits = ModelRegistry.load(path).get('gpt-image-2')?.rate_limits;
    expect(limits?.tiers).toEqual({
      '1': { images_per_minute: 7, tokens_per_minute: 100_000 },
      '2': { images_per_minute: 20, tokens_per_minute: 250_000 },
      '3': { images_per_minute: 50, tokens_per_minute: 900_000 },
      '4': { images_per_minute: 150, tokens_per_minute: 3_000_000 },
      '5': { images_per_minute: 250, tokens_per_minute: 8_000_000 },
    });
    expect(limits?.source).toContain(`corrected by ${path} (our account limits page, 2026-12-04)`);
    expect(limits?.checked_on).toBe(builtInModel('gpt-image-2').rate_limits.checked_on);
    // The other models are untouched.
    expect(ModelRegistry.load(path).get('dall-e-2')).toEqual(ModelRegistry.load().get('dall-e-2'));
  });

  it("applies the corrections after the file's own models, and adds a missing tier", () => {
    const model = builtInModel('gpt-image-2');
    const path = userFile({
      models: [
        {
          ...model,
          id: 'gateway-image',
          rate_limits: {
            source: 'gateway docs',
            checked_on: '2026-12-01',
            tiers: { '1': { images_per_minute: 30 } },
          },
        },
      ],
      rate_limits: {
        'gateway-image': {
          tiers: { '1': { tokens_per_minute: 1_000 }, '2': { images_per_minute: 60 } },
        },
      },
    });
    const limits = ModelRegistry.load(path).get('gateway-image')?.rate_limits;
    expect(limits?.tiers).toEqual({
      '1': { images_per_minute: 30, tokens_per_minute: 1_000 },
      '2': { images_per_minute: 60 },
    });
    expect(limits?.source).toBe(`gateway docs; corrected by ${path}`);
  });

  it('refuses a correction naming an unknown model, or a tier outside 1–5', () => {
    const unknown = userFile({
      rate_limits: { 'gpt-image-9': { tiers: { '1': { images_per_minute: 5 } } } },
    });
    expect(() => ModelRegistry.load(unknown)).toThrow(RegistryFileError);
    expect(() => ModelRegistry.load(unknown)).toThrow(
      /rate_limits names model "gpt-image-9", which is not in the registry \(known: dall-e-2/,
    );
    const badTier = userFile({
      rate_limits: { 'gpt-image-2': { tiers: { '0': { images_per_minute: 5 } } } },
    });
    expect(() => ModelRegistry.load(badTier)).toThrow(RegistryFileError);
    expect(() => ModelRegistry.load(badTier)).toThrow(/a usage tier is 1, 2, 3, 4 or 5/);
  });

  it('refuses a correction that adds a tier without its images per minute', () => {
    const model = builtInModel('gpt-image-2');
    const path = userFile({
      models: [
        {
          ...model,
          id: 'partial',
          rate_limits: { ...model.rate_limits, tiers: { '1': { images_per_minute: 5 } } },
        },
      ],
      rate_limits: { partial: { tiers: { '4': { tokens_per_minute: 5 } } } },
    });
    expect(() => ModelRegistry.load(path)).toThrow(
      /rate_limits\.partial\.tiers\.4 adds usage tier 4, which partial has no row for, so it needs images_per_minute/,
    );
  });

  it('refuses fields a correction does not know', () => {
    const path = userFile({
      rate_limits: { 'gpt-image-2': { tiers: { '1': { requests_per_minute: 5 } } } },
    });
    expect(() => ModelRegistry.load(path)).toThrow(RegistryFileError);
  });
});
