import pRetry from 'p-retry';
import { ProviderRateLimitedError, ShutdownError, isRetryable } from '../errors.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type {
  ImageProvider,
  ProviderRequest,
  ProviderResult,
} from '../providers/image-provider.js';
import { backoffDelayMs, waitUnlessShutdown, type BackoffPolicy } from './backoff.js';

export interface ProviderRetryPolicy extends BackoffPolicy {
  /** Retries after the first try, for 429s, 5xx, timeouts and resets. Default 6. */
  retries: number;
}

export const DEFAULT_RETRY_POLICY: ProviderRetryPolicy = {
  retries: 6,
  minTimeoutMs: 500,
  maxTimeoutMs: 60_000,
};

/**
 * One provider call as the render job sees it: each try waits for the rate limiter (weighted
 * by the images it asks for); transient failures back off exponentially with jitter, and a 429
 * waits as long as the provider asked on top. Non-retryable errors end at once.
 *
 * `shutdown` cuts only waits — for the limiter, between tries — never a call in flight: a call
 * the provider may have billed is always seen through, or its cost could be lost and the image
 * bought twice.
 */
export function callProvider(
  provider: ImageProvider,
  limiter: RateLimiter,
  request: ProviderRequest,
  policy: ProviderRetryPolicy = DEFAULT_RETRY_POLICY,
  shutdown?: AbortSignal,
  onRetry?: (error: Error, attempt: number) => void,
): Promise<ProviderResult> {
  return pRetry(() => limiter.schedule(request.spec.n, () => provider.render(request), shutdown), {
    retries: policy.retries,
    // p-retry's own waits cannot be cut short without also aborting after a success, so the
    // waiting happens in onFailedAttempt below.
    minTimeout: 0,
    shouldRetry: ({ error }) => isRetryable(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft === 0 || !isRetryable(error)) return;
      if (shutdown?.aborted) throw new ShutdownError();
      onRetry?.(error, attemptNumber);
      const asked = error instanceof ProviderRateLimitedError ? (error.retryAfterMs ?? 0) : 0;
      const wait = Math.min(policy.maxTimeoutMs, asked + backoffDelayMs(attemptNumber, policy));
      await waitUnlessShutdown(wait, shutdown);
    },
  });
}
