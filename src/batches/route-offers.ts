import type { RouteConfig } from '../config/providers-file.js';
import type { RateLimitSettings } from '../config/rate-limit-settings.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { batchPricing, usdToMicros, type Micros } from '../models/pricing.js';
import { registryRateLimit } from '../models/rate-limits.js';

/**
 * What one route offers for one model, read from the configuration alone — no connection, no
 * adapter — so that any process (the API too) can plan a batch across routes: its flat price
 * per image (else the registry prices it) and its images per minute.
 */
export interface RouteOffer {
  route: string;
  kind: string;
  imagePriceMicros?: Micros | undefined;
  /** Undefined when the route's tier has no limit for the model in the registry. */
  imagesPerMinute?: number | undefined;
  /**
   * Present when the route's Batch API takes the model: its flat batch price per image, if
   * it sets one (else the registry's price times the model's batch price factor).
   */
  batch?: { imagePriceMicros?: Micros | undefined } | undefined;
}

/** The routes that serve a model, in the configured order. */
export type RouteOffers = (modelId: string) => RouteOffer[];

/**
 * The offers of the configured routes. With no route configured, the account that stands in
 * for them (the embedded simulator, at `fallbackRateLimit`).
 */
export function routeOffers(
  routes: readonly RouteConfig[],
  registry: ModelRegistry,
  fallbackRateLimit: RateLimitSettings,
): RouteOffers {
  const configured =
    routes.length > 0
      ? routes
      : [{ name: 'primary', kind: 'openai' as const, rateLimit: fallbackRateLimit, batch: {} }];
  return (modelId) =>
    configured.flatMap((route) => {
      const models = 'models' in route ? route.models : undefined;
      const substitute = 'model' in route ? route.model : undefined;
      if (substitute && substitute !== modelId) return [];
      if (models && !(modelId in models)) return [];
      const own = models?.[modelId];
      const imagePriceMicros = own?.priceUsd === undefined ? undefined : usdToMicros(own.priceUsd);
      // As the workers' batch candidates price it (batchPricing).
      const inBatches =
        route.batch === undefined
          ? undefined
          : batchPricing(registry.get(modelId), {
              flatBatchImageMicros:
                own?.batchPriceUsd === undefined ? undefined : usdToMicros(own.batchPriceUsd),
              flatImageMicros: imagePriceMicros,
            });
      return [
        {
          route: route.name,
          kind: route.kind,
          imagePriceMicros,
          imagesPerMinute: limitOf(registry, modelId, {
            ...route.rateLimit,
            imagesPerMinute: own?.imagesPerMinute ?? route.rateLimit.imagesPerMinute,
            tokensPerMinute: own?.tokensPerMinute ?? route.rateLimit.tokensPerMinute,
          }),
          batch: inBatches && {
            imagePriceMicros:
              'flatImageMicros' in inBatches ? inBatches.flatImageMicros : undefined,
          },
        },
      ];
    });
}

function limitOf(
  registry: ModelRegistry,
  modelId: string,
  settings: RateLimitSettings,
): number | undefined {
  try {
    return registryRateLimit(registry, modelId, settings).imagesPerMinute;
  } catch {
    return undefined; // no row for the tier: the estimate says it cannot tell
  }
}
