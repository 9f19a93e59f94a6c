import { ConfigError, loadConfig } from '../config/config.js';
import { createLogger } from '../logging.js';
import { rateLimitLine } from '../runtime/wiring.js';
import { startServices } from '../runtime/services.js';
import { installFatalErrorPolicy } from '../metrics/fatal-errors.js';
import { LISTEN_HOST, startWorkerMetricsServer } from '../runtime/metrics-server.js';
import { startRenderWorkers } from '../../workers/render-workers.js';

export interface ServeOptions {
  api: boolean;
  worker: boolean;
  /** Embed Redis/S3 when not configured: only for `start`, which is one process on its own. */
  embed: boolean;
}

/**
 * `rendermill api`, `rendermill worker` and `rendermill start`: long-running processes that
 * stop on SIGTERM/SIGINT by refusing new work, finishing what is in flight, then closing.
 */
export async function serveCommand(options: ServeOptions): Promise<void> {
  const config = loadConfig();
  if (options.api && config.apiKeys.length === 0) {
    throw new ConfigError(
      'the API needs at least one key: set RENDERMILL_API_KEYS=tenant=key (keys of 16+ characters, comma-separated)',
    );
  }
  const logger = createLogger(config.logLevel);
  installFatalErrorPolicy({ logger });
  const services = await startServices(config, logger, {
    embed: options.embed,
    provider: options.worker,
  });
  for (const line of services.embedded) logger.info(`embedded ${line}`);
  // A worker has no API: /metrics, /healthz and /readyz get a server of their own.
  const metricsServer =
    options.worker && !options.api
      ? await startWorkerMetricsServer(services).catch(async (error: unknown) => {
          await services.close(); // e.g. the port is taken: nothing must keep the process up
          throw error;
        })
      : undefined;

  const workers = options.worker ? startRenderWorkers(services) : undefined;
  if (workers) {
    logger.info(
      {
        concurrency: config.concurrency,
        tier: config.rateLimit.tier,
        limit: rateLimitLine(services),
      },
      'worker started',
    );
  }
  // Loaded only here: a worker alone never loads the API's modules (Fastify, Bull Board …).
  const api = options.api
    ? (await import('../runtime/api-wiring.js')).buildApiForServices(services)
    : undefined;
  if (api) {
    const address = await api.listen({ port: config.port, host: LISTEN_HOST });
    logger.info({ address }, 'API listening');
  }

  // A SIGTERM gives jobs that are waiting (rate limiter, retry, budget) the grace period,
  // RENDERMILL_SHUTDOWN_GRACE_MS, before they are handed back to the queue. Provider calls in
  // flight are never cut (they may be billed): the process waits for them up to the request
  // timeout before it gives up. A second signal exits at once.
  await new Promise<void>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) {
        logger.error({ signal }, 'second signal: exiting now, without finishing in-flight work');
        process.exit(1);
      }
      stopping = true;
      logger.info(
        { signal, graceMs: config.shutdownGraceMs },
        'shutting down: no new requests or jobs, finishing in-flight work (signal again to force)',
      );
      const timer = setTimeout(
        () => {
          logger.error(
            'shutdown timed out; in-flight jobs return to the queue when their locks expire',
          );
          process.exit(1);
        },
        config.shutdownGraceMs + config.requestTimeoutMs + 5_000,
      );
      timer.unref();
      void (async () => {
        try {
          // Together: a slow request to the API must not let the workers take new jobs meanwhile.
          await Promise.all([api?.close(), workers?.close()]);
        } catch (error) {
          logger.error({ err: error }, 'closing the API or the workers failed');
        }
        await metricsServer?.close();
        await services.close();
        logger.info('stopped');
        // Everything this process opened is closed; a library's stray handle (a keep-alive
        // socket) must not keep a container from stopping.
        setTimeout(() => process.exit(0), 1_000).unref();
        resolve();
      })();
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
}
