import type { ItemStatus } from '../contracts/item-status.js';
import {
  ModelUnavailableError,
  PaidResultError,
  PredictionPendingError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../errors.js';

/**
 * What became of an item's images: bought from the provider, reused from the cache, copies
 * made from them at no provider cost (`derive`), or not delivered because the item failed.
 */
export type ImageOutcome = 'rendered' | 'cached' | 'derived' | 'failed';

/** How one request to a provider ended: a small, fixed set, so the labels stay bounded. */
export type ProviderCallOutcome =
  | 'ok'
  | 'rate_limited'
  | 'quota'
  | 'auth'
  | 'rejected'
  | 'model_unavailable'
  | 'unavailable'
  | 'unusable'
  /** A queued prediction still running when the worker stopped following it (handed back). */
  | 'pending'
  | 'error';

/** An item that reached its final status in this process. */
export interface FinishedItem {
  status: ItemStatus;
  /** The model the item asked for. */
  model: string;
  images: Partial<Record<ImageOutcome, number>>;
}

/** One request that left for a provider and came back (answered, refused or cut). */
export interface ProviderCall {
  /** The route's name: the providers file's, or `primary` and the fallbacks'. */
  route: string;
  /** The model the request asked the provider for. */
  model: string;
  seconds: number;
  outcome: ProviderCallOutcome;
}

/**
 * What the render path reports as it happens. Domain code receives it through its deps and
 * never imports a registry: a process without metrics (a test building deps by hand) gets
 * NO_RENDER_METRICS.
 */
export interface RenderMetrics {
  itemFinished(item: FinishedItem): void;
  /** Micro-dollars counted as paid to the provider for a tenant (billed, or maybe billed). */
  spent(tenant: string, micros: number): void;
  providerCall(call: ProviderCall): void;
}

/** Records nothing. */
export const NO_RENDER_METRICS: RenderMetrics = {
  itemFinished: () => undefined,
  spent: () => undefined,
  providerCall: () => undefined,
};

/** The outcome label of a provider request from what it threw. */
export function providerCallOutcome(error: unknown): ProviderCallOutcome {
  if (error instanceof ProviderRateLimitedError) return 'rate_limited';
  if (error instanceof ProviderQuotaError) return 'quota';
  if (error instanceof ProviderAuthError) return 'auth';
  if (error instanceof ModelUnavailableError) return 'model_unavailable';
  if (error instanceof ProviderRejectedError) return 'rejected';
  if (error instanceof ProviderUnavailableError) return 'unavailable';
  if (error instanceof PaidResultError) return 'unusable';
  if (error instanceof PredictionPendingError) return 'pending';
  return 'error';
}
