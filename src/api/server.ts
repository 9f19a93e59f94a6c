import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { RedisConnection } from '../runtime/redis-connection.js';
import type { Logger } from 'pino';
import type { BatchStore } from '../batches/batch-store.js';
import type { SubmitBatchDeps } from '../batches/submit-batch.js';
import { RequestValidationError } from '../errors.js';
import type { ImageStorage } from '../storage/image-storage.js';
import type { ApiKeys } from './auth.js';
import { errorBody, HttpError } from './http-errors.js';
import { registerIdempotency } from './idempotency.js';
import { registerOpenApi } from './openapi.js';
import { batchRoutes } from './routes/batches.js';
import { scheduleRoutes } from './routes/schedules.js';
import type { Schedules } from '../schedules/schedules.js';
import { openAiImageRoutes } from './routes/openai-images.js';
import { webhookRoutes } from './routes/webhooks.js';
import { registerHealthRoutes, type HealthRouteDeps } from './routes/health.js';
import { adminQueueRoutes, type AdminQueueRouteDeps } from './routes/admin-queues.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { DashboardSessions } from './sessions.js';
import type { WebhookSecrets } from '../webhooks/webhook-secrets.js';

export interface ApiDeps extends SubmitBatchDeps, AdminQueueRouteDeps {
  store: BatchStore;
  storage: ImageStorage;
  apiKeys: ApiKeys;
  logger: Logger;
  /** rendermill's state connection: idempotency records, schedules, webhook secrets. */
  redis: RedisConnection;
  /** Schedules of batches and their BullMQ job schedulers (`/v1/schedules`). */
  schedules: Schedules;
  /** Each tenant's webhook signing secret (GET /v1/webhooks/secret). */
  webhookSecrets: WebhookSecrets;
  /**
   * How long `POST /v1/images/*` waits for its render before answering 504 with the batch id.
   * Default 9 minutes (wiring: RENDERMILL_REQUEST_TIMEOUT_MS × (RENDERMILL_RETRIES + 1), at most 9 min).
   */
  imagesApiWaitMs?: number;
  /** Lifetime of image URLs in manifests and Images API answers. Default one hour. */
  urlTtlSeconds?: number;
  /** Largest JSON body accepted. Default 32 MiB (10,000 items with long prompts). */
  bodyLimitBytes?: number;
  /** Largest catalog (CSV, JSON Lines) accepted; it is streamed, not buffered. Default 512 MiB. */
  catalogLimitBytes?: number;
  /** All the files of one Images API edit or variation together (413 above). Default 64 MiB. */
  maxUploadBytesPerRequest?: number;
  version?: string;
  /** The process's metrics (GET /metrics); absent, the route is not served. */
  metrics?: HealthRouteDeps['metrics'];
  /** RENDERMILL_METRICS_TOKEN: when set, GET /metrics needs it as a bearer token. */
  metricsToken?: string | undefined;
  /** Dashboard sessions (cookie → tenant). Default: kept in `redis`, 12 hours each. */
  sessions?: DashboardSessions;
}

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

/**
 * Routes anyone may read: health, the API's own documentation and the dashboard's login page.
 * Decided on the route the request matched, never on its raw URL: the router decodes
 * `/%761/batches` to `/v1/batches`, a prefix test on the raw URL would not.
 */
const isPublic = (route: string) => !route.startsWith('/v1/') && !route.startsWith('/admin/');

/** The HTTP API. Every /v1 route needs a bearer key; a tenant sees only its own things. */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.bodyLimitBytes ?? 32 * 1024 * 1024,
  });
  app.decorateRequest('tenant', '');
  const sessions = deps.sessions ?? new DashboardSessions(deps.redis, deps.apiKeys);
  // Batches are JSON; a text body is a client mistake to refuse with 415, not a string to parse.
  app.removeContentTypeParser('text/plain');
  // Route schemas are zod schemas, there for the OpenAPI document: handlers validate with
  // them, so that errors name fields the way the rest of rendermill does.
  app.setValidatorCompiler(() => (value) => ({ value }));
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.addHook('onRequest', async (request, reply) => {
    // No matched route: the not-found handler answers, and has nothing to show.
    const route = request.routeOptions.url;
    if (route === undefined || isPublic(route)) return;
    // The bearer key, or the dashboard's session cookie (state changes need its CSRF header).
    const tenant =
      deps.apiKeys.tenantFor(request.headers.authorization) ??
      (await sessions.authenticate(request, reply));
    if (reply.sent) return reply;
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

  registerHealthRoutes(app, { ...deps, adminTenants: deps.adminTenants ?? [] });

  void app.register(async (scope) => {
    await registerOpenApi(scope, deps.version ?? '0.0.0');
    registerIdempotency(scope, deps.redis);
    await scope.register(async (routes) => batchRoutes(routes, deps));
    await scope.register(async (routes) => scheduleRoutes(routes, deps));
    await scope.register(async (routes) => openAiImageRoutes(routes, deps));
    await scope.register(async (routes) => webhookRoutes(routes, deps));
    await scope.register(async (routes) => dashboardRoutes(routes, { ...deps, sessions }));
    await scope.register(async (routes) => adminQueueRoutes(routes, deps));
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
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send(errorBody(error.code, error.message, error.extra));
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply
        .code(415)
        .send(
          errorBody(
            'unsupported_media_type',
            `unsupported content type "${request.headers['content-type'] ?? ''}": send application/json, or a catalog as text/csv or application/x-ndjson`,
          ),
        );
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
