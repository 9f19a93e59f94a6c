import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountPausedError, ShutdownError, type ProviderRateReport } from '../../src/errors.js';
import type { CallCost } from '../../src/limits/rate-limiter.js';
import {
  RedisRateLimiter,
  windowAllowance,
  type RouteRateLimit,
} from '../../src/limits/redis-rate-limiter.js';
import { RedisAccountGate } from '../../src/limits/account-gate.js';
import { createLogger } from '../../src/logging.js';
import { limiterKeys } from '../../src/redis/redis-keys.js';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/runtime/embedded-redis.js';

const logger = createLogger('silent');
const MINUTE = 60_000;
let server: EmbeddedRedis;
let dataDir: string;
let accountSeq = 0;
const open: { limiter: RedisRateLimiter; connection: Redis }[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-limiter-'));
  // No persistence: a restart loses the window's keys.
  server = await startEmbeddedRedis({ dataDir, persistent: false });
});

afterAll(async () => {
  for (const { limiter, connection } of open) {
    await limiter.stop();
    connection.disconnect();
  }
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const newAccount = () => `https://sim.test/v1#acct-${accountSeq++}`;

/**
 * A limiter on its own Redis connection, as a separate worker process would have, its path to
 * the provider already warm (an answer has come back) unless `cold`.
 */
function workerLimiter(
  accountId: string,
  limit: RouteRateLimit,
  { model = 'gpt-image-2', minuteMs = MINUTE, cold = false } = {},
) {
  const connection = new Redis(server.url, { maxRetriesPerRequest: null });
  const limiter = new RedisRateLimiter({
    accountId,
    model,
    limit,
    minuteMs,
    redis: connection,
    logger,
  });
  open.push({ limiter, connection });
  // An answer with no news warms the path without a word to Redis.
  if (!cold) void limiter.observe(undefined, report({}));
  return limiter;
}

/** Takes `calls` turns of `cost` through the limiters in turn; returns when each was granted. */
async function grantTimes(limiters: RedisRateLimiter[], calls: number, cost: CallCost) {
  const times: { at: number; images: number }[] = [];
  await Promise.all(
    Array.from({ length: calls }, async (_, i) => {
      await limiters[i % limiters.length]!.acquire(cost);
      times.push({ at: Date.now(), images: cost.images });
    }),
  );
  return times.sort((a, b) => a.at - b.at);
}

/** The most images granted within any window of `ms` (the provider's sliding-window view). */
function mostInAnyWindow(times: { at: number; images: number }[], ms: number): number {
  let most = 0;
  for (let i = 0; i < times.length; i++) {
    let sum = 0;
    for (let j = i; j < times.length && times[j]!.at < times[i]!.at + ms; j++)
      sum += times[j]!.images;
    most = Math.max(most, sum);
  }
  return most;
}

/** What `work` returned, and how many scripts Redis ran meanwhile: the limiters' asks for turns. */
async function scriptCalls<T>(work: () => Promise<T>): Promise<{ result: T; calls: number }> {
  const probe = new Redis(server.url);
  const evalshaCalls = async () => {
    const stats = await probe.info('commandstats');
    return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };
  try {
    const before = await evalshaCalls();
    const result = await work();
    return { result, calls: (await evalshaCalls()) - before };
  } finally {
    probe.disconnect();
  }
}

const report = (changes: Partial<ProviderRateReport>): ProviderRateReport => ({
  refused: false,
  limits: {},
  remaining: {},
  resetMs: {},
  ...changes,
});

describe('windowAllowance', () => {
  it('holds whole images in a window of at least a second', () => {
    expect(windowAllowance(600)).toBe(10);
    expect(windowAllowance(3_000)).toBe(50);
    expect(windowAllowance(150)).toBe(3); // 1.2 s windows
    expect(windowAllowance(5)).toBe(1); // 12 s windows: calls of one image
  });
});

describe('RedisRateLimiter', () => {
  it('shares one window between workers: never more than the allowance in any second, yet close to the limit', async () => {
    const account = newAccount();
    const workers = [1, 2, 3].map(() => workerLimiter(account, { imagesPerMinute: 600 }));
    const started = Date.now();
    const times = await grantTimes(workers, 45, { images: 1, tokens: 0 });
    const elapsed = Date.now() - started;
    // 10 a second: the first 10 within the first window, the other 35 over ~3.5 windows of
    // ~1.015 s (the first two a little longer while the path counts as cold).
    expect(mostInAnyWindow(times, 1000)).toBeLessThanOrEqual(10);
    expect(elapsed).toBeGreaterThanOrEqual(3_400);
    expect(elapsed).toBeLessThan(4_600);
  });

  it('weighs calls by images, and by tokens when the model has a tokens limit', async () => {
    const images = workerLimiter(newAccount(), { imagesPerMinute: 600 });
    const byImages = await grantTimes([images], 5, { images: 4, tokens: 0 });
    // Two calls of 4 fit a window of 10; the third waits for the first to leave it.
    expect(byImages[2]!.at - byImages[0]!.at).toBeGreaterThanOrEqual(990);
    expect(mostInAnyWindow(byImages, 1000)).toBeLessThanOrEqual(10);

    // 60,000 tokens a minute = 1,000 a second: calls of 400 tokens go two per second.
    const tokens = workerLimiter(newAccount(), { imagesPerMinute: 600, tokensPerMinute: 60_000 });
    const byTokens = await grantTimes([tokens], 3, { images: 1, tokens: 400 });
    expect(byTokens[1]!.at - byTokens[0]!.at).toBeLessThan(200);
    expect(byTokens[2]!.at - byTokens[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('spaces a low limit across the minute, one image per window', async () => {
    // 5 a minute in a 6-second minute: one image per 1.2 s window.
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 5 }, { minuteMs: 6_000 });
    expect(limiter.maxImagesPerCall).toBe(1);
    const times = await grantTimes([limiter], 3, { images: 1, tokens: 0 });
    expect(times[1]!.at - times[0]!.at).toBeGreaterThanOrEqual(1_190);
    expect(times[2]!.at - times[1]!.at).toBeGreaterThanOrEqual(1_190);
  });

  it('lets a call heavier than the window through an empty window, and holds it for as long as it weighs', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 5 }, { minuteMs: 6_000 });
    const times = await grantTimes([limiter], 2, { images: 2, tokens: 0 });
    // Two windows' worth: the next call waits two windows.
    expect(times[1]!.at - times[0]!.at).toBeGreaterThanOrEqual(2_400);
  });

  it('keeps models apart: each has its own window', async () => {
    const account = newAccount();
    const a = workerLimiter(account, { imagesPerMinute: 60 }, { model: 'gpt-image-2' });
    const b = workerLimiter(account, { imagesPerMinute: 60 }, { model: 'dall-e-2' });
    const started = Date.now();
    await a.acquire({ images: 1, tokens: 0 });
    await b.acquire({ images: 1, tokens: 0 });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('follows a declared limit below the configured one at once, for every worker', async () => {
    const account = newAccount();
    const first = workerLimiter(account, { imagesPerMinute: 1_200 });
    const second = workerLimiter(account, { imagesPerMinute: 1_200 });
    const grant = await first.acquire({ images: 1, tokens: 0 });
    await first.observe(grant, report({ limits: { images: 600, requests: 600 } }));
    expect(first.maxImagesPerCall).toBe(10);
    // The other worker has not seen the header; the shared window holds it to 10 a second too.
    const times = await grantTimes([second], 20, { images: 1, tokens: 0 });
    expect(mostInAnyWindow([{ at: times[0]!.at, images: 1 }, ...times], 1000)).toBeLessThanOrEqual(
      11,
    );
    expect(second.maxImagesPerCall).toBe(10);
  });

  it('learns a lower limit from a 429 that came while the window had room', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 1_200 });
    const grants = [];
    for (let i = 0; i < 6; i++) grants.push(await limiter.acquire({ images: 1, tokens: 0 }));
    // The provider refused the sixth: it holds 5 a window, not 20.
    await limiter.observe(grants[5], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(5);
  });

  it('reads the refusals of one burst, arriving out of order, as lower bounds of the limit', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 1_200 });
    const grants = [];
    for (let i = 0; i < 20; i++) grants.push(await limiter.acquire({ images: 1, tokens: 0 }));
    // The 13th was refused though 7 more fit: the provider holds about 12.
    await limiter.observe(grants[12], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(12);
    // An earlier one, refused too (it arrived late): it cannot lower the limit further.
    await limiter.observe(grants[8], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(12);
    // A later one, with 14 accepted before it: the provider holds at least 14.
    await limiter.observe(grants[16], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(14);
  });

  it('holds the grants already in the window for the longer window a declared limit brings', async () => {
    // Told 10 a minute (of 6 s); the first answer declares 5: the call it answered counts 1.2 s.
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 10 }, { minuteMs: 6_000 });
    const started = Date.now();
    const first = await limiter.acquire({ images: 1, tokens: 0 });
    await limiter.observe(first, report({ limits: { images: 5 } }));
    await limiter.acquire({ images: 1, tokens: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_150);
  });

  it('lengthens a window of one image by the wait a 429 asked, when there is nothing to take off', async () => {
    // Told 10 a minute (of 6 s): one image per 0.6 s; the provider holds one per 1.2 s.
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 10 }, { minuteMs: 6_000 });
    const refused = await limiter.acquire({ images: 1, tokens: 0 });
    await limiter.observe(refused, report({ refused: true, retryAfterMs: 590 }));
    const first = await grantTimes([limiter], 2, { images: 1, tokens: 0 });
    expect(first[1]!.at - first[0]!.at).toBeGreaterThanOrEqual(1_150);
  });

  it('cuts again at the edge of the window within a few windows of a cut: the first was not deep enough', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 1_200 });
    const grants = [];
    for (let i = 0; i < 13; i++) grants.push(await limiter.acquire({ images: 1, tokens: 0 }));
    await limiter.observe(grants[12], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(12);
    // The next window, full by the new count, is refused at its edge: 11, not a timing strike.
    const next = [];
    for (let i = 0; i < 12; i++) next.push(await limiter.acquire({ images: 1, tokens: 0 }));
    await limiter.observe(next[11], report({ refused: true }));
    expect(limiter.maxImagesPerCall).toBe(11);
  });

  /** Takes a whole window's turns and reports the provider refused the last: a 429 of timing. */
  async function refusedAtTheEdge(limiter: RedisRateLimiter) {
    const grants = [];
    for (let i = 0, n = limiter.maxImagesPerCall; i < n; i++) {
      grants.push(await limiter.acquire({ images: 1, tokens: 0 }));
    }
    await limiter.observe(grants.at(-1), report({ refused: true }));
    return grants.at(-1);
  }

  it('does not cut the rate for a 429 of timing (the window was full), only after three in a minute', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 600 });
    const last = await refusedAtTheEdge(limiter);
    await limiter.observe(last, report({ refused: true })); // the same window: one strike
    expect(limiter.maxImagesPerCall).toBe(10);
    await refusedAtTheEdge(limiter);
    expect(limiter.maxImagesPerCall).toBe(10);
    await refusedAtTheEdge(limiter);
    expect(limiter.maxImagesPerCall).toBe(9);
  });

  it('after three 429s of timing, counts a limit that is not whole per second in whole seconds', async () => {
    // 500/min is 8.3 a second: 9 per 1.08 s, until the provider shows it allows 8 a second.
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 500 });
    expect(limiter.maxImagesPerCall).toBe(9);
    for (let i = 0; i < 3; i++) await refusedAtTheEdge(limiter);
    expect(limiter.maxImagesPerCall).toBe(8);
  });

  it('blocks every call for the wait a 429 asked, and hands a long wait back', async () => {
    const account = newAccount();
    const limiter = workerLimiter(account, { imagesPerMinute: 6_000 });
    const other = workerLimiter(account, { imagesPerMinute: 6_000 });
    const grant = await limiter.acquire({ images: 1, tokens: 0 });
    await limiter.observe(grant, report({ refused: true, retryAfterMs: 400 }));
    const started = Date.now();
    await other.acquire({ images: 1, tokens: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);

    const again = await other.acquire({ images: 1, tokens: 0 });
    await other.observe(again, report({ refused: true, retryAfterMs: 5_000 }));
    await expect(limiter.acquire({ images: 1, tokens: 0 }, { maxWaitMs: 1_000 })).rejects.toThrow(
      AccountPausedError,
    );
  });

  it("gives a paused account no turn, in the turn's own round trip, and takes nothing from the window", async () => {
    const account = newAccount();
    const limiter = workerLimiter(account, { imagesPerMinute: 60 });
    const gateConnection = new Redis(server.url);
    await new RedisAccountGate(gateConnection, account).pause(
      2_000,
      'provider_quota_exhausted',
      'the account is out of quota',
    );
    gateConnection.disconnect();
    const refused = await limiter.acquire({ images: 1, tokens: 0 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(AccountPausedError);
    expect(refused).toMatchObject({
      code: 'provider_quota_exhausted',
      message: 'the account is out of quota',
    });
    const resumeAt = (refused as AccountPausedError).resumeAt - Date.now();
    expect(resumeAt).toBeGreaterThan(1_000);
    expect(resumeAt).toBeLessThanOrEqual(2_000);
    // The refused call took no turn: with one image a second, a turn it had taken would hold
    // the next call for about a second.
    const probe = new Redis(server.url);
    await probe.del(limiterKeys(account).pause);
    probe.disconnect();
    const started = Date.now();
    await limiter.acquire({ images: 1, tokens: 0 });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('asks Redis for one turn at a time however many calls of the process wait, first come first served', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 120 }); // 2 images a second
    const order: number[] = [];
    // The first asks at once; the other eleven come while it does, and queue.
    const { calls: asked } = await scriptCalls(() =>
      Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          limiter.acquire({ images: 1, tokens: 0 }).then(() => order.push(i)),
        ),
      ),
    );
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // Twelve grants over ~6 s of windows: each turn asked once, plus a few asks told to wait —
    // not every waiting call asking again after each wait.
    expect(asked).toBeGreaterThanOrEqual(12);
    expect(asked).toBeLessThanOrEqual(30);
  });

  it('grants several workers waiting on one window a turn each for when it falls due: one ask a turn', async () => {
    const account = newAccount();
    const workers = [1, 2, 3, 4].map(() => workerLimiter(account, { imagesPerMinute: 600 }));
    const { result: times, calls: asked } = await scriptCalls(() =>
      grantTimes(workers, 40, { images: 1, tokens: 0 }),
    );
    // Still never more than the allowance in any second …
    expect(mostInAnyWindow(times, 1000)).toBeLessThanOrEqual(10);
    // … and the four queues' heads, each told "your turn is in 100 ms", do not all ask again
    // when a grant expires (each worker's first ask, plus one per turn a quarter-window away).
    expect(asked).toBeLessThanOrEqual(40 + 20);
  });

  it('holds the calls of a cold process a little longer in the window', async () => {
    // 100 ms (at most 10 % of the window): 1,015 ms becomes ~1,115.
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 60 }, { cold: true });
    const times = await grantTimes([limiter], 2, { images: 1, tokens: 0 });
    expect(times[1]!.at - times[0]!.at).toBeGreaterThanOrEqual(1_100);
  });

  it('lets half a window out until the provider has answered once (slow start)', async () => {
    const cold = workerLimiter(newAccount(), { imagesPerMinute: 600 }, { cold: true });
    const times = await grantTimes([cold], 6, { images: 1, tokens: 0 });
    // Paced from the start, five grants would span 400 ms; a busy machine (CI runs suites in
    // parallel) delays each round trip, so the bound leaves room below that.
    expect(times[4]!.at - times[0]!.at).toBeLessThan(300);
    expect(times[5]!.at - times[0]!.at).toBeGreaterThanOrEqual(1_000);

    // A call heavier than the half, but within the window, goes alone, and calls are not
    // split for the slow start: the allowance stays the whole window's.
    const heavy = workerLimiter(newAccount(), { imagesPerMinute: 600 }, { cold: true });
    await heavy.acquire({ images: 8, tokens: 0 });
    expect(heavy.maxImagesPerCall).toBe(10);

    // Warm, the whole window goes out, paced: half at once, then an image's share apart.
    const warm = workerLimiter(newAccount(), { imagesPerMinute: 600 });
    const warmTimes = await grantTimes([warm], 10, { images: 1, tokens: 0 });
    expect(warmTimes[5]!.at - warmTimes[0]!.at).toBeLessThan(300);
    expect(warmTimes[9]!.at - warmTimes[5]!.at).toBeGreaterThanOrEqual(350);
    expect(warmTimes[9]!.at - warmTimes[0]!.at).toBeLessThan(850);
  });

  it('ends a wait at shutdown, and never grants after it', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 5 });
    await limiter.acquire({ images: 1, tokens: 0 });
    const shutdown = new AbortController();
    const waiting = limiter.acquire({ images: 1, tokens: 0 }, { shutdown: shutdown.signal });
    setTimeout(() => shutdown.abort(), 100);
    await expect(waiting).rejects.toThrow(ShutdownError);
  });

  it('grants nothing once stopped, with or without calls ahead', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 600 });
    await limiter.stop();
    await expect(limiter.acquire({ images: 1, tokens: 0 })).rejects.toThrow(ShutdownError);
  });

  it('settles tokens from what the call used', async () => {
    const limiter = workerLimiter(newAccount(), { imagesPerMinute: 600, tokensPerMinute: 60_000 });
    // Estimated at the whole window's 1,000 tokens, the call used 100: the next goes at once.
    const grant = await limiter.acquire({ images: 1, tokens: 1_000 });
    await limiter.observe(grant, report({ tokensUsed: 100 }));
    const started = Date.now();
    await limiter.acquire({ images: 1, tokens: 500 });
    expect(Date.now() - started).toBeLessThan(300);
  });
});
