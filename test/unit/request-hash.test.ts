import { describe, expect, it } from 'vitest';
import type { RenderSpec } from '../../src/models/render-spec.js';
import { normalizePrompt, requestHash } from '../../src/models/request-hash.js';

const spec: RenderSpec = {
  operation: 'generate',
  model: 'gpt-image-2',
  prompt: 'a red mug',
  size: '256x256',
  n: 1,
};

describe('requestHash', () => {
  it('ignores whitespace and Unicode spelling differences in the prompt', () => {
    expect(requestHash({ ...spec, prompt: '  a   red\tmug \n' })).toBe(requestHash(spec));
    // "é" precomposed vs. e + combining acute accent
    expect(requestHash({ ...spec, prompt: 'caf\u00e9' })).toBe(
      requestHash({ ...spec, prompt: 'cafe\u0301' }),
    );
  });
  it('changes with anything that changes the pixels', () => {
    const base = requestHash(spec);
    expect(requestHash({ ...spec, prompt: 'a blue mug' })).not.toBe(base);
    expect(requestHash({ ...spec, size: '512x512' })).not.toBe(base);
    expect(requestHash({ ...spec, model: 'gpt-image-1.5' })).not.toBe(base);
    expect(requestHash({ ...spec, quality: 'high' })).not.toBe(base);
    expect(requestHash({ ...spec, output_format: 'webp' })).not.toBe(base);
  });
  it('is a stable sha256 hex digest', () => {
    expect(requestHash(spec)).toMatch(/^[0-9a-f]{64}$/);
    expect(normalizePrompt(' x  y ')).toBe('x y');
  });
});
