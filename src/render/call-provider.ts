import pRetry from 'p-retry';
import {
  AccountPausedError,
  ModelUnavailableError,
  PaidResultError,
  PredictionPendingError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
  ShutdownError,
  isRetryable,
  type ProviderRateReport,
  type ProviderUsage,
} from '../errors.js';
import {
  NO_RENDER_METRICS,
  providerCallOutcome,
  type ProviderCallOutcome,
  type RenderMetrics,
} from '../metrics/render-metrics.js';
import type {
  ImageProvider,
  PendingPrediction,
  ProviderRequest,
  ProviderResult,
} from '../providers/image-provider.js';
import type { ProviderRoute } from '../providers/provider-route.js';
import { backoffDelayMs, waitUnlessShutdown, type BackoffPolicy } from '../limits/backoff.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import { pricedRequest } from '../models/pricing.js';
import type { ModelSpec } from '../models/registry-schema.js';
import { estimatedTokens } from '../models/token-estimate.js';

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
  route: ProviderRoute;
  request: ProviderRequest;
  /** The most images the route's API returns per call (its capabilities); default no cap. */
  imagesPerCall?: number | undefined;
  /**
   * A queued prediction this item already paid to start, and how many images it renders:
   * followed instead of a new call, with no turn in the window (it took one when submitted).
   */
  resume?: { prediction: PendingPrediction; images: number } | undefined;
  /** The model's registry entry: it prices the call in tokens for a tokens-per-minute limit. */
  model?: ModelSpec | undefined;
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
 * An item's images from one route, as the render job sees it. An item asking for more images
 * than one call returns (the route's API), or than one window of the model's limit allows, is
 * split into calls of at most that many, one after another, and their images gathered: the
 * result looks like one call's. Once the first call is paid the rest are seen through,
 * shutdown or not; if one of them fails for good, the item fails with PaidResultError (what
 * was bought is counted). A queued prediction still running after the first call hands the
 * item back (PredictionPendingError); one of a later call is followed here until it ends.
 */
export async function callProvider(options: CallProviderOptions): Promise<ProviderResult> {
  const { route, request } = options;
  const limiter = limiterFor(route, request.spec.model);
  const perCall = () => Math.min(limiter.maxImagesPerCall, options.imagesPerCall ?? Infinity);
  const wanted = request.spec.n;
  const parts: ProviderResult[] = [];
  let got = 0;
  while (got < wanted) {
    const n =
      got === 0 && options.resume ? options.resume.images : Math.min(wanted - got, perCall());
    const part = { ...options, request: { ...request, spec: { ...request.spec, n } } };
    try {
      if (got === 0 && options.resume) {
        parts.push(
          await timedRender(route, part.request, options.metrics, options.resume.prediction),
        );
      } else if (got === 0) {
        parts.push(await callOnce(part, limiter));
      } else {
        parts.push(await followToTheEnd(part, limiter));
      }
    } catch (error) {
      // A prediction still running says how many images it renders, for the run that collects it.
      if (error instanceof PredictionPendingError && error.images === undefined) {
        throw new PredictionPendingError(error.message, error.prediction, error.recheckAt, n);
      }
      // A 429 taught the window a smaller allowance than this call asked for: split further.
      if (error instanceof ProviderRateLimitedError && perCall() < n) continue;
      if (got === 0) throw error;
      throw new PaidResultError(
        `${got} of the item's ${wanted} images were bought in earlier calls, then: ${(error as Error).message}`,
        gathered(parts).usage,
      );
    }
    got += n;
  }
  return gathered(parts);
}

/**
 * A later call of a split item, its images paid for by the first: seen through whatever
 * happens, a queued prediction followed here until it ends rather than handed back half-bought.
 */
async function followToTheEnd(
  options: CallProviderOptions,
  limiter: RateLimiter,
): Promise<ProviderResult> {
  const call = { ...options, shutdown: undefined };
  let pending: PendingPrediction | undefined;
  for (;;) {
    try {
      return pending
        ? await timedRender(options.route, options.request, options.metrics, pending)
        : await callOnce(call, limiter);
    } catch (error) {
      if (!(error instanceof PredictionPendingError)) throw error;
      pending = error.prediction;
      await waitUnlessShutdown(Math.max(0, error.recheckAt - Date.now()), undefined);
    }
  }
}

/**
 * The route's limiter for the model. A route whose tier has no limits for the model in the
 * registry cannot render it: the item goes to the next route, or fails saying why.
 */
function limiterFor(route: ProviderRoute, model: string): RateLimiter {
  try {
    return route.limits.for(model);
  } catch (error) {
    throw new ModelUnavailableError(
      `route "${route.name}" has no rate limit for ${model}: ${(error as Error).message}`,
    );
  }
}

/** The calls of a split item as one result. */
function gathered(parts: ProviderResult[]): ProviderResult {
  const usages = parts.map((p) => p.usage).filter((u) => u !== undefined);
  const sum = (pick: (u: ProviderUsage) => number | undefined) =>
    usages.some((u) => pick(u) !== undefined)
      ? usages.reduce((total, u) => total + (pick(u) ?? 0), 0)
      : undefined;
  const textTokens = sum((u) => u.input_tokens_details?.text_tokens);
  const imageTokens = sum((u) => u.input_tokens_details?.image_tokens);
  return {
    images: parts.flatMap((p) => p.images),
    usage:
      usages.length === 0
        ? undefined
        : {
            input_tokens: sum((u) => u.input_tokens),
            output_tokens: sum((u) => u.output_tokens),
            ...(textTokens === undefined && imageTokens === undefined
              ? {}
              : { input_tokens_details: { text_tokens: textTokens, image_tokens: imageTokens } }),
          },
    rate: parts.at(-1)?.rate,
  };
}

/**
 * One provider call. Each try waits for its turn in the model's rate window (weighted by the
 * images and tokens it asks for, shared by every worker through Redis), checks the account is
 * not paused, and tells the window what the answer said. What goes wrong decides what happens
 * next:
 * - 429 rate limit: every worker waits as long as the provider asked (the window is blocked),
 *   the window learns from it (rate-observe.lua), and this call backs off exponentially with
 *   jitter and tries again;
 * - out of quota, or the key refused: the account pauses for `accountRecheckMs` and the call
 *   ends with AccountPausedError, which hands the item back to the queue;
 * - 5xx, timeouts, resets: back off and try again, up to `retries`;
 * - anything else (content policy, retired model, bad request): ends at once.
 *
 * `shutdown` cuts only waits — for a pause, the window, a backoff — never a call in flight: a
 * call the provider may have billed is always seen through, or the image could be bought twice.
 */
function callOnce(options: CallProviderOptions, limiter: RateLimiter): Promise<ProviderResult> {
  const {
    route,
    request,
    model,
    policy,
    shutdown,
    onRetry,
    beforeCall,
    afterUnansweredCall,
    metrics = NO_RENDER_METRICS,
  } = options;
  const cost = {
    images: request.spec.n,
    tokens: model ? estimatedTokens(model, pricedRequest(request.spec)) : 0,
  };
  const tooHeavy = () => limiter.maxImagesPerCall < request.spec.n;
  return pRetry(
    async () => {
      try {
        // The window gives no turn while the account is paused: calls that were waiting when
        // it ran out of quota do not go on to call it.
        const grant = await limiter
          .acquire(cost, { shutdown, maxWaitMs: policy.maxTimeoutMs })
          .catch((error: unknown) => {
            throw pausedRoute(route, error);
          });
        await beforeCall?.();
        let result: ProviderResult;
        try {
          result = await timedRender(route, request, metrics);
        } catch (error) {
          if (error instanceof ProviderRateLimitedError) {
            // A window that cannot record the 429 (Redis briefly away) must not hide it.
            await limiter.observe(grant, error.report).catch(() => undefined);
          }
          // A queued prediction the provider accepted is an answer too: without it, a route
          // whose predictions are all handed back would never leave its slow start.
          if (error instanceof PredictionPendingError) {
            await limiter.observe(grant, ACCEPTED).catch(() => undefined);
          }
          throw error;
        }
        if (result.rate) await limiter.observe(grant, result.rate).catch(() => undefined);
        return result;
      } catch (error) {
        if (error instanceof ProviderUnavailableError && error.maybeBilled) {
          await afterUnansweredCall?.();
        }
        throw await pauseAccountOn(error, route, policy);
      }
    },
    {
      retries: policy.retries,
      // p-retry's own waits cannot be cut short without also aborting after a success, so the
      // waiting happens in onFailedAttempt below.
      minTimeout: 0,
      // A call the window now holds too heavy is split by callProvider instead.
      shouldRetry: ({ error }) => retriedHere(error) && !tooHeavy(),
      onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft === 0 || !retriedHere(error) || tooHeavy()) return;
        if (shutdown?.aborted) throw new ShutdownError();
        onRetry?.(error, attemptNumber);
        const asked = error instanceof ProviderRateLimitedError ? (error.retryAfterMs ?? 0) : 0;
        // A wait longer than a worker holds a job: the next try finds the window blocked for
        // that long and hands the job back at once.
        if (asked > policy.maxTimeoutMs) return;
        const wait = Math.min(policy.maxTimeoutMs, asked + backoffDelayMs(attemptNumber, policy));
        await waitUnlessShutdown(wait, shutdown);
      },
    },
  );
}

