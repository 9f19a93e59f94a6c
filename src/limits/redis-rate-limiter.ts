import Bottleneck from 'bottleneck';
import { duplicateConnection, type RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { ProviderRejectedError, ShutdownError } from '../errors.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { limiterKeys } from '../redis/redis-keys.js';
import { limitShape, type LimitShape } from './limit-shape.js';
import type { RateLimiter } from './rate-limiter.js';
import './bottleneck-patch-check.js';

export interface RedisRateLimiterOptions {
  /** The provider account (base URL + key fingerprint): one limit per account. */
  accountId: string;
  imagesPerMinute: number;
  /**
   * A connection to copy (one Redis or a cluster): the limiter opens its own client and
   * subscriber from it.
   */
  redis: RedisConnection;
  logger: Logger;
}

/** The heaviest request any model takes (n ≤ 10): a slowed-down limiter still lets it through. */
const LARGEST_REQUEST = 10;

/** How often each process lets a slowed-down rate climb back (the script decides if it may). */
const RECOVERY_CHECK_MS = 5_000;

/**
 * An images-per-minute limit shared by every process that renders for the same account:
 * Bottleneck in clustered mode keeps the allowance (its "reservoir") in Redis, and each
 * request takes as many images from it as it asks for. Bottleneck 2.19.5 is patched (see
 * patches/) so that it works on Redis ≥ 7 and recovers when its keys vanish. When the
 * provider still answers 429, every worker slows down together (see src/redis/lua/adapt-rate.lua).
 */
export class RedisRateLimiter implements RateLimiter {
  readonly shape: LimitShape;
  private readonly bottleneck: Bottleneck;
  private readonly connection: Bottleneck.IORedisConnection;
  private readonly client: RedisConnection;
  private readonly scripts: LuaCommands;
  private readonly keys: ReturnType<typeof limiterKeys>;
  private readonly recovery: NodeJS.Timeout;
  /** The heaviest request the limiter must always be able to release. */
  private readonly minimumBurst: number;
  private readonly logger: Logger;

  constructor(options: RedisRateLimiterOptions) {
    this.shape = limitShape(options.imagesPerMinute);
    this.minimumBurst = Math.min(this.shape.burst, LARGEST_REQUEST);
    this.keys = limiterKeys(options.accountId);
    this.logger = options.logger;
    const { burst, refillAmount, refillIntervalMs } = this.shape;
    // Commands wait out a Redis restart instead of failing: waiting jobs resume afterwards.
    this.client = duplicateConnection(options.redis, { maxRetriesPerRequest: null });
    this.scripts = luaCommands(this.client);
    // On a cluster Bottleneck copies the client for its subscriber (Cluster#duplicate); all of
    // its keys carry the limiter id's hash tag, so each script runs on one node.
    this.connection = new Bottleneck.IORedisConnection({ client: this.client });
    this.bottleneck = new Bottleneck({
      id: this.keys.id,
      datastore: 'ioredis',
      connection: this.connection,
      reservoir: burst,
      reservoirIncreaseAmount: refillAmount,
      reservoirIncreaseInterval: refillIntervalMs,
      reservoirIncreaseMaximum: burst,
      // In clustered mode a waiting request is looked at again only on a heartbeat (default
      // 5 s), which is also when the reservoir refills: beat about as often as it refills.
      // Every beat of every process publishes to all of them, so not more than 10 times a
      // second; and at least once a second, well inside Bottleneck's 10 s client timeout.
      heartbeatInterval: Math.min(1_000, Math.max(100, refillIntervalMs)),
    });
    this.bottleneck.on('error', (error: unknown) =>
      options.logger.warn({ err: error }, 'rate limiter: Redis error; retrying'),
    );
    this.recovery = setInterval(() => {
      this.adapt('up').catch(() => undefined); // Redis away: try again on the next tick
    }, RECOVERY_CHECK_MS);
    this.recovery.unref();
  }

  async slowDown(providerLimitPerMinute?: number): Promise<void> {
    await this.adapt('down', providerLimitPerMinute);
  }

  /** Runs the shared rate script and, if the rate changed, re-shapes the reservoir for it. */
  private async adapt(direction: 'down' | 'up', providerLimit?: number): Promise<void> {
    const [rate, changed] = await this.scripts.rmAdaptRate(
      this.keys.rate,
      this.keys.bottleneckSettings,
      direction,
      this.shape.imagesPerMinute,
      providerLimit ?? '',
    );
    if (!changed) return;
    const shape = limitShape(rate);
    // Into Bottleneck's settings, which every process reads on each tick.
    await this.scripts.rmReshapeReservoir(
      this.keys.rate,
      this.keys.bottleneckSettings,
      rate,
      this.shape.imagesPerMinute,
      shape.refillAmount,
      shape.refillIntervalMs,
      Math.max(shape.burst, this.minimumBurst),
    );
    const restoring = direction === 'up' && rate === this.shape.imagesPerMinute;
    if (restoring) return; // the usual case: nothing was slowed down
    this.logger[direction === 'down' ? 'warn' : 'info'](
      { configured: this.shape.imagesPerMinute, rate, provider_limit: providerLimit },
      direction === 'down'
        ? 'provider answered 429: every worker slows down (is the usage tier set too high?)'
        : 'rate limit recovering',
    );
  }

  /**
   * Waits until Redis holds this limiter, then applies this process's limit there. The
   * settings are shared: processes of one account should all be given the same limit.
   */
  async ready(): Promise<void> {
    await this.bottleneck.ready();
    const { burst, refillAmount, refillIntervalMs } = this.shape;
    await this.bottleneck.updateSettings({
      reservoirIncreaseAmount: refillAmount,
      reservoirIncreaseInterval: refillIntervalMs,
      reservoirIncreaseMaximum: burst,
    });
  }

  async schedule<T>(weight: number, fn: () => Promise<T>, shutdown?: AbortSignal): Promise<T> {
    if (weight > this.shape.burst) {
      // Bottleneck would hold a request heavier than its reservoir forever.
      throw new ProviderRejectedError(
        `a request for ${weight} images can never pass a limit of ${this.shape.imagesPerMinute}/min, ` +
          `which allows ${this.shape.burst} at once; lower n`,
        'request_exceeds_rate_limit',
      );
    }
    if (shutdown?.aborted) throw new ShutdownError();
    // Once fn has run, its outcome is the answer even if Bottleneck's own bookkeeping in Redis
    // fails afterwards: reporting a paid call as failed would have it bought again.
    let started = false;
    let outcome: { value: T } | { error: unknown } | undefined;
    let finished: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const run = async () => {
      if (shutdown?.aborted) throw new ShutdownError(); // its turn came after the shutdown
      started = true;
      try {
        outcome = { value: await fn() };
      } catch (error) {
        outcome = { error };
      }
      finished();
    };
    const waited = this.bottleneck.schedule({ weight }, run);
    waited.catch(() => undefined); // a wait cut short by shutdown is dropped when the limiter stops
    const cut = shutdown && abortedBeforeStart(shutdown, () => started);
    try {
      // Done as soon as fn is: Bottleneck then frees the request in Redis, which may wait out
      // a Redis outage, and a paid answer must not wait on that.
      await Promise.race([waited, done, ...(cut ? [cut.promise] : [])]);
    } catch (error) {
      if (!outcome) throw error;
    } finally {
      cut?.dispose();
    }
    if (!outcome) throw new ShutdownError();
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  async stop(): Promise<void> {
    clearInterval(this.recovery);
    try {
      await this.bottleneck.stop({ dropWaitingJobs: true });
      await this.bottleneck.disconnect(false);
      // The connection is ours (passed in), so Bottleneck leaves its client and subscriber open.
      await this.connection.disconnect(false);
    } catch {
      // Closing: a Redis that is already gone has nothing left to clean up.
    }
    this.client.disconnect();
  }
}

/**
 * A promise that rejects with ShutdownError when `signal` aborts, unless `started()` says the
 * work has begun by then: a shutdown cuts waits, never a call in flight.
 */
function abortedBeforeStart(signal: AbortSignal, started: () => boolean) {
  let onAbort: () => void = () => undefined;
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => {
      if (!started()) reject(new ShutdownError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => undefined);
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}
