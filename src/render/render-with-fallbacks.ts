import type { Logger } from 'pino';
import {
  AccountPausedError,
  ModelUnavailableError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { maxCostMicros, type Micros, type PricedRequest } from '../models/pricing.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { RenderSpec } from '../models/render-spec.js';
import { whyModelCannotRender } from '../batches/validate-item.js';
import type { RenderMetrics } from '../metrics/render-metrics.js';
import type { ProviderRequest, ProviderResult } from '../providers/image-provider.js';
import type { ProviderRoute } from '../providers/provider-route.js';
import { callProvider, type ProviderRetryPolicy } from './call-provider.js';

/** An account of the chain that can take the item, with the model it would render with. */
export interface Candidate {
  account: ProviderRoute;
  model: ModelSpec;
  /** The most the item can cost on this account: what the budget must hold for it. */
  maxMicros: Micros;
}

/**
 * The accounts that can take an item, in order, each with the model it would render with: the
 * item's own, or the account's. An account whose model the registry does not know, or that
 * cannot render this item (another operation, size, quality, no price for it), is left out.
 */
export function candidatesFor(
  chain: readonly ProviderRoute[],
  spec: RenderSpec,
  priced: PricedRequest,
  registry: ModelRegistry,
): Candidate[] {
  return chain.flatMap((account) => {
    const model = registry.get(account.model ?? spec.model);
    if (!model) return [];
    if (model.id !== spec.model && whyModelCannotRender(spec, model, registry)) return [];
    try {
      return [{ account, model, maxMicros: maxCostMicros(model, priced) }];
    } catch {
      return []; // the registry has no price for this combination: it could not be budgeted
    }
  });
}

/**
 * Whether the next account of the chain should try after this one gave up on an item: the
 * model is retired or unknown there, the account is paused (out of quota, key refused), or it
 * kept failing or rate-limiting through every retry. A refusal of the content itself, a bad
 * request or a billed result are final.
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
  | { ok: true; candidate: Candidate; result: ProviderResult }
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
    /** Runs right before each request leaves (the ledger marks the money as at stake). */
    beforeCall?: () => Promise<void>;
    /** Runs after a request that may have been billed got no answer (see callProvider). */
    afterUnansweredCall?: () => Promise<void>;
  },
): Promise<ChainOutcome> {
  let last: ChainOutcome | undefined;
  let lastFailure: ChainOutcome | undefined; // the last that was not a pause
  let earliestResume: { outcome: ChainOutcome; resumeAt: number } | undefined;
  for (const candidate of candidates) {
    const spec = { ...request.spec, model: candidate.model.id };
    try {
      const result = await callProvider({
        account: candidate.account,
        request: { ...request, spec },
        model: candidate.model,
        policy: options.policy,
        shutdown: options.shutdown,
        onRetry: (error, n) =>
          options.log.warn(
            { err: error.message, try: n, provider: candidate.account.name },
            'provider call failed; retrying',
          ),
        beforeCall: options.beforeCall,
        afterUnansweredCall: options.afterUnansweredCall,
        metrics: options.metrics,
      });
      return { ok: true, candidate, result };
    } catch (error) {
      last = { ok: false, candidate, error };
      if (!fallsBack(error)) return last;
      if (!(error instanceof AccountPausedError)) lastFailure = last;
      else if (!earliestResume || error.resumeAt < earliestResume.resumeAt) {
        earliestResume = { outcome: last, resumeAt: error.resumeAt };
      }
      options.log.warn(
        { err: (error as Error).message, provider: candidate.account.name, model: spec.model },
        'provider gave up on the item; trying the next in the chain',
      );
    }
  }
  const outcome = lastFailure ?? earliestResume?.outcome ?? last;
  if (!outcome) throw new Error('renderWithFallbacks needs at least one candidate');
  return outcome;
}
