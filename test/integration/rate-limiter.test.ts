import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderRejectedError } from '../../src/errors.js';
import { RedisAccountGate } from '../../src/limits/account-gate.js';
import { limitShape } from '../../src/limits/limit-shape.js';
import { RedisRateLimiter } from '../../src/limits/redis-rate-limiter.js';
import { limiterId } from '../../src/redis/redis-keys.js';
import { createLogger } from '../../src/logging.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/runtime/embedded-redis.js';

const logger = createLogger('silent');
let server: EmbeddedRedis;
let dataDir: string;
let redis: Redis;
let accountSeq = 0;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-limiter-'));
  // No persistence: a restart loses the limiter's keys, the case Bottleneck could not survive.
  server = await startEmbeddedRedis({ dataDir, persistent: false });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  redis.disconnect();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Each limiter gets its own Redis connections, as separate worker processes would. */
function workerLimiter(accountId: string, imagesPerMinute: number) {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  const limiter = new RedisRateLimiter({ accountId, imagesPerMinute, redis: connection, logger });
  return {
    limiter,
    async close() {
      await limiter.stop();
      connection.disconnect();
    },
  };
}

/** Runs `jobs` requests of `weight` images each through the limiters in turn; returns start times. */
async function runThrough(limiters: RedisRateLimiter[], jobs: number, weight = 1) {
  const starts: number[] = [];
  await Promise.all(
    Array.from({ length: jobs }, (_, i) =>
      limiters[i % limiters.length]!.schedule(weight, async () => {
        starts.push(Date.now());
      }),
    ),
  );
  return starts.sort((a, b) => a - b);
}

/**
 * Replays the start times against the provider's own limit — a bucket of one second's worth,
 * refilled continuously — and counts the requests it would have answered with a 429.
 */
function providerRejections(starts: number[], imagesPerMinute: number, weight = 1): number {
  const capacity = Math.ceil(imagesPerMinute / 60);
  let tokens = capacity;
  let last = starts[0] ?? 0;
  let rejected = 0;
  for (const at of starts) {
    tokens = Math.min(capacity, tokens + ((at - last) * imagesPerMinute) / 60_000);
    last = at;
    // 5 ms of grace: timers fire up to a few ms early and the clock has 1 ms steps.
    if (tokens + (5 * imagesPerMinute) / 60_000 >= weight) tokens -= weight;
    else rejected += 1;
  }
  return rejected;
}

describe('RedisRateLimiter', () => {
  it('shares one account’s allowance between workers and never outruns the provider', async () => {
    const account = `https://sim.test/v1#shared-${accountSeq++}`;
    const workers = [workerLimiter(account, 1200), workerLimiter(account, 1200)];
    try {
      await Promise.all(workers.map((w) => w.limiter.ready()));
      const starts = await runThrough(
        workers.map((w) => w.limiter),
        60,
      );
      const { burst } = limitShape(1200); // 18 at once, then 20/s
      const elapsed = starts.at(-1)! - starts[0]!;
      // Two independent limiters would each allow 20/s and finish in about a second.
      expect(elapsed).toBeGreaterThanOrEqual(((60 - burst) / 20) * 1000 - 100);
      expect(providerRejections(starts, 1200)).toBe(0);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('gives two accounts two limits', async () => {
    const a = workerLimiter(`https://sim.test/v1#a-${accountSeq++}`, 1200);
    const b = workerLimiter(`https://sim.test/v1#b-${accountSeq++}`, 1200);
    try {
      await Promise.all([a.limiter.ready(), b.limiter.ready()]);
      expect(limiterId('x#1')).not.toBe(limiterId('x#2'));
      const starts = await runThrough([a.limiter, b.limiter], 60);
      // 30 each: a burst of 18, then 12 more at 20/s — well under a second.
      expect(starts.at(-1)! - starts[0]!).toBeLessThan(1200);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('weighs a request by its images and refuses one that could never fit', async () => {
    const w = workerLimiter(`https://sim.test/v1#weight-${accountSeq++}`, 600); // 9 at once, 10/s
    try {
      await w.limiter.ready();
      const starts = await runThrough([w.limiter], 6, 4); // 24 images
      expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(((24 - 9) / 10) * 1000 - 100);
      expect(providerRejections(starts, 600, 4)).toBe(0);
      await expect(w.limiter.schedule(10, async () => 'never')).rejects.toBeInstanceOf(
        ProviderRejectedError,
      );
    } finally {
      await w.close();
    }
  });

  it('keeps limiting when its keys are deleted and when redis-server restarts empty', async () => {
    const account = `https://sim.test/v1#restart-${accountSeq++}`;
    const workers = [workerLimiter(account, 600), workerLimiter(account, 600)];
    try {
      await Promise.all(workers.map((w) => w.limiter.ready()));
      const limiters = workers.map((w) => w.limiter);
      const running = runThrough(limiters, 60);

      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const keys = await redis.keys(`b_${limiterId(account)}*`);
      expect(keys.length).toBeGreaterThan(0);
      await redis.del(...keys);

      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await server.restart(); // no persistence: every key is gone

      const starts = await Promise.race([
        running,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('jobs stuck after the keys vanished')), 20_000),
        ),
      ]);
      expect(starts).toHaveLength(60);
      expect(await redis.exists(`b_${limiterId(account)}_settings`)).toBe(1); // recreated
      // Each loss of the keys may hand out one fresh burst; otherwise the pace is 10/s.
      const { burst } = limitShape(600);
      const elapsed = starts.at(-1)! - starts[0]!;
      expect(elapsed).toBeGreaterThanOrEqual(((60 - 3 * burst) / 10) * 1000 - 200);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it('comes back whole after losing its keys while idle, even if slowed down meanwhile', async () => {
    const account = `https://sim.test/v1#idle-${accountSeq++}`;
    const w = workerLimiter(account, 600);
    try {
      await w.limiter.ready();
      await redis.del(...(await redis.keys(`b_${limiterId(account)}*`)));
      // A 429 arriving now must not write into the missing settings: Bottleneck could not
      // work with a partial hash and would fail every call from then on.
      await w.limiter.slowDown(300);
      expect(await redis.exists(`b_${limiterId(account)}_settings`)).toBe(0);

      const starts = await Promise.race([
        runThrough([w.limiter], 3),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('limiter stuck after losing its keys')), 10_000),
        ),
      ]);
      expect(starts).toHaveLength(3);
      const settings = await redis.hgetall(`b_${limiterId(account)}_settings`);
      expect(settings).toHaveProperty('clientTimeout'); // re-created whole by Bottleneck
      expect(settings).toHaveProperty('version');
    } finally {
      await w.close();
    }
  });
});

describe('RedisAccountGate', () => {
  it('pauses an account for every worker, extending but never shortening a pause', async () => {
    const account = `https://sim.test/v1#gate-${accountSeq++}`;
    const gate = new RedisAccountGate(redis, account);
    const otherWorker = new RedisAccountGate(redis, account);
    expect(await gate.current()).toBeUndefined();

    await gate.pause(5_000, 'provider_quota_exhausted', 'out of quota');
    await gate.pause(500, 'rate_limited', 'slow down'); // shorter: ignored
    const pause = await otherWorker.current();
    expect(pause).toMatchObject({ code: 'provider_quota_exhausted', reason: 'out of quota' });
    expect(pause!.remainingMs).toBeGreaterThan(4_000);

    await gate.pause(10_000, 'rate_limited', 'wait longer');
    expect(await otherWorker.current()).toMatchObject({ code: 'rate_limited' });
    expect(await new RedisAccountGate(redis, `${account}-other`).current()).toBeUndefined();
  });
});
