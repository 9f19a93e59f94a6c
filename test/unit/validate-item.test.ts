import { describe, expect, it } from 'vitest';
import type { BatchItemInput } from '../../src/contracts/batch-request.js';
import { ModelRegistry, RegistryFileError } from '../../src/models/model-registry.js';
import { resolveItem, type ValidationContext } from '../../src/batches/validate-item.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ctx: ValidationContext = {
  registry: ModelRegistry.load(),
  defaultModel: 'gpt-image-2',
  enforceRetirements: false,
  today: new Date('2026-11-21T12:00:00Z'),
};

const problemsOf = (item: Partial<BatchItemInput>, defaults = {}, context = ctx) =>
  resolveItem({ id: 'sku-1', ...item }, 0, defaults, context).problems;

describe('resolveItem', () => {
  it('applies batch defaults and item overrides', () => {
    const { spec } = resolveItem(
      { id: 'a', prompt: 'a mug', size: '512x512' },
      0,
      { model: 'dall-e-2', size: '256x256', n: 2 },
      ctx,
    );
    expect(spec).toEqual({
      operation: 'generate',
      model: 'dall-e-2',
      prompt: 'a mug',
      size: '512x512',
      n: 2,
    });
  });

  it('defaults to the configured model at 1024x1024', () => {
    expect(resolveItem({ id: 'a', prompt: 'x' }, 0, {}, ctx).spec).toMatchObject({
      model: 'gpt-image-2',
      size: '1024x1024',
      n: 1,
    });
  });

  it('names an unknown model and lists the known ones', () => {
    expect(problemsOf({ prompt: 'x', model: 'dall-e-9' })).toEqual([
      {
        field: 'items[0].model',
        message: expect.stringMatching(
          /unknown model "dall-e-9"; known models: dall-e-2, dall-e-3/,
        ),
      },
    ]);
  });

  it('names the field with the allowed sizes, at batch level when the default was wrong', () => {
    expect(problemsOf({ prompt: 'x' }, { model: 'dall-e-2', size: '300x300' })).toEqual([
      {
        field: 'size',
        message: 'size "300x300" is not offered by dall-e-2; allowed: 256x256, 512x512, 1024x1024',
      },
    ]);
  });

  it('checks gpt-image-2 free sizes', () => {
    expect(problemsOf({ prompt: 'x', size: '1000x1000' })[0]?.message).toMatch(/divisible by 16/);
    expect(problemsOf({ prompt: 'x', size: '4096x1024' })[0]?.message).toMatch(/larger than/);
    expect(problemsOf({ prompt: 'x', size: '2160x3840' })).toEqual([]);
  });

  it('enforces prompt length and n per model', () => {
    expect(problemsOf({ prompt: 'x'.repeat(1001), model: 'dall-e-2' })[0]).toEqual({
      field: 'items[0].prompt',
      message: 'prompt is 1001 characters; dall-e-2 allows at most 1000',
    });
    expect(problemsOf({ prompt: 'x', model: 'dall-e-3', n: 2 })[0]?.message).toBe(
      'n must be between 1 and 1 for dall-e-3, got 2',
    );
    expect(problemsOf({ prompt: '   ' })[0]?.message).toMatch(/prompt is required/);
  });

  it('takes any n the model allows, whatever the rate limit: heavy items are split into calls', () => {
    expect(problemsOf({ prompt: 'x', n: 10 })).toEqual([]);
  });

  it('checks qualities, styles, formats and their combinations', () => {
    expect(problemsOf({ prompt: 'x', model: 'dall-e-2', quality: 'hd' })[0]?.message).toBe(
      'dall-e-2 takes no quality',
    );
    expect(problemsOf({ prompt: 'x', model: 'dall-e-3', style: 'anime' })[0]?.message).toMatch(
      /allowed: vivid, natural/,
    );
    expect(
      problemsOf({ prompt: 'x', background: 'transparent', output_format: 'jpeg' })[0]?.field,
    ).toBe('items[0].background');
    expect(problemsOf({ prompt: 'x', output_compression: 50 })[0]?.field).toBe(
      'items[0].output_compression',
    );
  });

  it('checks operations and their inputs', () => {
    expect(
      problemsOf({ prompt: 'x', model: 'dall-e-3', operation: 'edit', image: 'a.png' })[0]?.message,
    ).toMatch(/dall-e-3 cannot edit/);
    expect(problemsOf({ prompt: 'x', operation: 'edit' })[0]?.message).toMatch(
      /needs an input image/,
    );
    expect(
      problemsOf({ model: 'dall-e-2', operation: 'variation', image: ['a.png', 'b.png'] })[0]
        ?.message,
    ).toMatch(/at most 1 input image/);
    expect(problemsOf({ model: 'dall-e-2', operation: 'variation', image: 'a.png' })).toEqual([]);
    expect(problemsOf({ prompt: 'x', image: 'a.png' })[0]?.field).toBe('items[0].image');
  });

  it('refuses retired models only where the provider does', () => {
    const openai = { ...ctx, enforceRetirements: true };
    expect(problemsOf({ prompt: 'x', model: 'dall-e-2' }, {}, openai)[0]?.message).toBe(
      'dall-e-2 was retired by OpenAI on 2026-05-12; use gpt-image-2',
    );
    // gpt-image-1.5 shuts down on 2026-12-01: still allowed on 2026-11-21, refused after.
    expect(problemsOf({ prompt: 'x', model: 'gpt-image-1.5' }, {}, openai)).toEqual([]);
    expect(
      problemsOf(
        { prompt: 'x', model: 'gpt-image-1.5' },
        {},
        { ...openai, today: new Date('2026-12-01') },
      )[0]?.message,
    ).toMatch(/retired by OpenAI on 2026-12-01/);
    expect(problemsOf({ prompt: 'x', model: 'dall-e-2' })).toEqual([]);
  });
});

