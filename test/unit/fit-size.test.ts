import { describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { fitSize, parseAspectRatio } from '../../src/models/fit-size.js';

const registry = ModelRegistry.load();
const model = (id: string) => {
  const m = registry.get(id);
  if (!m) throw new Error(`no ${id}`);
  return m;
};

describe('fitSize', () => {
  it('fits 16:9 at 1K to each kind of model', () => {
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '16:9' })).toEqual({ size: '1024x576' });
    expect(fitSize(model('dall-e-3'), { aspect_ratio: '16:9' })).toEqual({ size: '1792x1024' });
    expect(fitSize(model('flux-schnell'), { aspect_ratio: '16:9', resolution: '1K' })).toEqual({
      size: '1344x768',
    });
    expect(fitSize(model('imagen-4'), { aspect_ratio: '9:16' })).toEqual({ size: '768x1408' });
  });

  it('says so when the model has nothing near the ratio', () => {
    expect(fitSize(model('dall-e-2'), { aspect_ratio: '16:9' })).toEqual({
      size: '1024x1024',
      warning: {
        field: 'aspect_ratio',
        asked: '16:9',
        done: '1024x1024',
        message:
          'dall-e-2 cannot render 16:9 (aspect ratio); rendered 1024x1024, the nearest it offers',
      },
    });
    expect(fitSize(model('gpt-image-1'), { aspect_ratio: '16:9' })).toMatchObject({
      size: '1536x1024',
      warning: { field: 'aspect_ratio', asked: '16:9', done: '1536x1024' },
    });
  });

  it('breaks ties in ratio by the long edge nearest the resolution', () => {
    expect(fitSize(model('dall-e-2'), { resolution: '0.5K' })).toEqual({ size: '512x512' });
    expect(fitSize(model('dall-e-2'), {})).toEqual({ size: '1024x1024' });
    expect(fitSize(model('dall-e-2'), { resolution: '2K' })).toMatchObject({
      size: '1024x1024',
      warning: { field: 'resolution', asked: '2K', done: '1024x1024' },
    });
  });

  it('scales free sizes to the resolution, rounded to the model multiple', () => {
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '16:9', resolution: '2K' })).toEqual({
      size: '2048x1152',
    });
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '9:16', resolution: '4K' })).toEqual({
      size: '2160x3840',
    });
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '4:3', resolution: '0.5K' })).toEqual({
      size: '512x384',
    });
    // 1024 × 7 / 3 = 438.9, rounded to 16 → 432: within rounding, no warning.
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '7:3' })).toEqual({ size: '1024x432' });
  });

  it('clamps a free size to the model edges, keeping the ratio, with a warning', () => {
    expect(fitSize(model('gpt-image-2'), { aspect_ratio: '1:1', resolution: '4K' })).toEqual({
      size: '2160x2160',
      warning: {
        field: 'resolution',
        asked: '1:1 at 4K',
        done: '2160x2160',
        message:
          'gpt-image-2 cannot render 1:1 at 4K (resolution); rendered 2160x2160, the nearest it offers',
      },
    });
  });

  it('judges a fixed size by its resolution class: ~1 MP is 1K, not 4K', () => {
    expect(fitSize(model('flux-schnell'), { aspect_ratio: '3:2', resolution: '1K' })).toEqual({
      size: '1216x832',
    });
    expect(fitSize(model('flux-schnell'), { aspect_ratio: '3:2', resolution: '4K' })).toMatchObject(
      { size: '1216x832', warning: { field: 'resolution', asked: '3:2 at 4K' } },
    );
  });

  it('lets size win, saying what was ignored', () => {
    expect(fitSize(model('gpt-image-2'), { size: '1536x1024' })).toEqual({ size: '1536x1024' });
    expect(
      fitSize(model('gpt-image-2'), { size: '1536x1024', aspect_ratio: '16:9', resolution: '2K' }),
    ).toEqual({
      size: '1536x1024',
      warning: {
        field: 'aspect_ratio',
        asked: '16:9 at 2K',
        done: '1536x1024',
        message: 'size 1536x1024 was given, so aspect_ratio and resolution were ignored',
      },
    });
  });
});

describe('parseAspectRatio', () => {
  it('reads W:H with small whole numbers only', () => {
    expect(parseAspectRatio('16:9')).toEqual({ w: 16, h: 9 });
    expect(parseAspectRatio('100:1')).toEqual({ w: 100, h: 1 });
    for (const bad of ['16x9', '0:1', '1.5:1', '101:1', '16:9:1', ' 16:9', '']) {
      expect(parseAspectRatio(bad), bad).toBeUndefined();
    }
  });
});
