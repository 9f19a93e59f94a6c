import pRetry from 'p-retry';
import { SOURCE_RENDERED_AT, type CachedImage, type ResultCache } from '../cache/result-cache.js';
import { type DerivedImage } from '../contracts/batch-records.js';
import { CONTENT_TYPES } from '../models/render-spec.js';
import type { RenderedImage } from '../providers/image-provider.js';
import { ImagesSpooledError, PaidImagesLostError } from '../errors.js';
import { microsToUsd, type Micros } from '../models/pricing.js';
import type { ImageStorage } from '../storage/image-storage.js';
import type { ImageSpool, SpooledObject } from '../storage/image-spool.js';
import { deriveImage } from './derive-images.js';
import {
  DERIVED_CONTENT_TYPES,
  derivationName,
  type DeriveSpec,
} from '../contracts/derive-spec.js';

/**
 * Uploads are retried on the spot: the images are paid for, and a storage hiccup usually passes
 * in a second. Past these, they wait in the spool.
 */
const UPLOAD_RETRIES = 3;

export interface StoreTarget {
  storage: ImageStorage;
  cache: ResultCache;
  scope: string;
  hash: string;
  /**
   * Indexes stored images; by default the cache's record, awaited. A render job holds them
   * back to index them in the round trip that settles the item (jobs/render-item.ts).
   */
  index?: (images: readonly CachedImage[]) => Promise<void>;
}

/** Names stored images in the cache index, once they are all in the bucket. */
const indexStored = (target: StoreTarget, images: readonly CachedImage[]) =>
  target.index ? target.index(images) : target.cache.record(target.scope, target.hash, images);

const upload = (
  storage: ImageStorage,
  key: string,
  body: Buffer,
  contentType: string,
  metadata?: Record<string, string>,
) =>
  pRetry(() => storage.put({ key, body, contentType, metadata }), {
    retries: UPLOAD_RETRIES,
    minTimeout: 200,
  });

/**
 * Where paid images wait, as entry `entry`, when the bucket will not take them even after the
 * uploads' retries (image-spool.ts).
 */
export interface SpoolSlot {
  spool: ImageSpool;
  entry: string;
}

/** A paid image ready to be stored: its object, and what the cache index records of it. */
interface PaidImage {
  index: number;
  format: string;
  object: SpooledObject;
  entry: Pick<CachedImage, 'cost_micros' | 'rendered_at' | 'model'>;
}

/**
 * Stores freshly rendered images as the variants `indexes` of the request, with their derived
 * copies, and indexes them in the cache. Each image is uploaded before the index names it,
 * so the index never points at nothing. When the uploads give up, the images go to `spooled`'s
 * spool and ImagesSpooledError says when to try again (`storeSpooled`); when the spool has no
 * room for them, PaidImagesLostError: they are paid for and cannot be kept.
 */
export async function storeRendered(
  target: StoreTarget,
  images: readonly RenderedImage[],
  indexes: readonly number[],
  bought: { paidMicros: Micros; model: string },
  derive: readonly DeriveSpec[],
  spooled?: SpoolSlot,
): Promise<CachedImage[]> {
  const { paidMicros, model } = bought;
  const renderedAt = Date.now();
  const paid = images.map((image, i): PaidImage => {
    const index = indexes[i] ?? indexes.length + i;
    // Whole micro-dollars per image; the first takes the remainder so the parts add up.
    const share = Math.floor(paidMicros / images.length);
    const cost = share + (i === 0 ? paidMicros - share * images.length : 0);
    const entry = { cost_micros: cost, rendered_at: renderedAt, model };
    return {
      index,
      format: image.format,
      entry,
      object: {
        key: target.cache.imageKey(target.scope, target.hash, index, image.format),
        body: image.data,
        contentType: CONTENT_TYPES[image.format],
        metadata: target.cache.objectMetadata(target.hash, entry),
      },
    };
  });
  try {
    return await storePaid(target, paid, derive);
  } catch (error) {
    if (!spooled) throw error;
    await spool(spooled, paid, paidMicros, error);
    throw new ImagesSpooledError(
      `S3 did not take the ${paid.length} paid image(s) after ${UPLOAD_RETRIES} retries ` +
        `(${(error as Error).message}); they wait in the spool, uploaded when S3 is back`,
      Date.now() + spoolRecheckMs(1),
    );
  }
}

/**
 * Stores the images spooled as `slot.entry` as `storeRendered` would have (derived copies made
 * from them here), indexes them (or hands them to `target.index`, which may write later: the
 * bucket has them either way), and frees their room in the spool. Undefined when there is
 * no such entry: stored and freed by a run that died before it recorded the item, or expired.
 * Throws the bucket's error while it still refuses them: the entry is kept.
 */
