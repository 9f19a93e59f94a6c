import type { TransitionOutcome } from '../../src/batches/batch-store.js';
import type { CachedImage } from '../../src/cache/result-cache.js';
import { renderedByCache, savedBy, storedImage } from '../../src/cache/reuse.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import { costSoFar, countSpent, itemWith, type RenderAttempt } from './attempt.js';
import { record } from './record.js';

/**
 * Settle: records `next` (the item's outcome) in one transition that adds `spendMicros` to
 * the spend — the provider's actual price, or what it took for an unusable result — counts
 * what the item saved, and releases whatever it still had reserved. From then on the run is
 * `settled`: its outcome and money are never recorded again. Returns the transition's outcome
 * (`ignored` when another run of the job recorded the item first).
 */
export async function settle(
  run: RenderAttempt,
  next: ItemRecord,
  money: { spendMicros?: number },
): Promise<TransitionOutcome> {
  const outcome = await run.deps.store.transition(run.batchId, next, {
    ...money,
    savedMicros: next.saved_micros,
    caps: run.caps,
  });
  run.settled = true; // from here on the outcome and its money are recorded: never again
  countSpent(run, money.spendMicros);
  return outcome;
}

/** Ends the item with `next`: settles it, then records the outcome (see `settle`, `record`). */
export async function finish(
  run: RenderAttempt,
  next: ItemRecord,
  money: { spendMicros?: number },
  derivedCopies = 0,
): Promise<void> {
  const outcome = await settle(run, next, money);
  await record(run, next, outcome, derivedCopies);
}

/**
 * The outcome of an item that has all its images (`images`, in order), `reused` of them from
 * the cache: `cached` when no provider call was made for it, `succeeded` otherwise, priced at
 * what this and earlier runs paid, with what reuse saved.
 */
export const succeeded = (
  run: RenderAttempt,
  images: CachedImage[],
  reused: CachedImage[],
): ItemRecord =>
  itemWith(run, {
    status: reused.length === images.length ? 'cached' : 'succeeded',
    hash: run.item.hash,
    // A reused image was rendered by the model recorded with it (a fallback's, maybe).
    rendered_by: run.item.rendered_by ?? renderedByCache(reused[0]),
    cost_micros: costSoFar(run),
    saved_micros: savedBy(reused),
    images: images.map((image) => storedImage(image, reused.includes(image))),
    error: undefined,
  });
