import pRetry from 'p-retry';
import { SOURCE_RENDERED_AT, type CachedImage, type ResultCache } from '../cache/result-cache.js';
import { type DerivedImage } from '../contracts/batch-records.js';
import type { Micros } from '../models/pricing.js';
import { CONTENT_TYPES } from '../models/render-spec.js';
import type { RenderedImage } from '../providers/image-provider.js';
import type { ImageStorage } from '../storage/image-storage.js';
import { deriveImage } from './derive-images.js';
import {
  DERIVED_CONTENT_TYPES,
  derivationName,
  type DeriveSpec,
} from '../contracts/derive-spec.js';

/** Uploads are retried on the spot: the images are paid for, and a retry of the job would buy them again. */
const UPLOAD_RETRIES = 3;

export interface StoreTarget {
  storage: ImageStorage;
  cache: ResultCache;
  scope: string;
  hash: string;
}

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
 * Stores freshly rendered images as the variants `indexes` of the request, with their derived
 * copies, and indexes them in the cache. Each image is uploaded before the index names it,
 * so the index never points at nothing.
 */
export async function storeRendered(
  target: StoreTarget,
  images: readonly RenderedImage[],
  indexes: readonly number[],
  bought: { paidMicros: Micros; model: string },
  derive: readonly DeriveSpec[],
): Promise<CachedImage[]> {
  const { paidMicros, model } = bought;
  const renderedAt = Date.now();
  const stored: CachedImage[] = [];
  for (const [i, image] of images.entries()) {
    const index = indexes[i] ?? indexes.length + i;
    // Whole micro-dollars per image; the first takes the remainder so the parts add up.
    const share = Math.floor(paidMicros / images.length);
    const cost = share + (i === 0 ? paidMicros - share * images.length : 0);
    const key = target.cache.imageKey(target.scope, target.hash, index, image.format);
    const entry = { cost_micros: cost, rendered_at: renderedAt, model };
    await upload(
      target.storage,
      key,
      image.data,
      CONTENT_TYPES[image.format],
      target.cache.objectMetadata(target.hash, entry),
    );
    stored.push({
      index,
      key,
      format: image.format,
      bytes: image.data.length,
      ...entry,
      derived: await storeDerived(
        target,
        { index, key, rendered_at: renderedAt },
        image.data,
        derive,
        [],
      ),
    });
  }
  await target.cache.record(target.scope, target.hash, stored);
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
  await target.cache.record(target.scope, target.hash, updated);
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
