import type { StoredImage } from '../contracts/batch-records.js';
import { derivationName, type DeriveSpec } from '../contracts/derive-spec.js';
import type { CachedImage } from './result-cache.js';

/** What an item may reuse of a request's stored variants, and what makes it complete. */
export interface ReuseRules {
  /** The item's n: variants 0 … n-1. */
  n: number;
  /** Renders older than this (ms since epoch) are not reused: the batch asked `refresh`. */
  reuseAfter?: number | undefined;
  derive: readonly DeriveSpec[];
}

/** The stored variants the item may reuse, by index. */
export function reusable(found: Map<number, CachedImage>, rules: ReuseRules) {
  const usable = new Map<number, CachedImage>();
  for (const [index, image] of found) {
    if (index < rules.n && image.rendered_at >= (rules.reuseAfter ?? 0)) usable.set(index, image);
  }
  return usable;
}

/** Every variant stored with every copy asked: the item needs nothing made, its images in order. */
export function completeHit(
  usable: Map<number, CachedImage>,
  rules: ReuseRules,
): CachedImage[] | undefined {
  if (usable.size < rules.n) return undefined;
  const images = [...usable.values()].sort((a, b) => a.index - b.index);
  const copies = rules.derive.map(derivationName);
  const allCopies = images.every((image) =>
    copies.every((name) => image.derived.some((copy) => copy.name === name)),
  );
  return allCopies ? images : undefined;
}

/** A cache entry as an item's image; `cached` says whether the item reused it. */
export const storedImage = (image: CachedImage, cached: boolean): StoredImage => ({
  key: image.key,
  format: image.format,
  bytes: image.bytes,
  derived: image.derived.length > 0 ? image.derived : undefined,
  cached,
});

/** Who made a reused image, for the manifest: the cache, and the model recorded with it. */
export const renderedByCache = (image: CachedImage | undefined) =>
  image?.model ? { provider: 'cache', model: image.model } : undefined;

/** What reusing these images saved: the price they were bought at. */
export const savedBy = (images: readonly CachedImage[]) =>
  images.reduce((sum, image) => sum + image.cost_micros, 0);
