import type { AccountGate } from '../limits/account-gate.js';
import type { RateLimiters } from '../limits/rate-limiter.js';
import type { Micros } from '../models/pricing.js';
import type { ImageProvider } from './image-provider.js';
import type { OpenAIBatchApi } from './openai-batch-api.js';

/** What a route says about one model it serves (the providers file's `models:` entry). */
export interface RouteModel {
  /** The route's own id for the model (Replicate's `owner/name`, fal's `fal-ai/…`). */
  remote: string;
  /** The route's flat price per image, replacing the registry's price on this route. */
  imagePriceMicros?: Micros | undefined;
  /** The route's flat price per image in its Batch API, replacing the registry's batch price. */
  batchImagePriceMicros?: Micros | undefined;
}

/**
 * A route's Batch API: request files uploaded, batches created and followed, results read
 * (src/providers/openai-batch-api.ts), at the model's batch price.
 */
export interface RouteBatchApi {
  api: OpenAIBatchApi;
  /** The most tokens the account may have enqueued per model; submissions wait for room. */
  queueTokens?: number | undefined;
}

/**
 * One route as workers use it: a provider account speaking one API (its adapter), the models
 * it serves at its own prices, how fast (each model's own limit on this account, shared by
 * every worker), and whether it is paused. Workers hold the routes in the configured order.
 */
export interface ProviderRoute {
  /** How logs, metrics and the manifest name it: the providers file's `name`, or `primary`. */
  name: string;
  provider: ImageProvider;
  limits: RateLimiters;
  gate: AccountGate;
  /**
   * The models it serves, by registry id. Absent: every model of the registry, at the
   * registry's price (the account of OPENAI_API_KEY and its fallbacks).
   */
  models?: ReadonlyMap<string, RouteModel> | undefined;
  /** Render every item with this model instead of the item's (a fallback's own model). */
  model?: string | undefined;
  /** Present when the route offers its provider's Batch API (`provider_batch` mode). */
  batch?: RouteBatchApi | undefined;
}
