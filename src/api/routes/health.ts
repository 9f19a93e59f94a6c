import type { FastifyInstance } from 'fastify';
import { metricsAccessAllowed } from '../../metrics/metrics-token.js';
import {
  checkReadiness,
  readinessResponse,
  type ReadinessProbes,
} from '../../metrics/readiness.js';
import type { RendermillMetrics } from '../../metrics/rendermill-metrics.js';
import type { ApiKeys } from '../auth.js';
import { errorBody } from '../http-errors.js';

export interface HealthRouteDeps extends ReadinessProbes {
  /** The process's metrics; without them GET /metrics is not served. */
  metrics?: Pick<RendermillMetrics, 'exposition'> | undefined;
  /** RENDERMILL_METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  /** Without a token, an operator's key (RENDERMILL_ADMIN_TENANTS) may read /metrics. */
  apiKeys: Pick<ApiKeys, 'tenantFor'>;
  adminTenants: readonly string[];
}

/**
 * What operators and Kubernetes probes read, without an API key (probes carry none):
 * `/healthz` (the process answers), `/readyz` (Redis and S3 reachable, else 503 naming what is
 * not) and `/metrics` (Prometheus text, behind its own token when one is configured).
 */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthRouteDeps): void {
  const hide = { schema: { hide: true } };
  app.get('/healthz', hide, async () => ({ ok: true }));

  app.get('/readyz', hide, async (_request, reply) => {
    const { statusCode, body } = readinessResponse(await checkReadiness(deps));
    return reply.code(statusCode).header('cache-control', 'no-store').send(body);
  });

  const metrics = deps.metrics;
  if (!metrics) return;
  // The API's port is the one the world reaches, and the metrics name every tenant and its
  // spend: here they need the metrics token or, without one, an operator's key. (A worker's
  // metrics port is inside the cluster; there the token alone decides.)
  app.get('/metrics', hide, async (request, reply) => {
    const { authorization } = request.headers;
    const tenant = deps.apiKeys.tenantFor(authorization);
    const allowed = deps.metricsToken
      ? metricsAccessAllowed(deps.metricsToken, authorization)
      : tenant !== undefined && deps.adminTenants.includes(tenant);
    if (!allowed) {
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send(
          errorBody(
            'unauthorized',
            deps.metricsToken
              ? 'GET /metrics needs Authorization: Bearer <RENDERMILL_METRICS_TOKEN>'
              : 'GET /metrics on the API names every tenant: it needs the key of a tenant in RENDERMILL_ADMIN_TENANTS, or set RENDERMILL_METRICS_TOKEN for scrapers',
          ),
        );
    }
    const { contentType, body } = await metrics.exposition();
    // A string body, sent as is: the API's JSON serializer is for objects.
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
}
