import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { BatchStore } from '../batches/batch-store.js';
import { batchView, buildManifest } from '../batches/batch-view.js';
import { estimateBatch } from '../batches/estimate-batch.js';
import { submitBatch, type SubmitBatchDeps } from '../batches/submit-batch.js';
import { RequestValidationError } from '../errors.js';
import type { ImageStorage } from '../storage/image-storage.js';
import { ApiKeys } from './auth.js';

export interface ApiDeps extends SubmitBatchDeps {
  store: BatchStore;
  storage: ImageStorage;
  apiKeys: ApiKeys;
  logger: Logger;
  /** Lifetime of image URLs in manifests served by the API. Default one hour. */
  urlTtlSeconds?: number;
  /** Largest request body accepted. Default 32 MiB (10,000 items with long prompts). */
  bodyLimitBytes?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

const errorBody = (code: string, message: string, extra: Record<string, unknown> = {}) => ({
  error: { code, message, ...extra },
});

/** The HTTP API. Every /v1 route needs a bearer key; a tenant sees only its own batches. */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimitBytes ?? 32 * 1024 * 1024,
  });
  app.decorateRequest('tenant', '');
  // Batches are JSON; a text body is a client mistake to refuse with 415, not a string to parse.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/v1/')) return;
    const tenant = deps.apiKeys.tenantFor(request.headers.authorization);
    if (!tenant) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send(
          errorBody('unauthorized', 'a valid API key is required: Authorization: Bearer <key>'),
        );
    }
    request.tenant = tenant;
  });

  app.get('/healthz', async () => ({ ok: true }));

  app.post('/v1/batches', async (request, reply) => {
    const batch = await submitBatch(deps, request.tenant, request.body);
    return reply.code(202).header('location', `/v1/batches/${batch.id}`).send(batchView(batch));
  });

  // What a batch would cost, with the cache's answer, before anything is queued.
  app.post('/v1/batches/estimate', async (request) =>
    estimateBatch(deps, request.tenant, request.body),
  );

  app.get<{ Params: { id: string } }>('/v1/batches/:id', async (request, reply) => {
    const batch = await deps.store.getForTenant(request.tenant, request.params.id);
    if (!batch)
      return reply.code(404).send(errorBody('not_found', `no batch ${request.params.id}`));
    return batchView(batch);
  });

  app.get<{ Params: { id: string } }>('/v1/batches/:id/manifest', async (request, reply) => {
    const batch = await deps.store.getForTenant(request.tenant, request.params.id);
    if (!batch)
      return reply.code(404).send(errorBody('not_found', `no batch ${request.params.id}`));
    const ttl = deps.urlTtlSeconds ?? 3600;
    return buildManifest(batch, await deps.store.items(batch.id), (key) =>
      deps.storage.presignedUrl(key, ttl),
    );
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('not_found', `no route ${request.method} ${request.url}`)),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RequestValidationError) {
      return reply.code(400).send(
        errorBody(error.code, error.message, {
          field: error.field ?? null,
          details: error.details,
        }),
      );
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply
        .code(415)
        .send(errorBody('unsupported_media_type', 'send the batch as application/json'));
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send(errorBody('body_too_large', error.message));
    }
    if (error.statusCode === 400) {
      return reply
        .code(400)
        .send(errorBody('invalid_json', `the body is not valid JSON: ${error.message}`));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(errorBody('internal_error', 'internal error; see the server log'));
  });

  return app;
}
