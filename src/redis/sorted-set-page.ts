import type { RedisConnection } from './redis-connection.js';

/**
 * Up to `count` members of a sorted set that follow `cursor` (a member), in score order or,
 * with `newestFirst`, in reverse; from the first member when `cursor` is undefined. Undefined
 * when `cursor` is not a member: a cursor from another list, or one deleted meanwhile. The
 * cursor pages of `GET /v1/batches` and `GET /v1/schedules` both stand on it.
 */
export async function sortedSetPage(
  redis: RedisConnection,
  key: string,
  cursor: string | undefined,
  count: number,
  order: { newestFirst: boolean },
): Promise<string[] | undefined> {
  let start = 0;
  if (cursor) {
    const rank = order.newestFirst
      ? await redis.zrevrank(key, cursor)
      : await redis.zrank(key, cursor);
    if (rank === null) return undefined;
    start = rank + 1;
  }
  const end = start + count - 1;
  return order.newestFirst
    ? redis.zrevrange(key, start, end)
    : redis.zrange(key, String(start), String(end));
}
