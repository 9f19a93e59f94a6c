/**
 * One rate limit in one dimension (requests, images or tokens), enforced in one of the three
 * ways providers plausibly count: a token bucket, a sliding log or fixed wall-clock windows.
 * Nobody publishes which one they use, so the simulator can be any of them (`limitShape`).
 * Time is passed in by the caller, so tests can drive a window with a fake clock.
 */

/** How a limit is counted over its window; see the `limitShape` knob. */
export type LimitShape = 'bucket' | 'sliding' | 'fixed';

/** A take that fits, or how long until it would (Infinity: it never fits, being over the allowance). */
export type TakeResult = { ok: true } | { ok: false; waitMs: number };

export interface RateWindow {
  /** What one window admits, in the dimension's units. */
  readonly allowance: number;
  /** The window's length in ms, after stretching (see {@link windowSize}). */
  readonly windowMs: number;
  /** Whether `weight` fits at `now`, without taking it: lets several dimensions be checked before any takes. */
  check(weight: number, now: number): TakeResult;
  /** Takes `weight` if it fits; otherwise takes nothing. */
  take(weight: number, now: number): TakeResult;
  /** Whole units the window still admits at `now`. */
  remaining(now: number): number;
  /** How long from `now` until the window admits its whole allowance again. */
  msUntilFull(now: number): number;
}

/**
 * A request that arrives this early is still let through by a bucket, which goes into debt that
 * the following requests repay: timers fire up to ~1 ms before their time and a client pacing
 * exactly to the limit must not be refused for that. The long-run rate stays exact. Only the
 * bucket has it: a sliding or fixed window is exact by definition, which is the point of them.
 */
export const BUCKET_GRACE_MS = 5;

/**
 * The allowance of one window: `floor(perMinute × windowMs / minuteMs)`. When that is below one
 * (5 per minute counted over 1 s windows) no window could admit anything, so the window
 * stretches to `ceil(minuteMs / perMinute)` holding exactly one — the shortest window in which
 * the limit allows a whole unit.
 */
export function windowSize(
  perMinute: number,
  windowMs: number,
  minuteMs: number,
): { allowance: number; windowMs: number } {
  const allowance = Math.floor((perMinute * windowMs) / minuteMs);
  if (allowance >= 1) return { allowance, windowMs };
  return { allowance: 1, windowMs: Math.ceil(minuteMs / perMinute) };
}

/** What a window is built from: a limit > 0 and how to count it. */
export interface WindowSpec {
  shape: LimitShape;
  perMinute: number;
  /** The `limitWindowMs` knob, before stretching. */
  windowMs: number;
  minuteMs: number;
}

/** A fresh (full) window of the given shape, as of `now`. */
export function createWindow(spec: WindowSpec, now: number): RateWindow {
  const size = windowSize(spec.perMinute, spec.windowMs, spec.minuteMs);
  switch (spec.shape) {
    case 'bucket':
      return new BucketWindow(size.allowance, size.windowMs, spec.perMinute / spec.minuteMs, now);
    case 'sliding':
      return new SlidingWindow(size.allowance, size.windowMs);
    case 'fixed':
      return new FixedWindow(size.allowance, size.windowMs);
  }
}

/** Shared by every shape: a request heavier than the allowance can never fit. */
function neverFits(weight: number, allowance: number): TakeResult | undefined {
  return weight > allowance ? { ok: false, waitMs: Infinity } : undefined;
}

/**
 * A token bucket holding one window's allowance, refilled continuously at the limit's rate
 * (`perMinute / minuteMs` per ms): a burst of a full window, then an even pace.
 */
export class BucketWindow implements RateWindow {
  private tokens: number;
  constructor(
    readonly allowance: number,
    readonly windowMs: number,
    /** Units added per ms. */
    private readonly rate: number,
    private last: number,
  ) {
    this.tokens = allowance;
  }

  private refill(now: number) {
    // A clock that steps back (a test's fake one) adds nothing rather than draining the bucket.
    this.tokens = Math.min(this.allowance, this.tokens + Math.max(0, now - this.last) * this.rate);
    this.last = Math.max(this.last, now);
  }

