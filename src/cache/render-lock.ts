import { randomBytes } from 'node:crypto';
import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { RM_PREFIX, cacheKeys } from '../redis/redis-keys.js';
import { waitUnlessShutdown } from '../limits/backoff.js';

/** Held while one worker renders a request; everyone else wanting it waits, then reuses it. */
export interface RenderLease {
  /** What proves the lock is this lease's: handed to the run that takes it over. */
  readonly token: string;
  /** Lets the waiters go. Safe to call twice; never releases a lock someone else now holds. */
  release(): Promise<void>;
  /**
   * Stops renewing and keeps the lock for `ms` more: a queued prediction (or a provider batch)
   * will be collected by another run, which takes the lock over with the token
   * (`RenderLocks.takeOver`). Waiters go back to the queue rather than buy the same image, and
   * look again every `waitersRecheckMs`. Release is a no-op afterwards.
   */
  handOff(ms: number, waitersRecheckMs: number): Promise<void>;
}

export interface RenderLockOptions {
  /**
   * How long a lock outlives a worker that died holding it. The holder renews it every third
   * of this while it works, so it only bounds how long waiters wait for a dead holder
   * (RENDERMILL_JOB_LOCK_MS, like a job's own lock).
   */
  ttlMs: number;
  /** Longest pause between checks while waiting for a holder. Default MAX_POLL_MS. */
  maxPollMs?: number;
}

/**
 * Longest pause between a waiter's checks: a waiter sees the holder's result within this of its
 * arrival, at a few Redis reads a second per waiting item.
 */
const MAX_POLL_MS = 250;

/**
 * Single-flight for provider calls: across every worker process, at most one renders a given
 * request hash at a time. The lock lives in Redis with a time-to-live that its holder keeps
 * renewing, so a holder killed mid-call frees it within `ttlMs` and a waiter takes over.
 */
export class RenderLocks {
  private readonly ttlMs: number;
  private readonly maxPollMs: number;
  private readonly scripts: LuaCommands;
  private readonly keys: ReturnType<typeof cacheKeys>;

  constructor(
    private readonly redis: RedisConnection,
    options: RenderLockOptions,
    prefix = RM_PREFIX,
  ) {
    this.ttlMs = options.ttlMs;
    this.maxPollMs = options.maxPollMs ?? MAX_POLL_MS;
    this.scripts = luaCommands(redis);
    this.keys = cacheKeys(prefix);
  }

  private key(scope: string, hash: string) {
    // Same hash tag as the cache index of the hash: one slot per request on Redis Cluster.
    return this.keys.renderLock(scope, hash);
  }

  /** Takes the lock if nobody holds it. */
  async tryAcquire(scope: string, hash: string): Promise<RenderLease | undefined> {
    const key = this.key(scope, hash);
    const token = randomBytes(12).toString('hex');
    const taken = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (taken !== 'OK') return undefined;
    return this.lease(key, token, this.keys.renderLockHandedOn(scope, hash));
  }

  /**
   * When the lock is handed on (see `RenderLease.handOff`): how often its waiters should look
   * again. Undefined when it is not handed on.
   */
  async handedOn(scope: string, hash: string): Promise<number | undefined> {
    const recheckMs = await this.redis.get(this.keys.renderLockHandedOn(scope, hash));
    return recheckMs === null ? undefined : Number(recheckMs) || 0;
  }

  /**
   * Takes over the lock a run handed off with `token` (a queued prediction it started), or
   * takes it afresh if it lapsed meanwhile. Undefined when someone else holds it now: this run
   * collects what it already paid for all the same.
   */
  async takeOver(scope: string, hash: string, token: string): Promise<RenderLease | undefined> {
    const key = this.key(scope, hash);
    const ours = await this.scripts.rmCompareAndPexpire(key, token, this.ttlMs);
    await this.redis.del(this.keys.renderLockHandedOn(scope, hash));
    if (ours === 1) return this.lease(key, token, this.keys.renderLockHandedOn(scope, hash));
    return this.tryAcquire(scope, hash);
  }

  /**
   * A lease on `key` held with `token`, renewed until it is released or handed off (then
   * `handedOnKey` marks it so for as long as the lock is kept).
   */
  private lease(key: string, token: string, handedOnKey: string): RenderLease {
    // Compare-and-act: only the holder's token may renew or delete the lock.
    const renew = setInterval(() => {
      this.scripts.rmCompareAndPexpire(key, token, this.ttlMs).catch(() => {
        // Redis away for a moment: the lock may lapse and a waiter start a second call. That
        // costs money but loses nothing; the next renewal or the release settles it.
      });
    }, this.ttlMs / 3);
    renew.unref();
    let released = false;
    return {
      token,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        await this.scripts.rmCompareAndDelete(key, token);
      },
      handOff: async (ms: number, waitersRecheckMs: number) => {
        if (released) return;
        released = true;
        clearInterval(renew);
        const keep = Math.max(1, Math.round(ms));
        if ((await this.scripts.rmCompareAndPexpire(key, token, keep)) === 1) {
          await this.redis.set(handedOnKey, String(waitersRecheckMs), 'PX', keep);
        }
      },
    };
  }

  /** Waits until nobody holds the lock (released, or lapsed with its dead holder). */
  async waitForRelease(scope: string, hash: string, shutdown?: AbortSignal): Promise<void> {
    const key = this.key(scope, hash);
    for (let pause = 20; (await this.redis.exists(key)) === 1;) {
      await waitUnlessShutdown(pause, shutdown);
      pause = Math.min(pause * 2, this.maxPollMs);
    }
  }
}
