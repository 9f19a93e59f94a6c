import pRetry from 'p-retry';
import { ProviderRateLimitedError, isRetryable } from '../errors.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type {
  ImageProvider,
  ProviderRequest,
  ProviderResult,
} from '../providers/image-provider.js';

export interface ProviderRetryPolicy {
  /** Retries after the first try, for 429s, 5xx, timeouts and resets. Default 6. */
  retries: number;
  /** First backoff, doubled each retry with jitter. Default 500 ms. */
  minTimeoutMs: number;
  /** Longest single wait, also the cap on a provider's retry-after. Default 60 s. */
  maxTimeoutMs: number;
}

export const DEFAULT_RETRY_POLICY: ProviderRetryPolicy = {
  retries: 6,
  minTimeoutMs: 500,
  maxTimeoutMs: 60_000,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One provider call as the render job sees it: each try waits for the rate limiter (weighted
 * by the images it asks for), transient failures back off exponentially with jitter, and a
 * 429 additionally waits as long as the provider asked. Non-retryable errors end at once.
 */
export function callProvider(
  provider: ImageProvider,
  limiter: RateLimiter,
  request: ProviderRequest,
  policy: ProviderRetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (error: Error, attempt: number) => void,
): Promise<ProviderResult> {
  return pRetry(() => limiter.schedule(request.spec.n, () => provider.render(request)), {
    retries: policy.retries,
    factor: 2,
    minTimeout: policy.minTimeoutMs,
    maxTimeout: policy.maxTimeoutMs,
    randomize: true,
    signal: request.signal,
    shouldRetry: ({ error }) => isRetryable(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft === 0 || !isRetryable(error)) return;
      onRetry?.(error, attemptNumber);
      if (error instanceof ProviderRateLimitedError && error.retryAfterMs) {
        // p-retry's own backoff follows this wait, which adds jitter so workers do not
        // all return at the same instant.
        await sleep(Math.min(error.retryAfterMs, policy.maxTimeoutMs));
      }
    },
  });
}
