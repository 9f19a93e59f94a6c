import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, jsonNestsDeeperThan } from '../../src/catalog/json-depth.js';

const nested = (levels: number, open = '[', close = ']') =>
  open.repeat(levels) + close.repeat(levels);

describe('jsonNestsDeeperThan', () => {
  it('draws the line at the limit: 64 levels pass, 65 do not', () => {
    expect(MAX_JSON_DEPTH).toBe(64);
    expect(jsonNestsDeeperThan(nested(64))).toBe(false);
    expect(jsonNestsDeeperThan(nested(65))).toBe(true);
    expect(jsonNestsDeeperThan('{"a":'.repeat(65) + '1' + '}'.repeat(65))).toBe(true);
    expect(jsonNestsDeeperThan('{"a":'.repeat(64) + '1' + '}'.repeat(64))).toBe(false);
  });

  it('counts depth, not brackets: siblings do not add up', () => {
    const wide = `[${Array.from({ length: 10_000 }, () => nested(10)).join(',')}]`;
    expect(jsonNestsDeeperThan(wide)).toBe(false);
  });

  it('ignores brackets in strings, escaped quotes included', () => {
    const text = JSON.stringify({ prompt: '[[[[{{{{'.repeat(100), quote: 'a \\" [[[ "' });
    expect(jsonNestsDeeperThan(text, 2)).toBe(false);
    expect(jsonNestsDeeperThan(JSON.stringify(['\\', [[1]]]), 2)).toBe(true);
  });

  it('mixes arrays and objects', () => {
    expect(jsonNestsDeeperThan('[{"a":[{"b":[1]}]}]', 4)).toBe(true);
    expect(jsonNestsDeeperThan('[{"a":[{"b":[1]}]}]', 5)).toBe(false);
  });

  it('stops at the first level too deep: 10 million levels are decided at the 65th', () => {
    // No timing: the text is 20 MB, and what matters is the answer, found on the way in.
    expect(jsonNestsDeeperThan(nested(10_000_000))).toBe(true);
  });
});
