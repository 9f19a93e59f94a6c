import type { CachedImage } from '../../src/cache/result-cache.js';
import type { SpooledRender } from '../../src/contracts/batch-records.js';
import { ImagesSpooledError, PaidImagesLostError } from '../../src/errors.js';
import { microsToUsd } from '../../src/models/pricing.js';
import { spoolRecheckMs, storeSpooled } from '../../src/render/store-images.js';
import { spoolSlot, type RenderAttempt } from './attempt.js';
import { lookUpCache } from './look-up.js';
import type { RenderRequest } from './render-request.js';

/**
 * Stores the images the item paid for and left in the spool (`item.spooled`), as the variants
 * they are, with their derived copies, and indexes them: no provider is called. Throws the
 * bucket's error while S3 still refuses them (settle-failure.ts hands the job back again, see
 * `waitOnSpooled`), and PaidImagesLostError if they are neither in the spool nor in the bucket
 * any more: the item fails with their price counted, rather than buying them again.
 */
export async function storeFromSpool(
  run: RenderAttempt,
  request: RenderRequest,
): Promise<CachedImage[]> {
  const spooled = run.item.spooled!;
  const slot = { ...spoolSlot(run), entry: spooled.entry };
  const stored =
    (await storeSpooled(request.target, slot, run.rules.derive)) ??
    (await storedBefore(run, request.hash, spooled));
  run.item.spooled = undefined;
  run.log.info(
    { entry: spooled.entry, tries: spooled.tries, since: spooled.since },
    'spooled images stored',
  );
  return stored;
}

/**
 * The spooled images' entry is gone: a run that stored them may have died before recording
 * the item — then the bucket has them — or it expired before S3 came back.
 */
async function storedBefore(
  run: RenderAttempt,
  hash: string,
  spooled: SpooledRender,
): Promise<CachedImage[]> {
  const usable = await lookUpCache(run, hash, true);
  const found = spooled.variants.map((index) => usable.get(index));
  if (found.every((image) => image !== undefined)) return found;
  run.item.spooled = undefined; // nothing left to come back for
  throw new PaidImagesLostError(
    `the image(s) this item paid for waited in the spool for S3 since ${spooled.since} and ` +
      `expired there before S3 took them: their price, $${microsToUsd(run.item.cost_micros)}, ` +
      'stays counted as spent and they are not bought again',
    'spool_expired',
  );
}

/**
 * The run came back for spooled images and `error` (S3 or Redis still away, a shutdown)
 * stopped it before they were stored: they wait on, one try more, with a longer wait.
 */
export function waitOnSpooled(
  run: RenderAttempt,
  spooled: SpooledRender,
  error: unknown,
): ImagesSpooledError {
  const tries = spooled.tries + 1;
  run.spooled = { ...spooled, tries, lock_token: run.lease?.token ?? spooled.lock_token };
  return new ImagesSpooledError(
    `the paid images still wait in the spool for S3 (try ${tries}: ${(error as Error).message})`,
    Date.now() + spoolRecheckMs(tries),
  );
}
