import type { FastifyInstance } from 'fastify';
import { PACKAGE_VERSION } from '../config/package-version.js';
import { ApiKeys } from '../api/auth.js';
import { buildApi } from '../api/server.js';
import type { SubmitBatchDeps } from '../batches/submit-batch.js';
import { routeOffers } from '../batches/route-offers.js';
import { describeRateLimit, registryRateLimit } from '../models/rate-limits.js';
import type { Services } from './services.js';
import { imagesWaitMs } from '../facade/item-waiter.js';
import { WebhookSecrets } from '../webhooks/webhook-secrets.js';
import { checkWebhookUrl } from '../webhooks/target-guard.js';
import { ScheduleStore } from '../schedules/schedule-store.js';
import { SCHEDULE_QUEUE, Schedules } from '../schedules/schedules.js';

/** What submitting a batch needs, from a process's services: the API and `render` share it. */
export function submitDepsFor(services: Services): SubmitBatchDeps {
  return {
    store: services.store,
    queue: services.queue,
    cache: services.cache,
    registry: services.registry,
    defaultModel: services.config.defaultModel,
    enforceRetirements: services.enforceRetirements,
    routeOffers: routeOffers(services.config.routes, services.registry, services.config.rateLimit),
    routing: services.config.routing,
    checkWebhookUrl: (url) =>
      checkWebhookUrl(url, { allowPrivate: services.config.allowPrivateUrls }),
  };
}

/**
 * The primary account's limit for a model (the configured default when none is named), as a
 * line for logs and the CLI.
 */
export function rateLimitLine(services: Services, modelId = services.config.defaultModel): string {
  try {
    return describeRateLimit(
      registryRateLimit(services.registry, modelId, services.config.rateLimit),
    );
  } catch (error) {
    return (error as Error).message;
  }
}

/** The HTTP API wired to a process's services and configured keys. */
export function buildApiForServices(services: Services): FastifyInstance {
  return buildApi({
    ...submitDepsFor(services),
    storage: services.storage,
    apiKeys: new ApiKeys(services.config.apiKeys),
    logger: services.logger,
    version: PACKAGE_VERSION,
    redis: services.state,
    bodyLimitBytes: services.config.maxJsonBodyBytes,
    urlTtlSeconds: services.config.urlTtlSeconds,
    catalogLimitBytes: services.config.maxCatalogBytes,
    maxCatalogLineBytes: services.config.maxCatalogLineBytes,
    imagesApiWaitMs: imagesWaitMs(services.config.requestTimeoutMs, services.config.retry.retries),
    metrics: services.metrics,
    metricsToken: services.config.metricsToken,
    adminQueues: services.queue.allQueues(),
    adminTenants: services.config.adminTenants,
    webhookSecrets: new WebhookSecrets(services.state, { fixed: services.config.webhooks.secrets }),
    schedules: new Schedules({
      store: new ScheduleStore(services.state),
      queue: services.queue.queue(SCHEDULE_QUEUE),
      resolve: submitDepsFor(services),
      checkWebhookUrl: (url) =>
        checkWebhookUrl(url, { allowPrivate: services.config.allowPrivateUrls }),
      maxPerTenant: services.config.schedules.maxPerTenant,
      minIntervalMs: services.config.schedules.minIntervalMs,
    }),
    maxUploadBytesPerRequest: services.config.maxUploadBytesPerRequest,
  });
}
