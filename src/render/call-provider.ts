import pRetry from 'p-retry';
import {
  AccountPausedError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
  ShutdownError,
  isRetryable,
} from '../errors.js';
import {
  NO_RENDER_METRICS,
  providerCallOutcome,
  type ProviderCallOutcome,
  type RenderMetrics,
} from '../metrics/render-metrics.js';
import type { ProviderRequest, ProviderResult } from '../providers/image-provider.js';
import type { ProviderAccount } from '../providers/provider-account.js';
import { backoffDelayMs, waitUnlessShutdown, type BackoffPolicy } from '../limits/backoff.js';

export interface ProviderRetryPolicy extends BackoffPolicy {
  /** Retries after the first try, for 429s, 5xx, timeouts and resets (RENDERMILL_RETRIES). */
  retries: number;
  /**
   * How long an account out of quota, or whose key was refused, is left alone by every worker
   * before it is tried again. Its items wait in the queue meanwhile (RENDERMILL_ACCOUNT_RECHECK_MS).
   */
  accountRecheckMs: number;
}

/** One provider call: where it goes, what it asks, and who is told what happens. */
export interface CallProviderOptions {
  account: ProviderAccount;
  request: ProviderRequest;
  /** Retries and waits (the configuration's `retry`). */
  policy: ProviderRetryPolicy;
  /** Ends the waits (see callProvider); a call in flight is seen through. */
  shutdown?: AbortSignal | undefined;
  /** Told about each failed try that is retried, before the backoff. */
  onRetry?: ((error: Error, attempt: number) => void) | undefined;
  /** Runs right before each request leaves: from then on it may be billed. */
  beforeCall?: (() => Promise<void>) | undefined;
  /**
   * Runs after a request that may have been billed got no answer (a timeout, a cut
   * connection), before anything else is tried: it counts the money as spent and holds the
   * budget for the next try — or throws (BudgetExceededError) to stop here.
   */
  afterUnansweredCall?: (() => Promise<void>) | undefined;
  /** Where each request's duration and outcome (429s among them) are counted. Default: nowhere. */
  metrics?: RenderMetrics | undefined;
}

/**
 * One provider call as the render job sees it. Each try waits for the account's rate limiter,
 * weighted by the images it asks for, then respects the account's pause (shared by every
 * worker through Redis). What goes wrong decides what happens next:
 * - 429 rate limit: the whole account pauses for as long as the provider asked, then this call
 *   backs off exponentially with jitter and tries again;
 * - out of quota, or the key refused: the account pauses for `accountRecheckMs` and the call
 *   ends with AccountPausedError, which hands the item back to the queue;
 * - 5xx, timeouts, resets: back off and try again, up to `retries`;
 * - anything else (content policy, retired model, bad request): ends at once.
 *
 * `shutdown` cuts only waits — for a pause, the limiter, a backoff — never a call in flight: a
 * call the provider may have billed is always seen through, or the image could be bought twice.
 */
export function callProvider(options: CallProviderOptions): Promise<ProviderResult> {
  const {
    account,
    request,
    policy,
    shutdown,
    onRetry,
    beforeCall,
    afterUnansweredCall,
    metrics = NO_RENDER_METRICS,
  } = options;
  return pRetry(
    async (attempt) => {
      try {
        // The pause is checked once the limiter lets the call go, right before it is made:
        // requests already waiting in the limiter when a 429 arrives respect it too.
        return await account.limiter.schedule(
          request.spec.n,
          async () => {
            await waitWhilePaused(account, policy, shutdown);
            await beforeCall?.();
            return timedRender(account, request, metrics);
          },
          shutdown,
        );
      } catch (error) {
        if (error instanceof ProviderUnavailableError && error.maybeBilled) {
          await afterUnansweredCall?.();
        }
        throw await pauseAccountOn(error, account, policy, attempt);
      }
    },
    {
      retries: policy.retries,
      // p-retry's own waits cannot be cut short without also aborting after a success, so the
      // waiting happens in onFailedAttempt below.
      minTimeout: 0,
      shouldRetry: ({ error }) => retriedHere(error),
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft === 0 || !retriedHere(error)) return;
        if (shutdown?.aborted) throw new ShutdownError();
        onRetry?.(error, attemptNumber);
        const asked = error instanceof ProviderRateLimitedError ? (error.retryAfterMs ?? 0) : 0;
        // A wait longer than a worker holds a job: the next try finds the account paused and
        // hands the job back at once.
        if (asked > policy.maxTimeoutMs) return;
        const wait = Math.min(policy.maxTimeoutMs, asked + backoffDelayMs(attemptNumber, policy));
        await waitUnlessShutdown(wait, shutdown);
      },
    },
  );
}

