/** Paces calls to one provider account by the number of images they ask for. */
export interface RateLimiter {
  /**
   * Runs fn once `weight` images of the per-minute allowance are available. If `shutdown` is
   * aborted before fn has started, the wait ends with ShutdownError and fn never runs; once
   * fn has started it is seen through, and its outcome is what schedule returns.
   */
  schedule<T>(weight: number, fn: () => Promise<T>, shutdown?: AbortSignal): Promise<T>;
  /**
   * The provider answered 429 although the limiter let the request through: the configured
   * limit is too high (a wrong tier, or another client on the account). Slows every worker
   * down — to the provider's limit when it said what it is — and recovers gradually.
   */
  slowDown(providerLimitPerMinute?: number): Promise<void>;
  stop(): Promise<void>;
}