/**
 * One request to the provider — or, with `pending`, following a queued prediction again — its
 * duration and outcome counted (the limiter's wait is not).
 */
async function timedRender(
  route: ProviderRoute,
  request: ProviderRequest,
  metrics: RenderMetrics = NO_RENDER_METRICS,
  pending?: PendingPrediction,
): Promise<ProviderResult> {
  const started = performance.now();
  const observe = (outcome: ProviderCallOutcome) =>
    metrics.providerCall({
      route: route.name,
      model: request.spec.model,
      seconds: (performance.now() - started) / 1000,
      outcome,
    });
  try {
    const { provider } = route;
    const result = pending
      ? await resumeOn(provider, pending, request)
      : await provider.render(request);
    observe('ok');
    return result;
  } catch (error) {
    observe(providerCallOutcome(error));
    throw error;
  }
}

/** Follows a queued prediction again; a route whose API has none cannot have made one. */
function resumeOn(provider: ImageProvider, pending: PendingPrediction, request: ProviderRequest) {
  if (!provider.resume) {
    throw new Error(`a ${provider.kind} route has no queued predictions to follow (${pending.id})`);
  }
  return provider.resume(pending, request);
}

/** What an accepted queued prediction tells the window: the provider answered, nothing more. */
const ACCEPTED: ProviderRateReport = { refused: false, limits: {}, remaining: {}, resetMs: {} };