describe('resolveItem: aspect ratios, resolutions and formats', () => {
  const resolve = (item: Partial<BatchItemInput>, defaults = {}) =>
    resolveItem({ id: 'sku-1', prompt: 'a mug', ...item }, 0, defaults, ctx);

  it('fits aspect_ratio and resolution to the model, with no warning when it fits', () => {
    const resolved = resolve({ aspect_ratio: '16:9', resolution: '2K' });
    expect(resolved.spec?.size).toBe('2048x1152');
    expect(resolved.warnings).toEqual([]);
    expect(resolve({ model: 'flux-schnell', aspect_ratio: '16:9' }).spec?.size).toBe('1344x768');
  });

  it('warns when the model renders another ratio, and still accepts the item', () => {
    const resolved = resolve({ model: 'dall-e-2', aspect_ratio: '16:9' });
    expect(resolved.problems).toEqual([]);
    expect(resolved.spec?.size).toBe('1024x1024');
    expect(resolved.warnings).toEqual([
      expect.objectContaining({ field: 'aspect_ratio', asked: '16:9', done: '1024x1024' }),
    ]);
  });

  it("lets an item's own ratio override the batch's default size, and an item's size win", () => {
    expect(resolve({ aspect_ratio: '9:16' }, { size: '1024x1024' }).spec?.size).toBe('576x1024');
    const sized = resolve({ size: '1536x1024' }, { aspect_ratio: '9:16' });
    expect(sized.spec?.size).toBe('1536x1024');
    expect(sized.warnings).toEqual([
      expect.objectContaining({ field: 'aspect_ratio', asked: '9:16', done: '1536x1024' }),
    ]);
  });

  it('refuses a malformed aspect_ratio or an unknown resolution, naming the field', () => {
    expect(resolve({ aspect_ratio: '16x9' }).problems).toEqual([
      {
        field: 'items[0].aspect_ratio',
        message: 'aspect_ratio must be W:H with whole numbers from 1 to 100, e.g. 16:9; got "16x9"',
      },
    ]);
    expect(resolve({}, { resolution: '8K' }).problems).toEqual([
      { field: 'resolution', message: 'resolution must be one of 0.5K, 1K, 2K, 4K; got "8K"' },
    ]);
    expect(resolve({ aspect_ratio: '0:1', resolution: '3K' }).problems.map((p) => p.field)).toEqual(
      ['items[0].aspect_ratio', 'items[0].resolution'],
    );
  });

  it('accepts avif for every model, converting what the model cannot produce', () => {
    const gpt = resolve({ output_format: 'avif', output_compression: 40 });
    expect(gpt.spec).toMatchObject({ output_format: 'avif', output_compression: 40 });
    expect(gpt.warnings).toEqual([
      expect.objectContaining({
        field: 'output_format',
        asked: 'avif',
        done: 'rendered as png and converted with sharp',
      }),
    ]);
    const dalle = resolve({ model: 'dall-e-3', output_format: 'webp' });
    expect(dalle.spec?.output_format).toBe('webp');
    expect(dalle.warnings).toEqual([
      expect.objectContaining({ asked: 'webp', done: 'rendered as png and converted with sharp' }),
    ]);
    // recraft-v3 gives webp only: that is what it renders before converting.
    expect(resolve({ model: 'recraft-v3', output_format: 'png' }).warnings?.[0]?.done).toBe(
      'rendered as webp and converted with sharp',
    );
    expect(resolve({ output_format: 'webp' }).warnings).toEqual([]);
  });

  it('refuses other formats, compression of png, and a transparent jpeg', () => {
    expect(resolve({ output_format: 'gif' }).problems[0]).toEqual({
      field: 'items[0].output_format',
      message: 'output_format must be one of png, jpeg, webp, avif; got "gif"',
    });
    expect(resolve({ output_format: 'png', output_compression: 50 }).problems[0]?.field).toBe(
      'items[0].output_compression',
    );
    expect(resolve({ background: 'transparent', output_format: 'jpeg' }).problems[0]?.field).toBe(
      'items[0].background',
    );
    expect(resolve({ background: 'transparent', output_format: 'avif' }).problems).toEqual([]);
  });
});

