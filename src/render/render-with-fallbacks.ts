import type { Logger } from 'pino';
import {
  AccountPausedError,
  ModelUnavailableError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from '../errors.js';
import type { ItemWarning } from '../contracts/batch-records.js';
import type { RenderSpec } from '../models/render-spec.js';
import type { RenderMetrics } from '../metrics/render-metrics.js';
import type {
  PendingPrediction,
  ProviderRequest,
  ProviderResult,
} from '../providers/image-provider.js';
import { callProvider, type ProviderRetryPolicy } from './call-provider.js';
import type { Candidate } from './route-candidates.js';
import type { RouteLoad } from './route-load.js';

export type { Candidate } from './route-candidates.js';

/**
 * Whether the next route should try after this one gave up on an item: the model is retired
 * or unknown there, the account is paused (out of quota, key refused), or it kept failing or
 * rate-limiting through every retry. A refusal of the content itself, a bad request, a billed
 * result and a prediction still running (PredictionPendingError) are final here.
 */
export function fallsBack(error: unknown): boolean {
  return (
    error instanceof ModelUnavailableError ||
    error instanceof AccountPausedError ||
    error instanceof ProviderUnavailableError ||
    error instanceof ProviderRateLimitedError
  );
}

export type ChainOutcome =
  | {
      ok: true;
      candidate: Candidate;
      result: ProviderResult;
      /** How the request was fitted to the route (n split into calls), for the item. */
      warnings: ItemWarning[];
    }
  /** `candidate` is the last one tried: a billed-but-unusable result is priced by its model. */
  | { ok: false; candidate: Candidate; error: unknown };

/**
 * Renders with the first candidate; when it gives up in a way `fallsBack` allows, the next
 * one tries, with its own limiter, pause and model. When every one gave up, the item's error
 * is the last that was not a pause: the item fails with it. Only if every account was paused
 * does the item go back to the queue (AccountPausedError, until the earliest one resumes) —
 * otherwise an account that keeps failing, ahead of one that is paused, would be called again
 * and again for ever.
 */
export async function renderWithFallbacks(
  candidates: readonly Candidate[],
  request: ProviderRequest,
  options: {
    policy: ProviderRetryPolicy;
    shutdown?: AbortSignal | undefined;
    log: Logger;
    /** Where provider requests are counted. Default: nowhere. */
    metrics?: RenderMetrics | undefined;
    /**
     * Runs right before each request leaves, with the route it goes to (the ledger holds that
     * route's price and marks the money as at stake).
     */
    beforeCall?: (candidate: Candidate) => Promise<void>;
    /** Runs after a request that may have been billed got no answer (see callProvider). */
    afterUnansweredCall?: () => Promise<void>;
    /** What this process has under way per route (the `spread` strategy reads it). */
    load: RouteLoad;
    /**
     * What a route that is only rate-limited (429s through every retry, or its window blocked
     * longer than a worker holds a job) means: `fall-back` to the next route (priority, spread),
     * or `wait` for it — the item goes back to the queue (cheapest: never pay more elsewhere
     * while the cheaper route is up). Default `fall-back`.
     */
    onRateLimit?: 'fall-back' | 'wait';
    /** A queued prediction of the first candidate to follow instead of making a new one. */
    resume?: { prediction: PendingPrediction; images: number } | undefined;
  },
): Promise<ChainOutcome> {
  const { load } = options;
  let last: ChainOutcome | undefined;
  let lastFailure: ChainOutcome | undefined; // the last that was not a pause
  let earliestResume: { outcome: ChainOutcome; resumeAt: number } | undefined;
  for (const [index, candidate] of candidates.entries()) {
    const { route, model } = candidate;
    const spec = fittedSpec(request.spec, candidate);
    try {
      const result = await load.carry(route.name, model.id, () =>
        callProvider({
          route,
          request: { ...request, spec, remoteModel: candidate.remote },
          model,
          imagesPerCall: candidate.capabilities.maxImagesPerCall,
          resume: index === 0 ? options.resume : undefined,
          policy: options.policy,
          shutdown: options.shutdown,
          onRetry: (error, n) =>
            options.log.warn(
              { err: error.message, try: n, route: route.name },
              'provider call failed; retrying',
            ),
          beforeCall: options.beforeCall && (() => options.beforeCall!(candidate)),
          afterUnansweredCall: options.afterUnansweredCall,
          metrics: options.metrics,
        }),
      );
      return { ok: true, candidate, result, warnings: fittingWarnings(request.spec, candidate) };
    } catch (error) {
      last = { ok: false, candidate, error };
      if (options.onRateLimit === 'wait' && rateLimited(error)) {
        return { ok: false, candidate, error: waitFor(route.name, error, options.policy) };
      }
      if (!fallsBack(error)) return last;
      if (!(error instanceof AccountPausedError)) lastFailure = last;
      else if (!earliestResume || error.resumeAt < earliestResume.resumeAt) {
        earliestResume = { outcome: last, resumeAt: error.resumeAt };
      }
      options.log.warn(
        { err: (error as Error).message, route: route.name, model: spec.model },
        'route gave up on the item; trying the next',
      );
    }
  }
  const outcome = lastFailure ?? earliestResume?.outcome ?? last;
  if (!outcome) throw new Error('renderWithFallbacks needs at least one candidate');
  return outcome;
}

/**
 * The item's request as this route is asked for it: its model, and no `output_format` the
 * route cannot return (it renders its default and the image is converted afterwards).
 */
function fittedSpec(spec: RenderSpec, candidate: Candidate): RenderSpec {
  const fitted: RenderSpec = { ...spec, model: candidate.model.id };
  if (spec.output_format && !candidate.capabilities.outputFormats.includes(spec.output_format)) {
    delete fitted.output_format;
    delete fitted.output_compression;
  }
  return fitted;
}

/** What the route did differently from what the item asked: several calls for its `n`. */
function fittingWarnings(spec: RenderSpec, candidate: Candidate): ItemWarning[] {
  const perCall = candidate.capabilities.maxImagesPerCall;
  if (spec.n <= perCall) return [];
  const calls = Math.ceil(spec.n / perCall);
  return [
    {
      field: 'n',
      asked: String(spec.n),
      done: `${calls} calls of at most ${perCall} image(s)`,
      message: `route "${candidate.route.name}" returns at most ${perCall} image(s) per call, so ${spec.n} images took ${calls} calls`,
    },
  ];
}

/** A route that refused for its rate limit only: up, but not now. */
const rateLimited = (error: unknown): error is ProviderRateLimitedError | AccountPausedError =>
  error instanceof ProviderRateLimitedError ||
  (error instanceof AccountPausedError && error.code === 'rate_limited');

/** The item waits in the queue for a rate-limited route rather than going to a dearer one. */
function waitFor(
  route: string,
  error: ProviderRateLimitedError | AccountPausedError,
  policy: ProviderRetryPolicy,
): AccountPausedError {
  if (error instanceof AccountPausedError) return error;
  return new AccountPausedError(
    `route "${route}" is rate-limited (${error.message}); the item waits for it rather than paying more on another route`,
    'rate_limited',
    Date.now() + (error.retryAfterMs ?? policy.maxTimeoutMs),
  );
}
