import type { CachedImage } from '../src/cache/result-cache.js';
import type { AttemptInfo, JobHandler, JobPayload } from '../src/contracts/job-catalog.js';
import { completeDerivations } from '../src/render/store-images.js';
import { indexHeld, type RenderAttempt, type RenderItemDeps } from './render-item/attempt.js';
import { callAndStore } from './render-item/call-and-store.js';
import { enrol } from './render-item/enrol.js';
import { recordGiveUp } from './render-item/give-up.js';
import { lookUp, startRunning } from './render-item/look-up.js';
import { record } from './render-item/record.js';
import { readRequest } from './render-item/render-request.js';
import { dropEarlyHold, reserve, reserveEarly, resumePurchase } from './render-item/reserve.js';
import { settleFailure } from './render-item/settle-failure.js';
import { storeFromSpool } from './render-item/spooled.js';
import { settle, succeeded } from './render-item/settle.js';
import {
  byIndex,
  earlyLockTry,
  releaseRenderLock,
  takeRenderLock,
  type LockTry,
} from './render-item/single-flight.js';

export type { RenderItemDeps } from './render-item/attempt.js';

/**
 * Renders one item, paying for each image at most once:
 * cache (every variant stored? done, $0) → single-flight (someone else rendering it? wait and
 * reuse) → reserve the chosen route's price against every cap (for a miss, sent with the
 * item's start and kept unless it waits on another renderer) → in `provider_batch` mode,
 * enrol the item in its batch's provider batch (jobs/provider-batch.ts renders it) — else
 * call the provider for the
 * missing variants (rate-limited, retried, other routes) — or follow the queued prediction the
 * item already started → upload to S3 (or, when S3 will not take them, keep them in the spool
 * and come back to upload them from there) and index → settle the actual
 * price and record the outcome. Each step's failure has one meaning: retryable errors leave
 * the item queued for the next attempt, everything else ends the item with a reason. Every
 * transition after `running` releases what the item reserved; what the provider billed is
 * always added to the spend. The steps share one state per run (render-item/attempt.ts).
 */
export function createRenderItemProcessor(deps: RenderItemDeps) {
  return async function renderItem(
    payload: JobPayload<'render-item'>,
    info: AttemptInfo,
  ): Promise<void> {
    const run = await lookUp(deps, payload, info);
    if (!run) return;
    // A miss tries the render lock and reserves its price in the round trip that starts the
    // item running: the start first, as it releases whatever the item held before.
    const lockTry = earlyLockTry(run);
    const starting = startRunning(run);
    let early = lockTry && reserveEarly(run);
    const started = await starting.catch(async (error: unknown) => {
      await letGo(run, lockTry);
      throw error;
    });
    if (!started) return letGo(run, lockTry);
    try {
      // The lock is held in run.lease from here, released below whatever happens. Without it,
      // the item waits for the request's renderer holding no budget: that renderer's own
      // reservation may be waiting for it.
      if ((await lockTry?.taken) === false) {
        await dropEarlyHold(run, early);
        early = undefined;
      }
      const request = await readRequest(run);
      const { reused, missing } = await takeRenderLock(run, request.hash, lockTry);
      let rendered: CachedImage[] = [];
      // A queued prediction the item started is collected, never bought again; from here on
      // the item's records carry it only if it is still running (settle-failure.ts).
      const pending = run.item.pending;
      run.item.pending = undefined;
      if (run.item.spooled) {
        rendered = await storeFromSpool(run, request);
      } else if (missing.length > 0 && run.mode === 'provider_batch' && !pending) {
        const purchase = await reserve(run, missing, 'provider_batch');
        if (purchase) await enrol(run, purchase, missing);
        return; // the provider batch renders it, or the budget could not hold it (recorded)
      } else if (missing.length > 0) {
        const purchase = pending
          ? resumePurchase(run, missing, pending)
          : await reserve(run, missing, 'realtime', early);
        if (!purchase) return; // the budget cannot hold it: recorded as budget_exceeded
        rendered = await callAndStore(run, request, purchase, missing, pending);
      }
      // Reused images get the derived copies the batch asks for and they lack.
      const complete = await completeDerivations(request.target, reused, run.rules.derive);
      const next = succeeded(run, [...complete, ...rendered].sort(byIndex), complete);
      // The new images are indexed, the waiters let go and the item settled in one round trip,
      // in that order. An index write or a release that fails changes nothing for this item:
      // the images are in the bucket, the lock lapses by itself.
      const indexed = indexHeld(run).catch((error: unknown) => unindexedWarning(run, error));
      const released = releaseRenderLock(run).catch(() => undefined);
      const outcome = await settle(run, next, { spendMicros: run.paidMicros });
      await Promise.all([indexed, released]);
      const derivedCopies = derivedCount(rendered) + derivedCount(complete) - derivedCount(reused);
      await record(run, next, outcome, derivedCopies);
    } catch (error) {
      await settleFailure(run, error);
    } finally {
      // Whatever happened, what was stored is indexed and items waiting on this request may go
      // on: reuse, or try themselves — unless a queued prediction is still running for it (its
      // lock was handed on).
      await indexHeld(run).catch((error: unknown) => unindexedWarning(run, error));
      await releaseRenderLock(run).catch(() => undefined); // it lapses by itself if Redis is away
    }
  };
}

/**
 * Releases the render lock an early try took for an item that did not start running (its early
 * reservation held nothing: reserve.lua holds only for a running item).
 */
async function letGo(run: RenderAttempt, lockTry: LockTry | undefined): Promise<void> {
  if (!lockTry) return;
  await lockTry.taken.catch(() => false);
  await releaseRenderLock(run).catch(() => undefined);
}

/** Stored images the index does not name: the next run with the render lock finds them in the bucket. */
const unindexedWarning = (run: RenderAttempt, error: unknown) =>
  run.log.warn(
    { err: (error as Error).message },
    'stored images could not be indexed; a later request finds them in the bucket',
  );

/** Derived copies the images carry. */
const derivedCount = (images: readonly CachedImage[]) =>
  images.reduce((sum, image) => sum + image.derived.length, 0);

/** The render-item job as workers run it: the processor, and what happens if it never finishes. */
export function createRenderItemHandler(deps: RenderItemDeps): JobHandler<'render-item'> {
  return { process: createRenderItemProcessor(deps), onGiveUp: recordGiveUp(deps) };
}
