import { describe, expect, it } from 'vitest';
import { ProviderRejectedError } from '../../src/errors.js';
import { LocalRateLimiter, imagesAllowedAtOnce } from '../../src/limits/rate-limiter.js';

describe('LocalRateLimiter', () => {
  it('allows one second’s worth of images at once', () => {
    expect(imagesAllowedAtOnce(500)).toBe(9);
    expect(imagesAllowedAtOnce(10_000)).toBe(167);
    expect(imagesAllowedAtOnce(60)).toBe(1);
    expect(new LocalRateLimiter(500).burst).toBe(9);
  });

  it('runs a burst at once and refuses a request that could never fit', async () => {
    const limiter = new LocalRateLimiter(600); // 10 at once
    try {
      const ran: number[] = [];
      await Promise.all([1, 2, 3, 4].map((i) => limiter.schedule(2, async () => ran.push(i))));
      expect(ran.sort()).toEqual([1, 2, 3, 4]);
      await expect(limiter.schedule(11, async () => 'never')).rejects.toBeInstanceOf(
        ProviderRejectedError,
      );
    } finally {
      await limiter.stop();
    }
  });
});