/**
 * A paused account is retryable, but later and from the queue: not by this call. A prediction
 * still running is followed later, never submitted again.
 */
const retriedHere = (error: unknown) =>
  isRetryable(error) &&
  !(error instanceof AccountPausedError) &&
  !(error instanceof PredictionPendingError);

const paused = (route: ProviderRoute, code: string, reason: string, resumeAt: number) =>
  new AccountPausedError(`route "${route.name}" is paused: ${reason}`, code, resumeAt);

/**
 * An account out of quota or with a refused key ends the call with AccountPausedError: the
 * item waits in the queue, or goes to a fallback, instead of holding a worker. The window
 * knows only the account; the item's error names the route.
 */
function pausedRoute(route: ProviderRoute, error: unknown): unknown {
  if (!(error instanceof AccountPausedError) || error.code === 'rate_limited') return error;
  return paused(route, error.code, error.message, error.resumeAt);
}

/** Pauses the account for every worker when the error says so; returns the error to throw. */
async function pauseAccountOn(
  error: unknown,
  route: ProviderRoute,
  policy: ProviderRetryPolicy,
): Promise<unknown> {
  if (error instanceof ProviderQuotaError || error instanceof ProviderAuthError) {
    const what =
      error instanceof ProviderQuotaError
        ? 'the account is out of quota or over its spend limit'
        : 'the provider refused the API key';
    const reason =
      `${what} (${error.message}); its items stay queued and it is tried again every ` +
      `${Math.round(policy.accountRecheckMs / 1000)} s — fix the account or its key`;
    // A pause that cannot be recorded (Redis briefly away) must not hide the provider's answer.
    await route.gate.pause(policy.accountRecheckMs, error.code, reason).catch(() => undefined);
    return paused(route, error.code, reason, Date.now() + policy.accountRecheckMs);
  }
  return error;
}
