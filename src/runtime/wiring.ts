import type { FastifyInstance } from 'fastify';
import { ApiKeys } from '../api/auth.js';
import { buildApi } from '../api/server.js';
import type { SubmitBatchDeps } from '../batches/submit-batch.js';
import { imagesAllowedAtOnce } from '../limits/limit-shape.js';
import type { Services } from './services.js';

/** What submitting a batch needs, from a process's services: the API and `render` share it. */
export function submitDepsFor(services: Services): SubmitBatchDeps {
  return {
    store: services.store,
    queue: services.queue,
    cache: services.cache,
    registry: services.registry,
    defaultModel: services.config.defaultModel,
    enforceRetirements: services.enforceRetirements,
    maxImagesPerRequest: imagesAllowedAtOnce(services.config.imagesPerMinute),
  };
}

/** The HTTP API wired to a process's services and configured keys. */
export function buildApiForServices(services: Services): FastifyInstance {
  return buildApi({
    ...submitDepsFor(services),
    storage: services.storage,
    apiKeys: new ApiKeys(services.config.apiKeys),
    logger: services.logger,
    redis: services.state,
  });
}
