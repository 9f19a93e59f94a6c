import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import type { SimulatorKnobs } from '../../infra/simulator/knobs.js';

type RateHeadersKnob = SimulatorKnobs['rateHeaders'];
import { ProviderRateLimitedError } from '../../src/errors.js';
import { RedisAccountGate } from '../../src/limits/account-gate.js';
import { ModelRateLimiters } from '../../src/limits/model-rate-limiters.js';
import { createLogger } from '../../src/logging.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { OpenAIImageProvider } from '../../src/providers/openai-provider.js';
import type { ProviderRoute } from '../../src/providers/provider-route.js';
import { callProvider } from '../../src/render/call-provider.js';
import { loadConfig } from '../../src/config/config.js';
import type { EmbeddedRedis } from '../../src/runtime/embedded-redis.js';
import { startTestRedis } from '../support/redis-server.js';

/** Two workers' views of one account, each with its own Redis connection, as two processes. */
let server: EmbeddedRedis;
let sim: RunningSimulator;
const connections: Redis[] = [];
const limits: ModelRateLimiters[] = [];
const registry = ModelRegistry.load();
const logger = createLogger('silent');

beforeAll(async () => {
  [server, sim] = await Promise.all([startTestRedis(), startSimulator({ imagesPerMinute: 60 })]);
});
afterAll(async () => {
  await closeWorkers();
  await Promise.all([sim?.stop(), server?.stop()]);
});

/** Stops the workers made so far, their limiters first, then their connections. */
async function closeWorkers() {
  await Promise.all(limits.splice(0).map((l) => l.stop()));
  await Promise.all(connections.splice(0).map((c) => c.quit()));
}

async function worker(configuredPerMinute: number): Promise<ProviderRoute> {
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  connections.push(redis);
  const provider = new OpenAIImageProvider({
    baseURL: sim.url,
    apiKey: 'sk-shared',
    registry,
    timeoutMs: 5000,
  });
  const accountLimits = new ModelRateLimiters({
    accountId: provider.accountId,
    settings: { tier: 1, imagesPerMinute: configuredPerMinute },
    registry,
    minuteMs: 60_000,
    redis,
    logger,
  });
  limits.push(accountLimits);
  return {
    name: 'primary',
    provider,
    limits: accountLimits,
    gate: new RedisAccountGate(redis, provider.accountId),
  };
}

const request = (prompt: string, n = 1) => ({
  spec: { operation: 'generate' as const, model: 'dall-e-2', prompt, size: '256x256', n },
  images: [],
});

/** Both workers told 6,000/min while the provider allows 60/min (one a second), from a clean slate. */
async function twoMisconfiguredWorkers(knobs: Parameters<RunningSimulator['setKnobs']>[0]) {
  await closeWorkers();
  const admin = new Redis(server.url);
  await admin.flushall();
  admin.disconnect();
  sim.setKnobs({ imagesPerMinute: 60, rateHeaders: ALL_RATE_HEADERS, ...knobs });
  sim.reset();
  return [await worker(6_000), await worker(6_000)] as const;
}

const once = { ...loadConfig({}).retry, retries: 0 };
const ALL_RATE_HEADERS = {
  families: ['requests', 'images', 'tokens'],
  fields: ['limit', 'remaining', 'reset'],
} as const satisfies RateHeadersKnob;

describe('callProvider', () => {
  // Real time against a real provider pace: a run on a loaded machine may land a request late;
  // such a run is tried again from a clean state rather than read as a failure.
  it(
    'a limit the provider declares on an ordinary answer holds every worker at once, before any 429',
    { retry: 2 },
    async () => {
      const [a, b] = await twoMisconfiguredWorkers({});
      await callProvider({ route: a, request: request('first'), policy: once });
      // The answer said x-ratelimit-limit-images: 60; worker b's calls wait their turn.
      const started = Date.now();
      await callProvider({ route: b, request: request('second'), policy: once });
      await callProvider({ route: b, request: request('third'), policy: once });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
      expect(sim.stats().rateLimited).toBe(0);
    },
  );

  it(
    'without rate headers, one 429 blocks every worker for the wait it asked and sets the pace',
    { retry: 2 },
    async () => {
      const [a, b] = await twoMisconfiguredWorkers({ rateHeaders: { families: [], fields: [] } });
      await callProvider({ route: a, request: request('first'), policy: once });
      await expect(
        callProvider({ route: a, request: request('second'), policy: once }),
      ).rejects.toBeInstanceOf(ProviderRateLimitedError);

      // Worker b never saw the 429, yet waits out its wait instead of being refused too.
      const started = Date.now();
      await callProvider({ route: b, request: request('third'), policy: once });
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
      // The 429 came while the window had room for 99 more: the provider holds one a window.
      const next = Date.now();
      await callProvider({ route: b, request: request('fourth'), policy: once });
      expect(Date.now() - next).toBeGreaterThanOrEqual(900);
      expect(sim.stats().rateLimited).toBe(1);
    },
  );

  it(
    'splits an item heavier than one window into calls and gathers their images',
    { retry: 2 },
    async () => {
      const [a] = await twoMisconfiguredWorkers({});
      await callProvider({ route: a, request: request('warm-up'), policy: once }); // learns 60/min
      const started = Date.now();
      const result = await callProvider({ route: a, request: request('three', 3), policy: once });
      expect(result.images).toHaveLength(3);
      expect(sim.stats().requests).toBe(4); // one call per image, a second apart
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
      expect(sim.stats().rateLimited).toBe(0);
    },
  );

  it('without rate headers, splits an item further when a 429 shows the provider holds fewer at once', async () => {
    // No wait hints either: the simulator's hint for a call that can never fit is a minute.
    const [a] = await twoMisconfiguredWorkers({
      rateHeaders: { families: [], fields: [] },
      retryHeaders: 'none',
    });
    const policy = { ...loadConfig({}).retry, retries: 3, minTimeoutMs: 50 };
    const result = await callProvider({ route: a, request: request('three', 3), policy });
    expect(result.images).toHaveLength(3);
    // 3 at once refused into an empty window: it holds fewer than 3, at least 1 for sure.
    expect(sim.stats().rateLimited).toBe(1);
    expect(sim.stats().billedImages).toBe(3);
  });

  it("refuses a model the account's tier has no limits for, so the next account can take it", async () => {
    const [a] = await twoMisconfiguredWorkers({});
    const dalle = registry.get('dall-e-2')!;
    const onlyTier5 = new ModelRegistry([
      {
        ...dalle,
        rate_limits: { ...dalle.rate_limits, tiers: { '5': { images_per_minute: 10_000 } } },
      },
    ]);
    const limits = new ModelRateLimiters({
      accountId: a.provider.accountId,
      settings: { tier: 1 },
      registry: onlyTier5,
      minuteMs: 60_000,
      redis: connections[0]!,
      logger,
    });
    await expect(
      callProvider({ route: { ...a, limits }, request: request('no row'), policy: once }),
    ).rejects.toMatchObject({
      name: 'ModelUnavailableError',
      message: expect.stringMatching(/no rate limit for dall-e-2: .*usage tier 1/),
    });
    expect(sim.stats().requests).toBe(0);
  });
});
