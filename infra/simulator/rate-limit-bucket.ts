import type { SimulatorKnobs } from './knobs.js';
import { SimulatedError } from './simulated-error.js';

/** OpenAI's duration format in rate-limit headers: 120ms, 1s, 6m0s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const seconds = Math.ceil(ms / 100) / 10;
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
}

/**
 * A request that arrives this early is still let through, the bucket going into debt that
 * the following requests repay: timers fire up to ~1 ms before their time and a client pacing
 * exactly to the limit must not be refused for that. The long-run rate stays exact.
 */
export const BUCKET_GRACE_MS = 5;

/** Images per minute as a token bucket holding one second's worth, refilled continuously. */
export class ImageBucket {
  private tokens = 0;
  private last = Date.now();
  constructor(private perMinute: number) {
    this.tokens = this.capacity;
  }
  /** The limit in images per minute; 0 = unlimited. */
  get imagesPerMinute() {
    return this.perMinute;
  }
  /** Images the bucket holds when full: one second's worth, rounded up. */
  get capacity() {
    return Math.ceil(this.perMinute / 60);
  }
  /** Changes the limit; a new limit starts with a full bucket. */
  setLimit(perMinute: number) {
    if (perMinute !== this.perMinute) {
      this.perMinute = perMinute;
      this.tokens = this.capacity;
      this.last = Date.now();
    }
  }
  /** Adds what has accrued since the last refill, up to the capacity. */
  refill() {
    const now = Date.now();
    this.tokens = Math.min(
      this.capacity,
      this.tokens + ((now - this.last) * this.perMinute) / 60_000,
    );
    this.last = now;
  }
  /** Takes n images, or says how long until n would be available (Infinity if never). */
  take(n: number): { ok: true; remaining: number } | { ok: false; waitMs: number } {
    if (this.perMinute === 0) return { ok: true, remaining: Infinity };
    this.refill();
    if (n > this.capacity) return { ok: false, waitMs: Infinity };
    const grace = (BUCKET_GRACE_MS * this.perMinute) / 60_000;
    if (this.tokens + grace >= n) {
      this.tokens -= n;
      return { ok: true, remaining: Math.max(0, Math.floor(this.tokens)) };
    }
    return {
      ok: false,
      waitMs: Math.ceil(((n - this.tokens - grace) * 60_000) / this.perMinute),
    };
  }
  /** Whole images available now. */
  remaining() {
    this.refill();
    return Math.max(0, Math.floor(this.tokens));
  }
  /** How long until the bucket is full again, as of the last refill. */
  msUntilFull() {
    return this.perMinute === 0 ? 0 : ((this.capacity - this.tokens) * 60_000) / this.perMinute;
  }
  /** Refills the bucket at once. */
  reset() {
    this.tokens = this.capacity;
    this.last = Date.now();
  }
}

/**
 * OpenAI's `x-ratelimit-*` headers, which every image answer carries while a limit is set:
 * requests and images report the same figures, as the limit is counted in images.
 * @param remaining images left in the bucket, as the answered request saw it
 */
export function rateLimitHeaders(bucket: ImageBucket, remaining: number): Record<string, string> {
  if (bucket.imagesPerMinute === 0) return {};
  const reset = formatDuration(bucket.msUntilFull());
  const limit = String(bucket.imagesPerMinute);
  return {
    'x-ratelimit-limit-requests': limit,
    'x-ratelimit-remaining-requests': String(remaining),
    'x-ratelimit-reset-requests': reset,
    'x-ratelimit-limit-images': limit,
    'x-ratelimit-remaining-images': String(remaining),
    'x-ratelimit-reset-images': reset,
  };
}

/** Why the bucket refused a request, and which wait hints the answer may carry. */
export interface RateLimitRefusal {
  /** From {@link ImageBucket.take}; Infinity when the request asks for more than the bucket holds. */
  waitMs: number;
  /** Images the request asked for. */
  images: number;
  retryHeaders: SimulatorKnobs['retryHeaders'];
}

/**
 * The 429 `rate_limit_exceeded` of a refused request. Its headers are only the wait hints the
 * `retryHeaders` knob keeps, so a test can check how a client copes with each one missing.
 */
export function rateLimitExceeded(bucket: ImageBucket, refusal: RateLimitRefusal): SimulatedError {
  const { waitMs, images, retryHeaders: choice } = refusal;
  const headers: Record<string, string> = rateLimitHeaders(bucket, 0);
  // A request that can never fit still gets a finite hint, as clients expect a number.
  const finite = Number.isFinite(waitMs) ? waitMs : 60_000;
  if (choice !== 'x-ratelimit-reset-requests' && choice !== 'all') {
    delete headers['x-ratelimit-reset-requests'];
    delete headers['x-ratelimit-reset-images'];
  } else headers['x-ratelimit-reset-requests'] = formatDuration(finite);
  if (choice === 'all' || choice === 'retry-after-ms') headers['retry-after-ms'] = String(finite);
  if (choice === 'all' || choice === 'retry-after')
    headers['retry-after'] = String(Math.ceil(finite / 1000));
  const message = Number.isFinite(waitMs)
    ? `Rate limit reached for images per minute: limit ${bucket.imagesPerMinute}. Please try again in ${formatDuration(finite)}.`
    : `Request for ${images} images exceeds the ${bucket.capacity} images this limit allows at once.`;
  return new SimulatedError(429, 'requests', 'rate_limit_exceeded', message, null, headers);
}
