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
  get capacity() {
    return Math.ceil(this.perMinute / 60);
  }
  setLimit(perMinute: number) {
    if (perMinute !== this.perMinute) {
      this.perMinute = perMinute;
      this.tokens = this.capacity;
      this.last = Date.now();
    }
  }
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
  remaining() {
    this.refill();
    return Math.max(0, Math.floor(this.tokens));
  }
  msUntilFull() {
    return this.perMinute === 0 ? 0 : ((this.capacity - this.tokens) * 60_000) / this.perMinute;
  }
  reset() {
    this.tokens = this.capacity;
    this.last = Date.now();
  }
}