  check(weight: number, now: number): TakeResult {
    const never = neverFits(weight, this.allowance);
    if (never) return never;
    this.refill(now);
    const grace = BUCKET_GRACE_MS * this.rate;
    if (this.tokens + grace >= weight) return { ok: true };
    return { ok: false, waitMs: Math.ceil((weight - this.tokens - grace) / this.rate) };
  }

  take(weight: number, now: number): TakeResult {
    const result = this.check(weight, now);
    if (result.ok) this.tokens -= weight;
    return result;
  }

  remaining(now: number): number {
    this.refill(now);
    return Math.max(0, Math.floor(this.tokens));
  }

  msUntilFull(now: number): number {
    this.refill(now);
    return (this.allowance - this.tokens) / this.rate;
  }
}

/**
 * A sliding log: a request passes if what was accepted in the last `windowMs`, plus its own
 * weight, is within the allowance. The strictest shape — no burst at a window's edge.
 */
export class SlidingWindow implements RateWindow {
  /** Accepted takes, oldest first, none older than the window. */
  private log: { at: number; weight: number }[] = [];
  private used = 0;
  constructor(
    readonly allowance: number,
    readonly windowMs: number,
  ) {}

  /** Drops what has left the window: a take at `at` counts until `at + windowMs`. */
  private prune(now: number) {
    let drop = 0;
    while (drop < this.log.length && this.log[drop]!.at + this.windowMs <= now) {
      this.used -= this.log[drop]!.weight;
      drop++;
    }
    if (drop > 0) this.log.splice(0, drop);
  }

  check(weight: number, now: number): TakeResult {
    const never = neverFits(weight, this.allowance);
    if (never) return never;
    this.prune(now);
    let excess = this.used + weight - this.allowance;
    if (excess <= 0) return { ok: true };
    // Room comes as the oldest takes leave, one by one.
    for (const entry of this.log) {
      excess -= entry.weight;
      if (excess <= 0) return { ok: false, waitMs: entry.at + this.windowMs - now };
    }
    return { ok: false, waitMs: Infinity }; // unreachable: weight ≤ allowance
  }

  take(weight: number, now: number): TakeResult {
    const result = this.check(weight, now);
    if (result.ok && weight > 0) {
      this.log.push({ at: now, weight });
      this.used += weight;
    }
    return result;
  }

  remaining(now: number): number {
    this.prune(now);
    return Math.max(0, this.allowance - this.used);
  }

  msUntilFull(now: number): number {
    this.prune(now);
    const newest = this.log.at(-1);
    return newest ? newest.at + this.windowMs - now : 0;
  }
}

/**
 * Fixed windows aligned to the clock (`floor(now / windowMs)`): a request passes if the current
 * window's count plus its weight is within the allowance. Lets twice the allowance through
 * across a window's edge, as such providers do.
 */
export class FixedWindow implements RateWindow {
  private start = -Infinity;
  private used = 0;
  constructor(
    readonly allowance: number,
    readonly windowMs: number,
  ) {}

  private roll(now: number) {
    const start = Math.floor(now / this.windowMs) * this.windowMs;
    if (start > this.start) {
      this.start = start;
      this.used = 0;
    }
  }

  check(weight: number, now: number): TakeResult {
    const never = neverFits(weight, this.allowance);
    if (never) return never;
    this.roll(now);
    if (this.used + weight <= this.allowance) return { ok: true };
    return { ok: false, waitMs: this.start + this.windowMs - now };
  }

  take(weight: number, now: number): TakeResult {
    const result = this.check(weight, now);
    if (result.ok) this.used += weight;
    return result;
  }

  remaining(now: number): number {
    this.roll(now);
    return Math.max(0, this.allowance - this.used);
  }

  msUntilFull(now: number): number {
    this.roll(now);
    return this.used === 0 ? 0 : this.start + this.windowMs - now;
  }
}
