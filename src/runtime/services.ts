import path from 'node:path';
import type { Logger } from 'pino';
import type { BatchStore } from '../batches/batch-store.js';
import { RenderLocks } from '../cache/render-lock.js';
import { ResultCache } from '../cache/result-cache.js';
import { SpendCaps } from '../ledger/spend-caps.js';
import { ConfigError, type Config } from '../config/config.js';
import { ModelRegistry } from '../models/model-registry.js';
import type { ProviderRoute } from '../providers/provider-route.js';
import { BullJobQueue } from '../queue/job-queue.js';
import { S3ImageStorage } from '../storage/s3-image-storage.js';
import { startEmbeddedRedis } from './embedded-redis.js';
import { startEmbeddedS3 } from './embedded-s3.js';
import { simulatedModelLimits, startEmbeddedProvider } from './embedded-provider.js';
import { connectProviderRoutes } from './provider-routes.js';
import { CountingBatchStore } from './counting-batch-store.js';
import { RendermillMetrics } from '../metrics/rendermill-metrics.js';
import {
  connectRedis,
  duplicateConnection,
  isCluster,
  type RedisConnection,
  type RedisTarget,
} from '../redis/redis-connection.js';
import { VARIABLE_KEY_SCRIPTS } from '../redis/lua-scripts.js';

/** Everything a process of rendermill talks to, wired once from the configuration. */
export interface Services {
  config: Config;
  logger: Logger;
  registry: ModelRegistry;
  /** One Redis, or a Redis Cluster (REDIS_CLUSTER_NODES). */
  redis: RedisConnection;
  /** rendermill's own state connection (auto-pipelined); BullMQ and Bottleneck use `redis`. */
  state: RedisConnection;
  store: BatchStore;
  queue: BullJobQueue;
  storage: S3ImageStorage;
  /** Request hash → stored images: what makes a repeated request free. */
  cache: ResultCache;
  /** One provider call per request hash at a time, across every worker. */
  locks: RenderLocks;
  caps: SpendCaps;
  /**
   * The routes this process renders with, in the configured order (or the simulator).
   * Empty in processes that render nothing (the API alone).
   */
  routes: ProviderRoute[];
  /** Whether submissions refuse retired models: OpenAI itself does, unless fallbacks may take them. */
  enforceRetirements: boolean;
  /** One line per part that was started in-process because it was not configured. */
  embedded: string[];
  /** Where embedded parts keep their data, for messages to the user. */
  s3DataDir?: string | undefined;
  /** This process's metrics registry (GET /metrics). */
  metrics: RendermillMetrics;
  close(): Promise<void>;
}

/**
 * Latency of the embedded simulator: enough to look like a real provider, small enough for
 * demos. Fixed, not configured: the embedded simulator only stands in for a provider when none
 * is configured; the standalone one (infra/simulator) takes its own latency.
 */
const SIMULATOR_LATENCY_MS = 120;

export interface StartOptions {
  /**
   * Start what is not configured (a private redis-server, a local S3 server). Only for
   * single-process commands: processes that share a queue must share a Redis and a bucket.
   */
  embed: boolean;
  /** Whether this process renders, and so needs a provider (the simulator when none is configured). */
  provider: boolean;
}

/**
 * Connects to what is configured and starts what is not: a private redis-server, a local
 * S3 server, the provider simulator. Each embedded part is announced in `embedded`.
 */
