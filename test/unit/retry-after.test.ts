import { describe, expect, it } from 'vitest';
import { parseDuration, retryAfterMs } from '../../src/providers/retry-after.js';

describe('retryAfterMs', () => {
  it('prefers retry-after-ms', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '350', 'retry-after': '9' }))).toBe(350);
  });
  it('reads retry-after in seconds and as an HTTP date', () => {
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-11-21T10:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Sat, 21 Nov 2026 10:00:05 GMT' }), now)).toBe(
      5000,
    );
  });
  it('falls back to x-ratelimit-reset-requests durations', () => {
    expect(retryAfterMs(new Headers({ 'x-ratelimit-reset-requests': '6m0s' }))).toBe(360_000);
  });
  it('is undefined without hints', () => {
    expect(retryAfterMs(new Headers())).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});

describe('parseDuration', () => {
  it.each([
    ['6m0s', 360_000],
    ['1.5s', 1500],
    ['120ms', 120],
    ['1h2m3s', 3_723_000],
    ['0.8s', 800],
  ])('%s → %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['', 'soon', '5', '5x'])('rejects %j', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});
