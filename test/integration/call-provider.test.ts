import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import { ProviderRateLimitedError } from '../../src/errors.js';
import { RedisAccountGate } from '../../src/limits/account-gate.js';
import { RedisRateLimiter } from '../../src/limits/redis-rate-limiter.js';
import { createLogger } from '../../src/logging.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { OpenAIImageProvider } from '../../src/providers/openai-provider.js';
import type { ProviderAccount } from '../../src/providers/provider-account.js';
import { callProvider } from '../../src/render/call-provider.js';
import { loadConfig } from '../../src/config/config.js';
import type { EmbeddedRedis } from '../../src/runtime/embedded-redis.js';
import { startTestRedis } from '../support/redis-server.js';

/** Two workers' views of one account, each with its own Redis connection, as two processes. */
let server: EmbeddedRedis;
let sim: RunningSimulator;
const connections: Redis[] = [];
const limiters: RedisRateLimiter[] = [];
const registry = ModelRegistry.load();
const logger = createLogger('silent');

beforeAll(async () => {
  [server, sim] = await Promise.all([startTestRedis(), startSimulator({ imagesPerMinute: 60 })]);
});
afterAll(async () => {
  await closeWorkers();
  await Promise.all([sim?.stop(), server?.stop()]);
});

/**
 * Stops the workers made so far, their limiters first, then their connections once their
 * replies are in. A retried run calls it before it wipes Redis: the first run's limiters must
 * not go on ticking against keys that are gone, nor be cut off mid-command at the end.
 */
async function closeWorkers() {
  await Promise.all(limiters.splice(0).map((l) => l.stop()));
  await Promise.all(connections.splice(0).map((c) => c.quit()));
}

async function worker(configuredPerMinute: number): Promise<ProviderAccount> {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  connections.push(redis);
  const provider = new OpenAIImageProvider({
    baseURL: sim.url,
    apiKey: 'sk-shared',
    registry,
    timeoutMs: 5000,
  });
  const limiter = new RedisRateLimiter({
    accountId: provider.accountId,
    imagesPerMinute: configuredPerMinute,
    redis,
    logger,
  });
  limiters.push(limiter);
  await limiter.ready();
  return {
    name: 'primary',
    provider,
    limiter,
    gate: new RedisAccountGate(redis, provider.accountId),
  };
}

const request = (prompt: string) => ({
  spec: { operation: 'generate' as const, model: 'dall-e-2', prompt, size: '256x256', n: 1 },
  images: [],
});

describe('callProvider', () => {
  // Real time against a real provider pace: on a loaded machine a request can reach the
  // simulator late enough for the next, paced exactly at the declared limit, to land inside the
  // same second. Such a run is tried again from a clean state rather than read as a failure.
  it(
    'a 429 seen by one worker pauses the account for every worker, and slows them all',
    { retry: 2 },
    async () => {
      await closeWorkers();
      const admin = new Redis(server.url);
      await admin.flushall(); // a retried run starts with no pause and no adapted rate
      admin.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // the provider's bucket refills
      const limited = () => sim.stats().rateLimited - limitedBefore;
      const limitedBefore = sim.stats().rateLimited;
      // The provider allows 60/min (one at a time); both workers were told 6,000/min.
      const [a, b] = [await worker(6_000), await worker(6_000)];
      const once = { ...loadConfig({}).retry, retries: 0 };

      await callProvider({ account: a, request: request('first'), policy: once });
      await expect(
        callProvider({ account: a, request: request('second'), policy: once }),
      ).rejects.toBeInstanceOf(ProviderRateLimitedError);
      const pause = await b.gate.current();
      expect(pause?.code).toBe('rate_limited');
      expect(pause!.remainingMs).toBeGreaterThan(500); // the simulator asked for ~1 s

      // Worker b never saw the 429, yet waits out the pause instead of being refused too.
      const started = Date.now();
      await callProvider({ account: b, request: request('third'), policy: once });
      expect(Date.now() - started).toBeGreaterThanOrEqual(pause!.remainingMs - 50);
      expect(limited()).toBe(1);

      // The 429 said the account's limit (x-ratelimit-limit-images: 60): the shared limiter
      // now runs at that rate, so b's next call waits its turn (~1 s) rather than being refused.
      const next = Date.now();
      await callProvider({ account: b, request: request('fourth'), policy: once });
      expect(Date.now() - next).toBeGreaterThanOrEqual(800);
      expect(limited()).toBe(1);
    },
  );
});
