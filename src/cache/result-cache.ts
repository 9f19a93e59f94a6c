import type { DerivedImage } from '../contracts/batch-records.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { RM_PREFIX, cacheKeys } from '../redis/redis-keys.js';
import type { Micros } from '../models/pricing.js';
import { contentHash } from '../models/request-hash.js';
import type { ImageStorage } from '../storage/image-storage.js';

/** One variant of a rendered request, as the cache keeps it. */
export interface CachedImage {
  /** The variant's index within the request's images (0 … n-1). */
  index: number;
  key: string;
  format: string;
  bytes: number;
  /** What the provider was paid for this image: what a later hit saves. */
  cost_micros: Micros;
  /** When it was rendered (ms since epoch): a `refresh` batch reuses only newer renders. */
  rendered_at: number;
  /** The model that rendered it: the requested one, or a fallback's own. */
  model?: string | undefined;
  derived: DerivedImage[];
}

/** Where a request's images are shared: one tenant's, or everyone's (RENDERMILL_CACHE_SCOPE). */
export type CacheScopeMode = 'tenant' | 'global';

/** S3 user metadata that lets the cache be rebuilt from the bucket alone. */
const META = {
  cost: 'cost-micros',
  renderedAt: 'rendered-at',
  hash: 'request-hash',
  model: 'model',
} as const;

/** S3 metadata of a derived copy: the `rendered-at` of the original it was made from. */
export const SOURCE_RENDERED_AT = 'source-rendered-at';

/** Index field marking a request whose images are in S3 but not yet indexed (after a rebuild). */
const IN_STORAGE = 's3';

/** How long a rebuild holds its lock if its process dies: far longer than any bucket listing. */
const REBUILD_LOCK_SECONDS = 3600;

/**
 * The result cache: request hash → its rendered images. The images themselves live in S3 at
 * addresses derived from the hash, so they are the source of truth; Redis holds an index that
 * answers a lookup in one round trip.
 *
 * The index vouches for itself with an epoch key, written once the index is known complete.
 * While it is there, a miss in Redis is a miss. When it is gone — Redis flushed, failed over
 * to an empty replica, a new instance — every miss lists the hash's S3 folder (and re-indexes
 * what it finds) while one process lists the whole bucket, marks each request found there,
 * and writes the epoch again. A lost index costs S3 requests, never a provider call.
 */
export class ResultCache {
  private readonly scripts: LuaCommands;
  private readonly keys: ReturnType<typeof cacheKeys>;

  constructor(
    private readonly redis: RedisConnection,
    private readonly storage: ImageStorage,
    private readonly mode: CacheScopeMode,
    prefix = RM_PREFIX,
  ) {
    this.scripts = luaCommands(redis);
    this.keys = cacheKeys(prefix);
  }

  /** Whose renders a tenant's requests may reuse, as a path segment. */
  scopeFor(tenant: string): string {
    // Hashed: tenant names stay out of object keys, and any name makes a safe path segment.
    return this.mode === 'global' ? 'shared' : `t-${contentHash(tenant).slice(0, 16)}`;
  }

  /** The S3 folder of a request's images. Content-addressed: the same request, the same folder. */
  folder(scope: string, hash: string): string {
    return `${this.scopeFolder(scope)}${hash.slice(0, 2)}/${hash}/`;
  }

  /** Every render of a scope lives under this prefix. */
  scopeFolder(scope: string): string {
    return `images/${scope}/`;
  }

  imageKey(scope: string, hash: string, index: number, format: string): string {
    return `${this.folder(scope, hash)}${index}.${extension(format)}`;
  }

  derivedKey(scope: string, hash: string, index: number, name: string): string {
    return `${this.folder(scope, hash)}${index}-${name}`;
  }

  /** The S3 metadata an image must be stored with, so a lookup can find it without Redis. */
  objectMetadata(
    hash: string,
    image: Pick<CachedImage, 'cost_micros' | 'rendered_at' | 'model'>,
  ): Record<string, string> {
    return {
      [META.hash]: hash,
      [META.cost]: String(image.cost_micros),
      [META.renderedAt]: String(image.rendered_at),
      ...(image.model ? { [META.model]: image.model } : {}),
    };
  }

  private indexKey(scope: string, hash: string) {
    return this.keys.index(scope, hash);
  }

  private get epochKey() {
    return this.keys.epoch;
  }

  /**
   * The stored variants among 0 … want-1, by index. Redis first; if any is missing there and
   * the index cannot vouch for the miss, S3 is asked as well and what it has is indexed again.
   * `verify`: ask S3 about a miss even when the index vouches for it. It may be a promise — a
   * render lock being taken in the same round trip as the index is read — and S3 is asked only
   * if it comes true.
   */
  async lookup(
    scope: string,
    hash: string,
    want: number,
    options: { verify?: boolean | Promise<boolean> } = {},
  ): Promise<Map<number, CachedImage>> {
    const key = this.indexKey(scope, hash);
    const [raw, trusted] = await Promise.all([this.redis.hgetall(key), this.indexTrusted()]);
    const found = parseIndex(raw);
    if (countBelow(found, want) === want) return found;
    if (trusted && raw[IN_STORAGE] === undefined && !(await options.verify)) return found;
    const fromS3 = await this.scanStorage(scope, hash, found);
    if (fromS3.length > 0) await this.record(scope, hash, fromS3);
    if (raw[IN_STORAGE] !== undefined) await this.redis.hdel(key, IN_STORAGE);
    for (const image of fromS3) found.set(image.index, image);
    return found;
  }

