import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/runtime/embedded-redis.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { startChild, type Child } from './children.js';
import { SimulatorControl } from './simulator-control.js';

export const S3_BUCKET = 'rendermill';
const S3_KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' };
const SIMULATOR_MAIN = path.resolve('dist/infra/simulator/main.js');
const S3RVER_BIN = path.resolve('node_modules/s3rver/bin/s3rver.js');

/** What every scenario shares: a private redis-server, an S3 server and the provider simulator. */
export interface Stack {
  redis: EmbeddedRedis;
  /** A connection for the driver's own use (FLUSHALL, queue counts). */
  redisClient: Redis;
  redisPid: number;
  s3: { endpoint: string; child: Child };
  simulator: SimulatorControl & { child: Child };
  /** The environment pointing a rendermill process at this stack. */
  rendermillEnv(): Record<string, string>;
  /** Empties Redis and zeroes the simulator, so a scenario starts from nothing. */
  resetState(): Promise<void>;
  stop(): Promise<void>;
}

/** s3rver in a child process of its own, with `bucket` made, on a free port of 127.0.0.1. */
export async function startS3rverChild(
  directory: string,
  bucket: string,
): Promise<{ child: Child; endpoint: string }> {
  const child = startChild(
    's3rver',
    process.execPath,
    [
      S3RVER_BIN,
      '--directory',
      directory,
      '--address',
      '127.0.0.1',
      '--port',
      '0',
      '--silent',
      '--configure-bucket',
      bucket,
    ],
    process.env,
  );
  const port = (await child.waitFor(/S3rver listening on [\d.]+:(\d+)/))[1];
  return { child, endpoint: `http://127.0.0.1:${port}` };
}

export async function startStack(options: { latencyMs: number }): Promise<Stack> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-bench-'));
  // No AOF: the bench never restarts Redis, and fsyncs would be a cost production tunes apart.
  const redis = await startEmbeddedRedis({
    dataDir: path.join(dataDir, 'redis'),
    persistent: false,
  });
  const redisClient = new Redis(redis.url, { maxRetriesPerRequest: null });
  const info = await redisClient.info('server');
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);

  // s3rver runs as a child too, so its CPU shows up separately from the driver's.
  const { child: s3Child, endpoint: s3Endpoint } = await startS3rverChild(
    path.join(dataDir, 's3'),
    S3_BUCKET,
  );

  const simPort = await findFreePort();
  const simChild = startChild(
    'simulator',
    process.execPath,
    [
      SIMULATOR_MAIN,
      '--port',
      String(simPort),
      '--images-per-minute',
      '0',
      '--latency-ms',
      String(options.latencyMs),
    ],
    process.env,
  );
  const origin = (await simChild.waitFor(/base URL (http:\/\/[\d.:]+)\/v1/))[1]!;
  const simulator = Object.assign(new SimulatorControl(origin), { child: simChild });

  return {
    redis,
    redisClient,
    redisPid,
    s3: { endpoint: s3Endpoint, child: s3Child },
    simulator,
    rendermillEnv: () => ({
      REDIS_URL: redis.url,
      S3_BUCKET,
      AWS_ENDPOINT_URL_S3: s3Endpoint,
      AWS_ACCESS_KEY_ID: S3_KEYS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_KEYS.secretAccessKey,
      AWS_REGION: S3_KEYS.region,
      OPENAI_BASE_URL: simulator.baseUrl,
      OPENAI_API_KEY: 'sk-bench',
      LOG_LEVEL: 'warn',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    }),
    async resetState() {
      await redisClient.flushall();
      await simulator.reset();
    },
    async stop() {
      redisClient.disconnect();
      await Promise.all([simChild.stop(), s3Child.stop(), redis.stop()]);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The environment of this process minus anything that would point a child at other systems. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(REDIS_URL|S3_|AWS_|OPENAI_|RENDERMILL_|PORT$|LOG_LEVEL$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}
