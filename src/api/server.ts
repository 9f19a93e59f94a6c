import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { ApiKeys } from './auth.js';
import { discardRestOfBody } from './discard-body.js';
import { errorAnswer } from './error-answers.js';
import { errorBody } from './http-errors.js';
import { registerBoundedJsonParser } from './json-body.js';
import { registerIdempotency } from './idempotency.js';
import { registerOpenApi } from './openapi.js';
import { batchRoutes, type BatchRouteDeps } from './routes/batches.js';
import { scheduleRoutes, type ScheduleRouteDeps } from './routes/schedules.js';
import { openAiImageRoutes, type ImagesRouteDeps } from './routes/openai-images.js';
import { webhookRoutes, type WebhookRouteDeps } from './routes/webhooks.js';
import { registerHealthRoutes, type HealthRouteDeps } from './routes/health.js';
import { adminQueueRoutes, type AdminQueueRouteDeps } from './routes/admin-queues.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { DashboardSessions } from './sessions.js';

/** Everything the API needs, each route's dependencies together; wired in runtime/api-wiring.ts. */
export interface ApiDeps
  extends
    BatchRouteDeps,
    ImagesRouteDeps,
    ScheduleRouteDeps,
    WebhookRouteDeps,
    AdminQueueRouteDeps {
  apiKeys: ApiKeys;
  logger: Logger;
  /** rendermill's state connection: idempotency records, dashboard sessions. */
  redis: RedisConnection;
  /** Largest JSON body accepted (RENDERMILL_MAX_JSON_BODY_MB). */
  bodyLimitBytes: number;
  /** rendermill's version, shown in the OpenAPI document. */
  version: string;
  /** The process's metrics (GET /metrics); absent, the route is not served. */
  metrics?: HealthRouteDeps['metrics'];
  /** RENDERMILL_METRICS_TOKEN: when set, GET /metrics needs it as a bearer token. */
  metricsToken?: string | undefined;
  /** Dashboard sessions (cookie → tenant). Absent: kept in `redis`. */
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
    bodyLimit: deps.bodyLimitBytes,
  });
  app.decorateRequest('tenant', '');
  const sessions = deps.sessions ?? new DashboardSessions(deps.redis, deps.apiKeys);
  // Batches are JSON; a text body is a client mistake to refuse with 415, not a string to parse.
  app.removeContentTypeParser('text/plain');
  registerBoundedJsonParser(app);
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

  registerHealthRoutes(app, deps);

  void app.register(async (scope) => {
    await registerOpenApi(scope, deps.version);
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
    const { statusCode, body } = errorAnswer(error, request.headers['content-type'] ?? '');
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed');
    // A tenant's body refused mid-stream is read to its end (no further than a catalog may
    // go), so that the answer reaches the sender; a body without a key is never read.
    if (request.tenant) discardRestOfBody(request.raw, deps.catalogLimitBytes);
    return reply.code(statusCode).send(body);
  });

  return app;
}