describe('ModelRegistry.load', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rendermill-registry-'));

  it('adds and replaces models from a user file', () => {
    const file = path.join(dir, 'models.json');
    writeFileSync(
      file,
      JSON.stringify({
        models: [
          {
            id: 'flux-schnell',
            operations: ['generate'],
            sizes: { fixed: ['512x512'] },
            n: { min: 1, max: 4 },
            prompt_max_chars: 2000,
            pricing: { kind: 'per_image', usd: { standard: { '512x512': 0.003 } } },
            rate_limits: {
              source: 'test',
              checked_on: '2026-12-05',
              tiers: { '1': { images_per_minute: 60 } },
            },
          },
          {
            id: 'dall-e-2',
            operations: ['generate'],
            sizes: { fixed: ['256x256'] },
            n: { min: 1, max: 1 },
            prompt_max_chars: 10,
            pricing: { kind: 'per_image', usd: { standard: { '256x256': 0.01 } } },
            rate_limits: {
              source: 'test',
              checked_on: '2026-12-05',
              tiers: { '1': { images_per_minute: 60 } },
            },
          },
        ],
      }),
    );
    const registry = ModelRegistry.load(file);
    expect(registry.get('flux-schnell')?.n.max).toBe(4);
    expect(registry.get('dall-e-2')?.prompt_max_chars).toBe(10);
    expect(registry.get('gpt-image-2')).toBeDefined();
  });

  it('explains what is wrong with a bad file', () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ models: [{ id: 'x', operations: ['paint'] }] }));
    expect(() => ModelRegistry.load(file)).toThrow(RegistryFileError);
    expect(() => ModelRegistry.load(file)).toThrow(/operations/);
    expect(() => ModelRegistry.load(path.join(dir, 'missing.json'))).toThrow(
      /cannot read model registry/,
    );
  });
});
