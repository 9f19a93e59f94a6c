import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { RM_PREFIX, spoolKeys } from '../redis/redis-keys.js';

/** One object as it would have been put in the bucket. */
export interface SpooledObject {
  key: string;
  body: Buffer;
  contentType: string;
  metadata: Record<string, string>;
}

/** What an entry holds: its objects, and what its writer needs to know about them (JSON). */
export interface SpoolEntry {
  objects: SpooledObject[];
  about: unknown;
}

export interface ImageSpoolOptions {
  /** Most bytes of bodies the spool holds, every entry together (RENDERMILL_SPOOL_MAX_MB). */
  maxBytes: number;
  /** How long an entry is kept. Default SPOOL_TTL_MS. */
  ttlMs?: number;
}

/** An entry is kept a day: long enough for any outage an operator would wait out. */
export const SPOOL_TTL_MS = 24 * 60 * 60_000;

/** Whether `put` kept the entry, and how full the spool is. */
export type SpoolPut =
  { kept: true; usedBytes: number } | { kept: false; usedBytes: number; maxBytes: number };

/**
 * Objects paid for that the bucket would not take, kept in Redis until it does: any worker
 * finds them there (a worker's own disk would be lost with its machine). Entries expire after
 * `ttlMs`, and the spool never holds more than `maxBytes` of bodies: an entry that would pass
 * it is refused, not squeezed in.
 */
export class ImageSpool {
  private readonly keys: ReturnType<typeof spoolKeys>;
  private readonly scripts: LuaCommands;
  readonly maxBytes: number;
  private readonly ttlMs: number;

  constructor(
    private readonly redis: RedisConnection,
    options: ImageSpoolOptions,
    prefix = RM_PREFIX,
  ) {
    this.keys = spoolKeys(prefix);
    this.scripts = luaCommands(redis);
    this.maxBytes = options.maxBytes;
    this.ttlMs = options.ttlMs ?? SPOOL_TTL_MS;
  }

  /** Keeps `entry` as `id` (replacing one of the same id) if it fits under the cap. */
  async put(id: string, entry: SpoolEntry): Promise<SpoolPut> {
    const bytes = entry.objects.reduce((sum, object) => sum + object.body.length, 0);
    const about = JSON.stringify({
      about: entry.about,
      objects: entry.objects.map(({ key, contentType, metadata }) => ({
        key,
        contentType,
        metadata,
      })),
    });
    const [kept, usedBytes] = await this.scripts.rmSpoolPut(
      this.keys.sizes,
      this.keys.expiry,
      this.keys.entry(id),
      id,
      Date.now(),
      this.ttlMs,
      this.maxBytes,
      bytes,
      about,
      ...entry.objects.map((object) => object.body),
    );
    return kept === 1
      ? { kept: true, usedBytes }
      : { kept: false, usedBytes, maxBytes: this.maxBytes };
  }

  /** The entry `id`, or undefined when there is none (never kept, removed, or expired). */
  async get(id: string): Promise<SpoolEntry | undefined> {
    const fields = await this.redis.hgetallBuffer(this.keys.entry(id));
    const raw = fields.about;
    if (!raw) return undefined;
    const { about, objects } = JSON.parse(raw.toString('utf8')) as {
      about: unknown;
      objects: Omit<SpooledObject, 'body'>[];
    };
    const bodies = objects.map((_, i) => fields[String(i)]);
    if (bodies.some((body) => body === undefined)) return undefined;
    return { about, objects: objects.map((object, i) => ({ ...object, body: bodies[i]! })) };
  }

  /** Forgets the entry `id`, freeing its room. A no-op if there is none. */
  async remove(id: string): Promise<void> {
    await this.redis
      .multi()
      .hdel(this.keys.sizes, id)
      .zrem(this.keys.expiry, id)
      .del(this.keys.entry(id))
      .exec();
  }

  /** The ids of the entries kept and not expired. */
  async entries(): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.expiry, `(${Date.now()}`, '+inf');
  }

  /** The bytes the entries kept and not expired hold. */
  async usedBytes(): Promise<number> {
    const ids = await this.entries();
    if (ids.length === 0) return 0;
    const sizes = await this.redis.hmget(this.keys.sizes, ...ids);
    return sizes.reduce((sum, size) => sum + Number(size ?? 0), 0);
  }
}
