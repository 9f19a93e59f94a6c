import { describe, expect, it } from 'vitest';
import { TIER_IMAGES_PER_MINUTE } from '../../src/config/env-schema.js';
import { imagesAllowedAtOnce, limitShape } from '../../src/limits/limit-shape.js';

describe('limitShape', () => {
  it('keeps the burst under the provider’s one-second window, with a margin for jitter', () => {
    expect(limitShape(500).burst).toBe(8); // provider window 9, 100 ms of jitter = 1
    expect(limitShape(10_000).burst).toBe(150); // provider window 167, 100 ms of jitter = 17
    expect(limitShape(60).burst).toBe(1); // never below one image
    expect(imagesAllowedAtOnce(2_500)).toBe(limitShape(2_500).burst);
  });

  it('refills in whole milliseconds, never above the limit, every 50–100 ms when fast', () => {
    for (const ipm of [...Object.values(TIER_IMAGES_PER_MINUTE), 60, 600, 1234, 100_000]) {
      const { refillAmount, refillIntervalMs } = limitShape(ipm);
      expect(Number.isInteger(refillIntervalMs)).toBe(true);
      const perMinute = (refillAmount * 60_000) / refillIntervalMs;
      expect(perMinute).toBeLessThanOrEqual(ipm);
      expect(perMinute).toBeGreaterThan(ipm * 0.97);
      if (refillAmount > 1) expect(refillIntervalMs).toBeLessThanOrEqual(100);
    }
  });

  it('spreads each tier evenly, 1 % under the limit: tier 1 one image every 122 ms, tier 5 nine every 55 ms', () => {
    expect(limitShape(500)).toMatchObject({ refillAmount: 1, refillIntervalMs: 122 });
    expect(limitShape(10_000)).toMatchObject({ refillAmount: 9, refillIntervalMs: 55 });
  });
});
