/**
 * How an images-per-minute limit is spread out. Providers enforce their limits over short
 * windows (500/min behaves like ~8/s), so a minute's worth in the first second is a 429 storm:
 * the allowance is released a few images at a time, evenly, and at most `burst` can pile up.
 */
export interface LimitShape {
  imagesPerMinute: number;
  /** Most images that can be released at once: a little under the provider's one-second window. */
  burst: number;
  /** Images added every `refillIntervalMs`. */
  refillAmount: number;
  refillIntervalMs: number;
}

/** Refill at least this often, so the allowance arrives smoothly rather than in lumps. */
const MIN_REFILL_INTERVAL_MS = 50;

/**
 * Requests reach the provider a little out of step with the moment they were released (network
 * and event-loop jitter), so the burst is kept this many milliseconds of allowance below the
 * provider's window. The long-run rate is unaffected; only the initial burst is smaller.
 */
const ARRIVAL_JITTER_MS = 100;

export function limitShape(imagesPerMinute: number): LimitShape {
  const perSecond = imagesPerMinute / 60;
  const providerWindow = Math.ceil(perSecond);
  const margin = Math.max(1, Math.ceil((perSecond * ARRIVAL_JITTER_MS) / 1000));
  const refillAmount = Math.max(1, Math.ceil((MIN_REFILL_INTERVAL_MS * imagesPerMinute) / 60_000));
  return {
    imagesPerMinute,
    burst: Math.max(1, providerWindow - margin),
    refillAmount,
    // Rounded up to whole milliseconds: never faster than the limit.
    refillIntervalMs: Math.ceil((60_000 * refillAmount) / imagesPerMinute),
  };
}

/** The most images one request may ask for under a limit; a heavier one could never pass. */
export const imagesAllowedAtOnce = (imagesPerMinute: number) => limitShape(imagesPerMinute).burst;
