import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Manifest } from '../../src/batches/batch-view.js';
import { batchEnded } from '../../src/contracts/item-status.js';
import { startSimulator } from '../../infra/simulator/server.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/logging.js';
import { buildApiForServices } from '../../src/runtime/api-wiring.js';
import { startServices, type Services } from '../../src/runtime/services.js';
import { startRenderWorkers } from '../../workers/render-workers.js';
import type { RunningWorkers } from '../../workers/worker.js';
import { startTestRedis } from './redis-server.js';
import { startTestS3 } from './s3-server.js';

export const TENANTS = { acme: 'acme-key-0123456789abcdef', globex: 'globex-key-0123456789abcd' };

type SimulatorOptions = NonNullable<Parameters<typeof startSimulator>[0]>;

export interface Harness {
  /** The harness's own redis-server. Started with `redisEnv` there is none: reading it throws. */
  redis: Awaited<ReturnType<typeof startTestRedis>>;
  s3: Awaited<ReturnType<typeof startTestS3>>;
  sim: Awaited<ReturnType<typeof startSimulator>>;
  services: Services;
  workers: RunningWorkers;
  api: FastifyInstance;
  /** The environment that points rendermill at this harness's Redis, S3 and simulator. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A real redis-server, a real s3rver and the provider simulator, each on a free port, with
 * rendermill's services, workers and API wired to them exactly as `rendermill start` does.
 */
export async function startHarness(
  options: {
    simulator?: SimulatorOptions;
    /** Added to (or, given as '', taken out of) the environment the harness writes. */
    env?: Record<string, string>;
    workers?: boolean;
    /**
     * Where Redis is (e.g. `{ REDIS_CLUSTER_NODES: … }`), instead of a redis-server the harness
     * starts. The caller starts and stops that Redis.
     */
    redisEnv?: Record<string, string>;
    /** Where rendermill logs. Default silent, or the level in TEST_LOG_LEVEL. */
    logger?: Logger;
    /** Runs once the simulator listens, before the configuration is read (to write files naming it). */
    beforeConfig?: (sim: Awaited<ReturnType<typeof startSimulator>>) => void;
  } = {},
): Promise<Harness> {
  const [redis, s3, sim] = await Promise.all([
    options.redisEnv ? undefined : startTestRedis(),
    startTestS3('rendermill'),
    startSimulator({ imagesPerMinute: 6000, ...options.simulator }),
  ]);
  const env: Record<string, string> = {
    ...(redis ? { REDIS_URL: redis.url } : options.redisEnv),
    S3_BUCKET: 'rendermill',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    AWS_REGION: s3.region,
    OPENAI_API_KEY: 'sk-harness',
    OPENAI_BASE_URL: sim.url,
    RENDERMILL_IMAGES_PER_MINUTE: String(options.simulator?.imagesPerMinute ?? 6000),
    RENDERMILL_API_KEYS: Object.entries(TENANTS)
      .map(([tenant, key]) => `${tenant}=${key}`)
      .join(','),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...options.env,
  };
  // An empty value in `options.env` takes a variable out (e.g. the default images override).
  for (const [name, value] of Object.entries(env)) if (value === '') delete env[name];
  options.beforeConfig?.(sim);
  const config = loadConfig(env);
  const logger = options.logger ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
  const services = await startServices(config, logger, { embed: false, provider: true });
  const workers =
    options.workers === false ? { close: async () => undefined } : startRenderWorkers(services);
  const api = buildApiForServices(services);
  await api.ready();
  return {
    get redis() {
      if (!redis)
        throw new Error('this harness was started with redisEnv: it runs no redis-server');
      return redis;
    },
    s3,
    sim,
    services,
    workers,
    api,
    env,
    async stop() {
      await api.close();
      await workers.close();
      await services.close();
      await Promise.all([sim.stop(), s3.stop(), redis?.stop()]);
    },
  };
}

export const auth = (tenant: keyof typeof TENANTS = 'acme') => ({
  authorization: `Bearer ${TENANTS[tenant]}`,
});

/** Polls until the batch has ended (completed or cancelled) and its manifest is written, or fails after `timeoutMs`. */
export async function waitForBatch(h: Harness, batchId: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await h.services.store.get(batchId);
    if (batch && batchEnded(batch.status) && batch.manifest_key) return batch;
    if (Date.now() > deadline) {
      throw new Error(
        `batch ${batchId} did not complete in ${timeoutMs} ms: ${JSON.stringify(batch)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function submit(h: Harness, body: unknown, tenant: keyof typeof TENANTS = 'acme') {
  return h.api.inject({
    method: 'POST',
    url: '/v1/batches',
    headers: auth(tenant),
    payload: body as object,
  });
}

/**
 * Submits a batch, waits until it is completed and its manifest written, and returns the
 * manifest as the API serves it. Fails with the API's answer if the batch is refused.
 */
export async function runToManifest(
  h: Harness,
  body: unknown,
  tenant: keyof typeof TENANTS = 'acme',
  timeoutMs?: number,
): Promise<Manifest> {
  const response = await submit(h, body, tenant);
  if (response.statusCode !== 202) {
    throw new Error(`the batch was refused (${response.statusCode}): ${response.body}`);
  }
  const { id } = response.json<{ id: string }>();
  await waitForBatch(h, id, timeoutMs);
  const manifest = await h.api.inject({
    method: 'GET',
    url: `/v1/batches/${id}/manifest`,
    headers: auth(tenant),
  });
  return manifest.json<Manifest>();
}