  /**
   * What the index holds for many requests at once, without asking S3: enough to settle, at
   * submission, the items whose every image is indexed. The rest go to workers, which also
   * ask S3.
   */
  async indexed(
    scope: string,
    hashes: readonly string[],
  ): Promise<Map<string, Map<number, CachedImage>>> {
    const unique = [...new Set(hashes)];
    // One command per request (each is its own Cluster slot), batched into few writes by the
    // connection's auto-pipelining.
    const raws = await Promise.all(
      unique.map((hash) => this.redis.hgetall(this.indexKey(scope, hash))),
    );
    return new Map(unique.map((hash, i) => [hash, parseIndex(raws[i]!)]));
  }

  /** Indexes rendered (or re-derived) variants. Replaces what was indexed for those indexes. */
  async record(scope: string, hash: string, images: readonly CachedImage[]): Promise<void> {
    if (images.length === 0) return;
    const fields = images.flatMap((image) => [String(image.index), JSON.stringify(image)]);
    await this.redis.hset(this.indexKey(scope, hash), ...fields);
  }

  private rebuilding: Promise<void> | undefined;

  /** Whether the index is complete; if it is not, starts rebuilding it (once per process). */
  private async indexTrusted(): Promise<boolean> {
    if ((await this.redis.exists(this.epochKey)) === 1) return true;
    this.rebuilding ??= this.rebuildIndex()
      .catch(() => undefined) // tried again on the next lookup; misses ask S3 meanwhile
      .finally(() => (this.rebuilding = undefined));
    return false;
  }

  /**
   * Lists every image in the bucket and marks each request found there, so a lookup of it
   * asks S3; then vouches for the index. One process at a time does it (a Redis lock).
   * Images stored meanwhile are indexed by whoever stored them.
   */
  async rebuildIndex(): Promise<void> {
    const lock = this.keys.rebuildLock; // same slot as the epoch
    const token = contentHash(`${process.pid}:${Date.now()}:${Math.random()}`);
    if ((await this.redis.set(lock, token, 'EX', REBUILD_LOCK_SECONDS, 'NX')) !== 'OK') return;
    try {
      const requests = new Set<string>();
      for (const key of await this.storage.list('images/')) {
        const folder = /^images\/([^/]+)\/[0-9a-f]{2}\/([0-9a-f]{64})\//.exec(key);
        if (folder) requests.add(this.indexKey(folder[1]!, folder[2]!));
      }
      const keys = [...requests];
      // One command per key (each request is its own Cluster slot), a thousand in flight.
      for (let i = 0; i < keys.length; i += 1000) {
        await Promise.all(
          keys.slice(i, i + 1000).map((key) => this.redis.hset(key, IN_STORAGE, '1')),
        );
      }
      // Only if the lock is still ours: a flush during the rebuild lost the marks written so
      // far (and the lock), and the index must not vouch for itself on their behalf.
      await this.scripts.rmCompareAndSet(lock, this.epochKey, token, new Date().toISOString());
    } finally {
      await this.scripts.rmCompareAndDelete(lock, token);
    }
  }

  /** Rebuilds index entries from the hash's S3 folder, for variants Redis does not know. */
  private async scanStorage(
    scope: string,
    hash: string,
    known: Map<number, CachedImage>,
  ): Promise<CachedImage[]> {
    const folder = this.folder(scope, hash);
    const keys = await this.storage.list(folder);
    if (keys.length === 0) return [];
    const originals = new Map<number, string>();
    const derived = new Map<number, string[]>();
    for (const key of keys) {
      const name = key.slice(folder.length);
      const original = /^(\d+)\.(\w+)$/.exec(name);
      const copy = /^(\d+)-(.+)$/.exec(name);
      if (original) originals.set(Number(original[1]), key);
      else if (copy) derived.set(Number(copy[1]), [...(derived.get(Number(copy[1])) ?? []), key]);
    }
    const images: CachedImage[] = [];
    for (const [index, key] of originals) {
      if (known.has(index)) continue;
      const head = await this.storage.head(key);
      // Written by something else, or half-written: not ours to reuse.
      if (!head || head.metadata[META.hash] !== hash) continue;
      const renderedAt = head.metadata[META.renderedAt] ?? '0';
      const copies: DerivedImage[] = [];
      for (const copyKey of derived.get(index) ?? []) {
        const copy = await this.storage.head(copyKey);
        // A copy of an earlier render of this variant (since replaced by `refresh`) is stale.
        if (copy?.metadata[SOURCE_RENDERED_AT] !== renderedAt) continue;
        const name = copyKey.slice(folder.length + String(index).length + 1);
        copies.push({ name, key: copyKey, bytes: copy.bytes ?? 0 });
      }
      images.push({
        index,
        key,
        format: key.slice(key.lastIndexOf('.') + 1).replace('jpg', 'jpeg'),
        bytes: head.bytes ?? 0,
        cost_micros: Number(head.metadata[META.cost] ?? 0),
        rendered_at: Number(renderedAt),
        model: head.metadata[META.model],
        derived: copies,
      });
    }
    return images;
  }
}

/** Object keys use the usual file extensions: `jpg` for JPEG. */
export const extension = (format: string) => (format === 'jpeg' ? 'jpg' : format);

function parseIndex(raw: Record<string, string>): Map<number, CachedImage> {
  const found = new Map<number, CachedImage>();
  for (const [field, value] of Object.entries(raw)) {
    if (field === IN_STORAGE) continue;
    const image = JSON.parse(value) as CachedImage;
    found.set(image.index, image);
  }
  return found;
}

const countBelow = (found: Map<number, CachedImage>, want: number) =>
  [...found.keys()].filter((index) => index < want).length;
