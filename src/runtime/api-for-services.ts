import type { FastifyInstance } from 'fastify';
import { ApiKeys } from '../api/auth.js';
import { buildApi } from '../api/server.js';
import type { Services } from './services.js';

/** The HTTP API wired to a process's services and configured keys. */
export function buildApiForServices(services: Services): FastifyInstance {
  return buildApi({
    store: services.store,
    queue: services.queue,
    registry: services.registry,
    storage: services.storage,
    apiKeys: new ApiKeys(services.config.apiKeys),
    logger: services.logger,
    defaultModel: services.config.defaultModel,
    enforceRetirements: services.enforceRetirements,
  });
}
