import type { RedisConnection } from '../redis/redis-connection.js';
import { limiterId } from './redis-rate-limiter.js';

/** Why and for how long every worker leaves a provider account alone. */
export interface AccountPause {
  /** rate_limited, provider_quota_exhausted, provider_auth … */
  code: string;
  reason: string;
  remainingMs: number;
}

/**
 * Whether a provider account may be called right now, shared by every worker: a 429 pauses
 * the whole account for as long as the provider asked, a quota or key failure for longer.
 */
export interface AccountGate {
  /** Pauses calls for `ms`. A pause is only ever extended, never cut short by a shorter one. */
  pause(ms: number, code: string, reason: string): Promise<void>;
  /** The pause in force, if any. */
  current(): Promise<AccountPause | undefined>;
}

/** Sets the pause unless a longer one is already in force. Redis keeps the clock (PX). */
const EXTEND_PAUSE = `
local ttl = redis.call('pttl', KEYS[1])
if ttl < tonumber(ARGV[1]) then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[1])
  return 1
end
return 0`;

/** The pause lives in one Redis key beside the account's limiter (same cluster slot). */
export class RedisAccountGate implements AccountGate {
  private readonly key: string;

  constructor(
    private readonly redis: RedisConnection,
    accountId: string,
  ) {
    this.key = `${limiterId(accountId)}:pause`;
  }

  async pause(ms: number, code: string, reason: string): Promise<void> {
    const duration = Math.max(1, Math.ceil(ms));
    await this.redis.eval(EXTEND_PAUSE, 1, this.key, duration, JSON.stringify({ code, reason }));
  }

  async current(): Promise<AccountPause | undefined> {
    // Checked before every call: the usual answer, no pause, takes one small command.
    if ((await this.redis.pttl(this.key)) <= 0) return undefined;
    const [[, value], [, ttl]] = (await this.redis.multi().get(this.key).pttl(this.key).exec()) as [
      [unknown, string | null],
      [unknown, number],
    ];
    if (!value || ttl <= 0) return undefined;
    const { code, reason } = JSON.parse(value) as { code: string; reason: string };
    return { code, reason, remainingMs: ttl };
  }
}
