import type { FastifyInstance } from 'fastify';
import { PACKAGE_VERSION } from '../config/package-version.js';
import { ApiKeys } from '../api/auth.js';
import { buildApi } from '../api/server.js';
import { imagesWaitMs } from '../facade/item-waiter.js';
import { ScheduleStore } from '../schedules/schedule-store.js';
import { SCHEDULE_QUEUE, Schedules } from '../schedules/schedules.js';
import { checkWebhookUrl } from '../webhooks/target-guard.js';
import { WebhookSecrets } from '../webhooks/webhook-secrets.js';
import type { Services } from './services.js';
import { submitDepsFor } from './wiring.js';

// Apart from wiring.ts so that a worker process, which has no API, never loads Fastify, the
// API's routes and their schemas, Bull Board or Swagger: `rendermill worker` imports wiring.ts
// for what it shares with the API, and only `api`, `start` and `render` import this.

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
