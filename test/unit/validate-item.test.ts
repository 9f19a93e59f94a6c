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
