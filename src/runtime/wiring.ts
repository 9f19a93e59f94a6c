import type { SubmitBatchDeps } from '../batches/submit-batch.js';
import { routeOffers } from '../batches/route-offers.js';
import { describeRateLimit, registryRateLimit } from '../models/rate-limits.js';
import type { Services } from './services.js';
import { checkWebhookUrl } from '../webhooks/target-guard.js';

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