/** One request to the provider, its duration and outcome counted (the limiter's wait is not). */
async function timedRender(
  account: ProviderAccount,
  request: ProviderRequest,
  metrics: RenderMetrics,
): Promise<ProviderResult> {
  const started = performance.now();
  const observe = (outcome: ProviderCallOutcome) =>
    metrics.providerCall({
      account: account.name,
      model: request.spec.model,
      seconds: (performance.now() - started) / 1000,
      outcome,
    });
  try {
    const result = await account.provider.render(request);
    observe('ok');
    return result;
  } catch (error) {
    observe(providerCallOutcome(error));
    throw error;
  }
}

/** A paused account is retryable, but later and from the queue: not by this call. */
const retriedHere = (error: unknown) =>
  isRetryable(error) && !(error instanceof AccountPausedError);

const paused = (account: ProviderAccount, code: string, reason: string, remainingMs: number) =>
  new AccountPausedError(
    `provider account "${account.name}" is paused: ${reason}`,
    code,
    Date.now() + remainingMs,
  );

/** Pauses that last until someone fixes the account: never waited out holding a job. */
const ACCOUNT_FAULTS = new Set(['provider_quota_exhausted', 'provider_auth']);

/**
 * Waits out a short pause of the account (a 429's retry-after). An account out of quota or
 * with a refused key, or a pause longer than one backoff may last, ends the call with
 * AccountPausedError: the item waits in the queue, or goes to a fallback, instead of holding
 * a worker.
 */
async function waitWhilePaused(
  account: ProviderAccount,
  policy: ProviderRetryPolicy,
  shutdown: AbortSignal | undefined,
): Promise<void> {
  for (;;) {
    const pause = await account.gate.current();
    if (!pause) return;
    if (ACCOUNT_FAULTS.has(pause.code) || pause.remainingMs > policy.maxTimeoutMs) {
      throw paused(account, pause.code, pause.reason, pause.remainingMs);
    }
    await waitUnlessShutdown(pause.remainingMs, shutdown);
  }
}

/** Pauses the account for every worker when the error says so; returns the error to throw. */
async function pauseAccountOn(
  error: unknown,
  account: ProviderAccount,
  policy: ProviderRetryPolicy,
  attempt: number,
): Promise<unknown> {
  // A pause that cannot be recorded (Redis briefly away) must not hide the provider's answer.
  const pause = (ms: number, code: string, reason: string) =>
    account.gate.pause(ms, code, reason).catch(() => undefined);
  if (error instanceof ProviderRateLimitedError) {
    const ms = error.retryAfterMs ?? backoffDelayMs(attempt, policy);
    await Promise.all([
      pause(ms, 'rate_limited', `rate limited by the provider: ${error.message}`),
      account.limiter.slowDown(error.limitPerMinute).catch(() => undefined),
    ]);
    return error;
  }
  if (error instanceof ProviderQuotaError || error instanceof ProviderAuthError) {
    const what =
      error instanceof ProviderQuotaError
        ? 'the account is out of quota or over its spend limit'
        : 'the provider refused the API key';
    const reason =
      `${what} (${error.message}); its items stay queued and it is tried again every ` +
      `${Math.round(policy.accountRecheckMs / 1000)} s — fix the account or its key`;
    await pause(policy.accountRecheckMs, error.code, reason);
    return paused(account, error.code, reason, policy.accountRecheckMs);
  }
  return error;
}
