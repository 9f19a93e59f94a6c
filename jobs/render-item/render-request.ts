import { contentHash, requestHash } from '../../src/models/request-hash.js';
import type { InputImage } from '../../src/providers/image-provider.js';
import { checkInputRef, loadInputImage } from '../../src/render/input-images.js';
import type { StoreTarget } from '../../src/render/store-images.js';
import { heldIndexTarget, type RenderAttempt } from './attempt.js';

/** What exactly the item asks for, and where its images go. */
export interface RenderRequest {
  /** The request's identity: its cache entry, its render lock, its S3 folder. */
  hash: string;
  /** An edit's input images and mask, loaded. */
  images: InputImage[];
  mask: InputImage | undefined;
  target: StoreTarget;
}

/**
 * Reads the request: refuses input keys the tenant may not use, loads the inputs (an edit's
 * hash includes their content, not only their names) and sets the item's hash, unless it
 * already had one. Throws InputImageError for an input that cannot be used.
 */
export async function readRequest(run: RenderAttempt): Promise<RenderRequest> {
  const { deps, spec, item } = run;
  // Its images are bought and wait in the spool: the inputs (read from S3, maybe) are not needed.
  if (item.spooled && item.hash) {
    return {
      hash: item.hash,
      images: [],
      mask: undefined,
      target: heldIndexTarget(run, item.hash),
    };
  }
  const ownRenders = deps.cache.scopeFolder(run.scope);
  for (const ref of [...(spec.images ?? []), ...(spec.mask ? [spec.mask] : [])]) {
    checkInputRef(ref, ownRenders);
  }
  const load = { allowPrivateUrls: deps.allowPrivateUrls };
  const images = await Promise.all(
    (spec.images ?? []).map((ref) => loadInputImage(ref, deps.storage, load)),
  );
  const mask = spec.mask ? await loadInputImage(spec.mask, deps.storage, load) : undefined;
  const hash =
    item.hash ??
    requestHash(spec, {
      images: images.map((image) => contentHash(image.data)),
      mask: mask && contentHash(mask.data),
    });
  item.hash = hash;
  return {
    hash,
    images,
    mask,
    target: heldIndexTarget(run, hash),
  };
}
