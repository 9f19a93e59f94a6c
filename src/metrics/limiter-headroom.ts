import { luaCommands } from '../redis/lua-scripts.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { limiterKeys } from '../redis/redis-keys.js';

/**
 * Images the limiter of the provider account `accountId` can release right now, if known:
 * Bottleneck's reservoir with the refills it has not applied yet (limiter-headroom.lua).
 * Read-only: a scrape never moves the limiter.
 */
export async function limiterHeadroom(
  redis: RedisConnection,
  accountId: string,
): Promise<number | undefined> {
  const value = await luaCommands(redis).rmLimiterHeadroom(
    limiterKeys(accountId).bottleneckSettings,
  );
  return value === null ? undefined : value;
}
