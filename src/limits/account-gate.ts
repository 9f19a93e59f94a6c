import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { limiterKeys } from '../redis/redis-keys.js';

/** Why and for how long every worker leaves a provider account alone. */
export interface AccountPause {
  /** provider_quota_exhausted, provider_auth. */
  code: string;
  reason: string;
  remainingMs: number;
}

/** A pause as its key holds it (`value`, see pause()) with the time it has left. */
export function readPause(value: string, remainingMs: number): AccountPause {
  const { code, reason } = JSON.parse(value) as { code: string; reason: string };
  return { code, reason, remainingMs };
}

/**
 * Whether a provider account may be called right now, shared by every worker: an account out
 * of quota or whose key was refused is left alone for a while. Before a call, the model's rate
 * window reads the pause in the same round trip as it grants the turn (RateLimiter); this is
 * the pause for everything else. (A 429's wait is per model: it blocks that model's rate
 * window.)
 */
export interface AccountGate {
  /** Pauses calls for `ms`. A pause is only ever extended, never cut short by a shorter one. */
  pause(ms: number, code: string, reason: string): Promise<void>;
  /** The pause in force, if any. */
  current(): Promise<AccountPause | undefined>;
}

/** The pause lives in one Redis key beside the account's limiter (same cluster slot). */
export class RedisAccountGate implements AccountGate {
  private readonly key: string;
  private readonly scripts: LuaCommands;

  constructor(
    private readonly redis: RedisConnection,
    accountId: string,
  ) {
    this.key = limiterKeys(accountId).pause;
    this.scripts = luaCommands(redis);
  }

  async pause(ms: number, code: string, reason: string): Promise<void> {
    const duration = Math.max(1, Math.ceil(ms));
    // Extended only: a pause is never cut short by a shorter one (extend-pause.lua).
    await this.scripts.rmExtendPause(this.key, duration, JSON.stringify({ code, reason }));
  }

  async current(): Promise<AccountPause | undefined> {
    const [[, value], [, ttl]] = (await this.redis.multi().get(this.key).pttl(this.key).exec()) as [
      [unknown, string | null],
      [unknown, number],
    ];
    return value && ttl > 0 ? readPause(value, ttl) : undefined;
  }
}
