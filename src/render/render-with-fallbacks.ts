import type { Logger } from 'pino';
import {
  AccountPausedError,
  ModelUnavailableError,
  ProviderRateLimitedError,
  ProviderUnavailableError,
} from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { ProviderRequest, ProviderResult } from '../providers/image-provider.js';
import type { ProviderAccount } from '../providers/provider-account.js';
import { callProvider, type ProviderRetryPolicy } from './call-provider.js';

/** An account of the chain that can take the item, with the model it would render with. */
export interface Candidate {
  account: ProviderAccount;
  model: ModelSpec;
}

/** The accounts that can take an item, in order: each with its model, if the registry knows it. */
export function candidatesFor(
  chain: readonly ProviderAccount[],
  itemModel: string,
  registry: ModelRegistry,
): Candidate[] {
  return chain.flatMap((account) => {
    const model = registry.get(account.model ?? itemModel);
    return model ? [{ account, model }] : [];
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
 * one tries, with its own limiter, pause and model. The last failure is the item's.
 */
export async function renderWithFallbacks(
  candidates: readonly Candidate[],
  request: ProviderRequest,
  options: {
    policy?: ProviderRetryPolicy | undefined;
    shutdown?: AbortSignal | undefined;
    log: Logger;
  },
): Promise<ChainOutcome> {
  let last: ChainOutcome | undefined;
  for (const candidate of candidates) {
    const spec = { ...request.spec, model: candidate.model.id };
    try {
      const result = await callProvider(
        candidate.account,
        { ...request, spec },
        options.policy,
        options.shutdown,
        (error, n) =>
          options.log.warn(
            { err: error.message, try: n, provider: candidate.account.name },
            'provider call failed; retrying',
          ),
      );
      return { ok: true, candidate, result };
    } catch (error) {
      last = { ok: false, candidate, error };
      if (!fallsBack(error)) return last;
      options.log.warn(
        { err: (error as Error).message, provider: candidate.account.name, model: spec.model },
        'provider gave up on the item; trying the next in the chain',
      );
    }
  }
  if (!last) throw new Error('renderWithFallbacks needs at least one candidate');
  return last;
}
