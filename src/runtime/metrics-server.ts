import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Services } from './services.js';
import { metricsAccessAllowed } from '../metrics/metrics-token.js';
import { checkReadiness, readinessResponse, type ReadinessProbes } from '../metrics/readiness.js';
import type { RendermillMetrics } from '../metrics/rendermill-metrics.js';

/**
 * Where rendermill's servers (the API, a worker's metrics) listen: every interface. Fixed, not
 * configured: Prometheus, the kubelet's probes and the Service all come from outside the pod.
 */
export const LISTEN_HOST = '0.0.0.0';

export interface MetricsServerOptions {
  metrics: RendermillMetrics;
  probes: ReadinessProbes;
  /** 0 picks a free port (the configuration's 0 means "no server" and never gets here). */
  port: number;
  /** Default {@link LISTEN_HOST}. */
  host?: string;
  /** RENDERMILL_METRICS_TOKEN: when set, /metrics needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  logger: Logger;
}

export interface RunningMetricsServer {
  /** The port it listens on (the one asked, or the free one picked for 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * A worker's own small HTTP server — workers have no API — answering GET /metrics (Prometheus
 * text exposition), /healthz (the process is up) and /readyz (Redis and S3 reachable).
 */
export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<RunningMetricsServer> {
  const send = (response: ServerResponse, status: number, type: string, body: string) => {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    response.end(body);
  };
  const json = (response: ServerResponse, status: number, body: unknown) =>
    send(response, status, 'application/json; charset=utf-8', JSON.stringify(body));

  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return json(response, 405, { error: { code: 'method_not_allowed', message: 'use GET' } });
    }
    void (async () => {
      if (path === '/healthz') return json(response, 200, { ok: true });
      if (path === '/readyz') {
        const { statusCode, body } = readinessResponse(await checkReadiness(options.probes));
        return json(response, statusCode, body);
      }
      if (path === '/metrics') {
        if (!metricsAccessAllowed(options.token, request.headers.authorization)) {
          response.setHeader('www-authenticate', 'Bearer');
          return json(response, 401, {
            error: { code: 'unauthorized', message: 'Authorization: Bearer <metrics token>' },
          });
        }
        const { contentType, body } = await options.metrics.exposition();
        return send(response, 200, contentType, body);
      }
      return json(response, 404, { error: { code: 'not_found', message: `no route ${path}` } });
    })().catch((error: unknown) => {
      options.logger.error({ err: error, path }, 'metrics server request failed');
      if (!response.headersSent) json(response, 500, { error: { code: 'internal_error' } });
      else response.destroy();
    });
  });
  // Scrapers keep connections alive: close() must not wait for them to hang up.
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? LISTEN_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The metrics server of a process that has no API (`rendermill worker`), on
 * RENDERMILL_METRICS_PORT; none when that is 0.
 */
export async function startWorkerMetricsServer(
  services: Pick<Services, 'config' | 'logger' | 'metrics' | 'redis' | 'storage'>,
): Promise<RunningMetricsServer | undefined> {
  const { config, logger } = services;
  if (config.metricsPort === 0) return undefined;
  let server: RunningMetricsServer;
  try {
    server = await startMetricsServer({
      metrics: services.metrics,
      probes: { redis: services.redis, storage: services.storage },
      port: config.metricsPort,
      token: config.metricsToken,
      logger,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    // Several workers on one host (README: "run several to scale") share its ports: the
    // first serves metrics, the others render without. Containers each have their own.
    logger.warn(
      { port: config.metricsPort },
      'metrics port in use (another worker on this host?): this worker serves no metrics; give each its own RENDERMILL_METRICS_PORT',
    );
    return undefined;
  }
  logger.info({ port: server.port }, 'metrics and health server listening');
  return server;
}
