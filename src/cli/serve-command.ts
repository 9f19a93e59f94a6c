import { ConfigError, loadConfig } from '../config/config.js';
import { createLogger } from '../logging.js';
import { buildApiForServices } from '../runtime/wiring.js';
import { startServices } from '../runtime/services.js';
import { startRenderWorkers } from '../../workers/render-workers.js';

export interface ServeOptions {
  api: boolean;
  worker: boolean;
  /** Embed Redis/S3 when not configured: only for `start`, which is one process on its own. */
  embed: boolean;
}

/**
 * A SIGTERM gives waiting jobs this long before their waits are cut short and the jobs are
 * handed back to the queue. Provider calls in flight are never cut (they may be billed), so
 * the process waits for them up to the request timeout before it gives up.
 */
const SHUTDOWN_GRACE_MS = 10_000;

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
  const services = await startServices(config, logger, {
    embed: options.embed,
    provider: options.worker,
  });
  for (const line of services.embedded) logger.info(`embedded ${line}`);

  const workers = options.worker
    ? startRenderWorkers(services, { shutdownGraceMs: SHUTDOWN_GRACE_MS })
    : undefined;
  if (workers) {
    logger.info(
      {
        concurrency: config.concurrency,
        imagesPerMinute: config.imagesPerMinute,
        limit: config.imagesPerMinuteSource,
      },
      'worker started',
    );
  }
  const api = options.api ? buildApiForServices(services) : undefined;
  if (api) {
    const address = await api.listen({ port: config.port, host: '0.0.0.0' });
    logger.info({ address }, 'API listening');
  }

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down: no new jobs, finishing in-flight work');
      const timer = setTimeout(
        () => {
          logger.error(
            'shutdown timed out; in-flight jobs return to the queue when their locks expire',
          );
          process.exit(1);
        },
        SHUTDOWN_GRACE_MS + config.requestTimeoutMs + 5_000,
      );
      timer.unref();
      void (async () => {
        await api?.close();
        await workers?.close();
        await services.close();
        logger.info('stopped');
        resolve();
      })();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
}
