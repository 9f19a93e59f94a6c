import type { ProviderRateReport } from '../errors.js';

/** What one provider call weighs against a route's limits. */
export interface CallCost {
  images: number;
  /** Estimated before the call (see estimatedTokens); settled from `usage` after it. 0 = not counted. */
  tokens: number;
}

/** A call's turn in the window, handed back to `observe` with what its answer said. */
export interface RateGrant {
  id: string;
  cost: CallCost;
}

/**
 * The rate limit of one model on one provider account, shared by every worker: exact in any
 * window, in images, tokens and requests, corrected by what the provider says.
 */
export interface RateLimiter {
  /**
   * The most images one call may ask for: one window's allowance. An item asking for more is
   * split into calls of at most this many (a provider counting in short windows would refuse
   * a heavier one). Follows the limit in force, which the provider may lower.
   */
  readonly maxImagesPerCall: number;
  /** The images per minute it was configured with: how routes' capacities compare. */
  readonly imagesPerMinute: number;
  /**
   * Waits for the call's turn. If `shutdown` aborts first, ends with ShutdownError; if every
   * call must wait longer than `maxWaitMs` because the provider asked so (a 429's wait), ends
   * with AccountPausedError so the item can go elsewhere or back to the queue. A paused
   * account (AccountGate: out of quota, key refused) gets no turn: AccountPausedError with the
   * pause's code, and its reason as the message.
   */
  acquire(
    cost: CallCost,
    options?: { shutdown?: AbortSignal | undefined; maxWaitMs?: number | undefined },
  ): Promise<RateGrant>;
  /**
   * What the provider's answer to a granted call said: its declared limits, a 429, the tokens
   * used. Cheap when there is no news (no Redis round trip).
   */
  observe(grant: RateGrant | undefined, report: ProviderRateReport): Promise<void>;
  /** Images the window would let through now (a metrics gauge); undefined without an images limit. */
  headroom(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** The limiters of one provider account, one per model. */
export interface RateLimiters {
  for(model: string): RateLimiter;
  /** The models this process has rendered so far, with their limiters. */
  active(): { model: string; limiter: RateLimiter }[];
}
