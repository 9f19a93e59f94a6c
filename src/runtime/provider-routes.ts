import type { Logger } from 'pino';
import { ConfigError, type ProviderConfig } from '../config/config.js';
import { RedisAccountGate } from '../limits/account-gate.js';
import { ModelRateLimiters } from '../limits/model-rate-limiters.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { usdToMicros } from '../models/pricing.js';
import type { ImageProvider } from '../providers/image-provider.js';
import { FalImageProvider } from '../providers/fal-provider.js';
import { OpenAIImageProvider } from '../providers/openai-provider.js';
import { OpenAIBatchApi } from '../providers/openai-batch-api.js';
import { ReplicateImageProvider } from '../providers/replicate-provider.js';
import { OpenAIResponsesImageProvider } from '../providers/openai-responses-provider.js';
import type { ProviderRoute, RouteModel } from '../providers/provider-route.js';
import type { RedisConnection } from '../redis/redis-connection.js';

export interface RouteDeps {
  redis: RedisConnection;
  registry: ModelRegistry;
  logger: Logger;
  requestTimeoutMs: number;
  /** Queued routes: how long a prediction is followed inline, and when it is looked at again. */
  queued: { followMs: number; recheckMs: number };
  /** The length of the minute rate limits are counted in (RENDERMILL_LIMIT_MINUTE_MS). */
  limitMinuteMs: number;
  /** Undoes what was started, in reverse order, when the process closes. */
  cleanups: (() => Promise<void> | void)[];
}

/**
 * Connects one route per configuration, in order: its adapter (the API it speaks), the models
 * it serves with their remote ids and prices, its rate limiters (one per model, made when the
 * model is first rendered) and its pause. A model the registry does not know is a ConfigError.
 */
export async function connectProviderRoutes(
  configs: readonly ProviderConfig[],
  deps: RouteDeps,
): Promise<ProviderRoute[]> {
  const routes: ProviderRoute[] = [];
  for (const config of configs) {
    const named = [config.model, ...Object.keys(config.models ?? {})].filter(
      (id): id is string => id !== undefined,
    );
    for (const id of named) {
      if (!deps.registry.get(id)) {
        throw new ConfigError(
          `route "${config.name}" names model "${id}", which the model registry does not know; ` +
            `known: ${deps.registry.ids().join(', ')}`,
        );
      }
    }
    const provider = adapterFor(config, deps);
    const limits = new ModelRateLimiters({
      accountId: provider.accountId,
      settings: config.rateLimit,
      modelOverrides: config.models,
      registry: deps.registry,
      minuteMs: deps.limitMinuteMs,
      redis: deps.redis,
      logger: deps.logger.child({ route: config.name }),
    });
    deps.cleanups.push(() => limits.stop());
    const gate = new RedisAccountGate(deps.redis, provider.accountId);
    routes.push({
      name: config.name,
      provider,
      limits,
      gate,
      models: config.models && routeModels(config, deps.registry),
      model: config.model,
      batch: config.batch && {
        api: new OpenAIBatchApi({
          baseUrl: config.baseURL,
          apiKey: config.apiKey,
          timeoutMs: deps.requestTimeoutMs,
        }),
        queueTokens: config.batch.queueTokens,
      },
    });
  }
  return routes;
}

/** The adapter of the route's API. */
function adapterFor(config: ProviderConfig, deps: RouteDeps): ImageProvider {
  const common = {
    baseURL: config.baseURL,
    apiKey: config.apiKey,
    registry: deps.registry,
    timeoutMs: deps.requestTimeoutMs,
  };
  const queued = { followInlineMs: deps.queued.followMs, recheckMs: deps.queued.recheckMs };
  switch (config.kind) {
    case 'openai':
      return new OpenAIImageProvider(common);
    case 'replicate':
      return new ReplicateImageProvider({ ...common, ...queued });
    case 'fal':
      return new FalImageProvider({ ...common, ...queued });
    case 'openai-responses':
      return new OpenAIResponsesImageProvider({ ...common, responsesModel: config.responsesModel });
  }
}

/** The route's models: each one's remote id (the route's, the registry's, or its own) and price. */
function routeModels(config: ProviderConfig, registry: ModelRegistry) {
  const models = new Map<string, RouteModel>();
  for (const [id, model] of Object.entries(config.models ?? {})) {
    models.set(id, {
      remote: model.remote ?? registry.get(id)?.remote_ids?.[config.kind] ?? id,
      imagePriceMicros: model.priceUsd === undefined ? undefined : usdToMicros(model.priceUsd),
      batchImagePriceMicros:
        model.batchPriceUsd === undefined ? undefined : usdToMicros(model.batchPriceUsd),
    });
  }
  return models;
}