export async function storeSpooled(
  target: StoreTarget,
  slot: SpoolSlot,
  derive: readonly DeriveSpec[],
): Promise<CachedImage[] | undefined> {
  const found = await slot.spool.get(slot.entry);
  if (!found) return undefined;
  const about = found.about as SpooledAbout;
  const paid = found.objects.map((object, i): PaidImage => {
    const { index, format, entry } = about.images[i]!;
    return { index, format, entry, object };
  });
  const stored = await storePaid(target, paid, derive);
  await slot.spool.remove(slot.entry);
  return stored;
}

/**
 * How long a spooled item waits before its `tries`-th upload round (the first one failed
 * inline): 5 s, doubling, at most a minute.
 */
export const spoolRecheckMs = (tries: number) =>
  Math.min(SPOOL_RECHECK_FIRST_MS * 2 ** Math.max(0, tries - 1), SPOOL_RECHECK_MAX_MS);

const SPOOL_RECHECK_FIRST_MS = 5_000;
const SPOOL_RECHECK_MAX_MS = 60_000;

/** What a spool entry says of its images, beside their objects (same order). */
interface SpooledAbout {
  images: Pick<PaidImage, 'index' | 'format' | 'entry'>[];
}

/**
 * Keeps the paid images in the spool; PaidImagesLostError when it has no room for them (the
 * money is spent all the same: the item fails rather than buying them again).
 */
async function spool(
  slot: SpoolSlot,
  paid: readonly PaidImage[],
  paidMicros: Micros,
  uploadError: unknown,
): Promise<void> {
  const about: SpooledAbout = {
    images: paid.map(({ index, format, entry }) => ({ index, format, entry })),
  };
  const put = await slot.spool.put(slot.entry, { objects: paid.map((p) => p.object), about });
  if (put.kept) return;
  const bytes = paid.reduce((sum, p) => sum + p.object.body.length, 0);
  throw new PaidImagesLostError(
    `S3 did not take the paid image(s) (${(uploadError as Error).message}) and the spool ` +
      `that keeps them until it does is full (${mib(put.usedBytes)} of ${mib(put.maxBytes)} MiB ` +
      `used, ${mib(bytes)} MiB more needed): they are lost; their price, ` +
      `$${microsToUsd(paidMicros)}, stays counted as spent and they are not bought again`,
    'spool_full',
  );
}

const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);

/** Uploads paid images and their derived copies, then indexes them in the cache. */
async function storePaid(
  target: StoreTarget,
  paid: readonly PaidImage[],
  derive: readonly DeriveSpec[],
): Promise<CachedImage[]> {
  const stored: CachedImage[] = [];
  for (const { index, format, entry, object } of paid) {
    await upload(target.storage, object.key, object.body, object.contentType, object.metadata);
    stored.push({
      index,
      key: object.key,
      format,
      bytes: object.body.length,
      ...entry,
      derived: await storeDerived(
        target,
        { index, key: object.key, rendered_at: entry.rendered_at },
        object.body,
        derive,
        [],
      ),
    });
  }
  await indexStored(target, stored);
  return stored;
}

/**
 * Makes the derived copies that reused images lack (a batch may ask for sizes an earlier one
 * did not), from the originals in S3, and indexes them. Images with every copy are untouched.
 */
export async function completeDerivations(
  target: StoreTarget,
  images: readonly CachedImage[],
  derive: readonly DeriveSpec[],
): Promise<CachedImage[]> {
  if (derive.length === 0) return [...images];
  const updated: CachedImage[] = [];
  const result: CachedImage[] = [];
  for (const image of images) {
    const lacking = derive.filter((d) => !image.derived.some((c) => c.name === derivationName(d)));
    if (lacking.length === 0) {
      result.push(image);
      continue;
    }
    const original = await target.storage.get(image.key);
    if (!original) throw new Error(`cached image ${image.key} vanished from the bucket`);
    const derived = await storeDerived(target, image, original.body, lacking, image.derived);
    const next = { ...image, derived };
    updated.push(next);
    result.push(next);
  }
  await indexStored(target, updated);
  return result;
}

async function storeDerived(
  target: StoreTarget,
  from: Pick<CachedImage, 'index' | 'key' | 'rendered_at'>,
  original: Buffer,
  derive: readonly DeriveSpec[],
  existing: readonly DerivedImage[],
): Promise<DerivedImage[]> {
  const derived = [...existing];
  for (const spec of derive) {
    const name = derivationName(spec);
    const key = target.cache.derivedKey(target.scope, target.hash, from.index, name);
    const data = await deriveImage(original, spec);
    await upload(target.storage, key, data, DERIVED_CONTENT_TYPES[spec.format], {
      'derived-from': from.key,
      // Which render it was made from: a copy of an image `refresh` replaced is not reused.
      [SOURCE_RENDERED_AT]: String(from.rendered_at),
    });
    derived.push({ name, key, bytes: data.length });
  }
  return derived;
}
