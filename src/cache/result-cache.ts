import type { Redis } from 'ioredis';
import type { Micros } from '../models/pricing.js';
import { contentHash } from '../models/request-hash.js';
import type { ImageStorage } from '../storage/image-storage.js';

/** A smaller copy of a rendered image, made with sharp at no provider cost. */
export interface DerivedImage {
  /** What was asked, e.g. `128px.webp`: the identity of a derivation. */
  name: string;
  key: string;
  bytes: number;
}

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

/**
 * The result cache: request hash → its rendered images. The images themselves live in S3 at
 * addresses derived from the hash, so they are the source of truth; Redis holds an index that
 * answers a lookup in one round trip. If Redis loses the index (flushed, failed over, a new
 * instance), a lookup that misses there lists the hash's S3 folder and repairs the index: a
 * lost index costs an S3 request, never a provider call.
 */
export class ResultCache {
  constructor(
    private readonly redis: Redis,
    private readonly storage: ImageStorage,
    private readonly mode: CacheScopeMode,
    private readonly prefix = 'rm',
  ) {}

  /** Whose renders a tenant's requests may reuse, as a path segment. */
  scopeFor(tenant: string): string {
    // Hashed: tenant names stay out of object keys, and any name makes a safe path segment.
    return this.mode === 'global' ? 'shared' : `t-${contentHash(tenant).slice(0, 16)}`;
  }

  /** The S3 folder of a request's images. Content-addressed: the same request, the same folder. */
  folder(scope: string, hash: string): string {
    return `images/${scope}/${hash.slice(0, 2)}/${hash}/`;
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
    return `${this.prefix}:cache:{${scope}:${hash}}`;
  }

  /**
   * The stored variants among 0 … want-1, by index. Redis first; if any is missing there,
   * S3 is asked as well (the index may have been lost) and what it has is indexed again.
   */
  async lookup(scope: string, hash: string, want: number): Promise<Map<number, CachedImage>> {
    const found = parseIndex(await this.redis.hgetall(this.indexKey(scope, hash)));
    if (countBelow(found, want) === want) return found;
    const fromS3 = await this.scanStorage(scope, hash, found);
    if (fromS3.length > 0) await this.record(scope, hash, fromS3);
    for (const image of fromS3) found.set(image.index, image);
    return found;
  }

  /** Indexes rendered (or re-derived) variants. Replaces what was indexed for those indexes. */
  async record(scope: string, hash: string, images: readonly CachedImage[]): Promise<void> {
    if (images.length === 0) return;
    const fields = images.flatMap((image) => [String(image.index), JSON.stringify(image)]);
    await this.redis.hset(this.indexKey(scope, hash), ...fields);
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
      images.push({
        index,
        key,
        format: key.slice(key.lastIndexOf('.') + 1).replace('jpg', 'jpeg'),
        bytes: head.bytes ?? 0,
        cost_micros: Number(head.metadata[META.cost] ?? 0),
        rendered_at: Number(head.metadata[META.renderedAt] ?? 0),
        model: head.metadata[META.model],
        derived: await Promise.all(
          (derived.get(index) ?? []).map(async (copyKey) => ({
            name: copyKey.slice(folder.length + String(index).length + 1),
            key: copyKey,
            bytes: (await this.storage.head(copyKey))?.bytes ?? 0,
          })),
        ),
      });
    }
    return images;
  }
}

/** Object keys use the usual file extensions: `jpg` for JPEG. */
export const extension = (format: string) => (format === 'jpeg' ? 'jpg' : format);

function parseIndex(raw: Record<string, string>): Map<number, CachedImage> {
  const found = new Map<number, CachedImage>();
  for (const value of Object.values(raw)) {
    const image = JSON.parse(value) as CachedImage;
    found.set(image.index, image);
  }
  return found;
}

const countBelow = (found: Map<number, CachedImage>, want: number) =>
  [...found.keys()].filter((index) => index < want).length;
