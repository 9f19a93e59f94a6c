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

/**
 * The allowance is released at this fraction of the limit. Paced at exactly the limit, the
 * provider's window never refills beyond what the limiter holds back, so a call that is late
 * by more than the margin above, followed by one on time, meets a window a few images short.
 * 1 % slower lets the provider's window fill up again between such stalls.
 */
const PACE = 0.99;

export function limitShape(imagesPerMinute: number): LimitShape {
  const perSecond = imagesPerMinute / 60;
  const providerWindow = Math.ceil(perSecond);
  const margin = Math.max(1, Math.ceil((perSecond * ARRIVAL_JITTER_MS) / 1000));
  const paced = imagesPerMinute * PACE;
  const refillAmount = Math.max(1, Math.ceil((MIN_REFILL_INTERVAL_MS * paced) / 60_000));
  return {
    imagesPerMinute,
    burst: Math.max(1, providerWindow - margin),
    refillAmount,
    // Rounded up to whole milliseconds: never faster than the pace.
    refillIntervalMs: Math.ceil((60_000 * refillAmount) / paced),
  };
}

/** The most images one request may ask for under a limit; a heavier one could never pass. */
export const imagesAllowedAtOnce = (imagesPerMinute: number) => limitShape(imagesPerMinute).burst;