export async function startServices(
  config: Config,
  logger: Logger,
  options: StartOptions,
): Promise<Services> {
  if (!options.embed) {
    const missing = [
      !config.redisUrl && !config.redisCluster && 'REDIS_URL',
      config.embedS3 &&
        'AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL_S3 for an S3-compatible store)',
      options.provider &&
        config.routes.length === 0 &&
        'OPENAI_API_KEY (or RENDERMILL_PROVIDERS_FILE)',
    ].filter(Boolean);
    if (missing.length > 0) {
      throw new ConfigError(
        `missing configuration: ${missing.join(', ')}. Processes that share a queue must share ` +
          'Redis and a bucket, and a worker never renders with the simulator unless pointed at it ' +
          '(OPENAI_BASE_URL). For one process with everything embedded, use `rendermill start` or ' +
          '`rendermill render`.',
      );
    }
  }
  const cleanups: (() => Promise<void> | void)[] = [];
  const embedded: string[] = [];
  const registry = ModelRegistry.load(config.modelsFile);
  try {
    let redisTarget: RedisTarget | undefined = config.redisCluster
      ? { cluster: config.redisCluster }
      : config.redisUrl
        ? { url: config.redisUrl }
        : undefined;
    if (!redisTarget) {
      const dataDir = path.resolve(config.dataDir, 'redis');
      const redis = await startEmbeddedRedis({ dataDir });
      cleanups.push(() => redis.stop());
      redisTarget = { url: redis.url };
      embedded.push(
        `Redis: private redis-server at ${redis.url} (data in ${dataDir}) — set REDIS_URL to use yours`,
      );
    }

    let s3 = config.s3;
    let s3DataDir: string | undefined;
    if (config.embedS3) {
      s3DataDir = path.resolve(config.dataDir, 's3');
      const server = await startEmbeddedS3({ dataDir: s3DataDir, buckets: [config.s3.bucket] });
      cleanups.push(() => server.stop());
      s3 = {
        ...s3,
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
        forcePathStyle: true,
      };
      embedded.push(
        `S3: local S3 server at ${server.endpoint}, bucket "${s3.bucket}" in ${s3DataDir} — set AWS_ENDPOINT_URL_S3 and keys to use yours`,
      );
    }

    let routes = config.routes;
    if (routes.length === 0 && options.provider) {
      // The simulator plays an account of the configured tier: each model limited as the
      // registry says, counted in the same minute as rendermill counts it.
      const simulator = await startEmbeddedProvider({
        modelLimits: simulatedModelLimits(registry, config.rateLimit),
        minuteMs: config.limitMinuteMs,
        latencyMs: SIMULATOR_LATENCY_MS,
      });
      cleanups.push(() => simulator.stop());
      routes = [
        {
          name: 'primary',
          kind: 'openai',
          baseURL: simulator.url,
          apiKey: 'sk-simulator',
          enforceRetirements: false,
          rateLimit: config.rateLimit,
          batch: {},
        },
      ];
      embedded.push(
        `Provider: simulator of the OpenAI Images API at ${simulator.url}, limited as an account at usage tier ${config.rateLimit.tier} — set OPENAI_API_KEY to render for real`,
      );
    }

    // BullMQ needs maxRetriesPerRequest: null so blocking commands wait out a Redis restart.
    const redis = connectRedis(redisTarget, { maxRetriesPerRequest: null });
    cleanups.push(async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    // rendermill's own state goes over a second connection that batches the commands issued
    // in one tick into one write: a render job makes a dozen small calls, many at once. BullMQ
    // keeps a plain one (auto-pipelining is reported to confuse its job locks).
    // On a cluster, the commands of a tick are pipelined per node.
    const state = duplicateConnection(redis, {
      enableAutoPipelining: true,
      ...(isCluster(redis) ? { autoPipeliningIgnoredCommands: VARIABLE_KEY_SCRIPTS } : {}),
    });
    cleanups.push(async () => {
      await state.quit().catch(() => state.disconnect());
    });
    const storage = new S3ImageStorage({ ...s3, endpoint: s3.endpoint });
    cleanups.push(() => storage.close());
    await storage.ensureBucket();
    const queue = new BullJobQueue(redis);
    cleanups.push(() => queue.close());
    const providerRoutes = options.provider
      ? await connectProviderRoutes(routes, {
          redis,
          registry,
          logger,
          requestTimeoutMs: config.requestTimeoutMs,
          queued: config.queued,
          limitMinuteMs: config.limitMinuteMs,
          cleanups,
        })
      : [];

    const metrics = new RendermillMetrics();
    metrics.watchQueues(queue.allQueues());
    metrics.watchRoutes(providerRoutes);
    return {
      config,
      logger,
      registry,
      redis,
      state,
      store: new CountingBatchStore(state, { checkpointMs: config.manifestCheckpointMs }, metrics),
      queue,
      storage,
      cache: new ResultCache(state, storage, config.cacheScope),
      locks: new RenderLocks(state, { ttlMs: config.jobLockMs }),
      caps: new SpendCaps(config.spendCaps),
      routes: providerRoutes,
      // Only when every route is OpenAI itself: any other route may still serve a retired model.
      enforceRetirements: routes.length > 0 && routes.every((route) => route.enforceRetirements),
      embedded,
      s3DataDir,
      metrics,
      close: once(() => runCleanups(cleanups)),
    };
  } catch (error) {
    await runCleanups(cleanups);
    throw error;
  }
}

/** Undoes start-up in reverse order; one failing step does not stop the others. */
async function runCleanups(cleanups: (() => Promise<void> | void)[]): Promise<void> {
  for (const cleanup of [...cleanups].reverse()) {
    try {
      await cleanup();
    } catch {
      // Shutting down: nothing useful to do with a failure to close.
    }
  }
}

/** Runs fn the first time only; later calls share its promise (close may be called twice). */
function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}
