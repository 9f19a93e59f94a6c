import type { CachedImage } from '../../src/cache/result-cache.js';
import { completeHit, reusable } from '../../src/cache/reuse.js';
import { TERMINAL_STATUSES } from '../../src/contracts/item-status.js';
import type { AttemptInfo, JobPayload } from '../../src/contracts/job-catalog.js';
import {
  cancelPrediction,
  countSpent,
  itemWith,
  openAttempt,
  storeOrDropSpooled,
  type RenderAttempt,
  type RenderItemDeps,
} from './attempt.js';
import { isEnrolled, reEnrol } from './enrol.js';
import { queueFinalizeIfComplete } from './record.js';
import { finish, succeeded } from './settle.js';

/**
 * Look up: reads the item and, when its request hash is known, what the cache holds for it.
 * Returns nothing when the job has nothing left to do: the item is gone, or already has an
 * outcome (its manifest is queued if that was missed), or — the common case of a re-run
 * catalog, in two round trips — every variant is stored with its derived copies, and the
 * item is recorded `cached` at $0 with no reservation, lock or call. Otherwise returns the
 * run's state, with what a run that died mid-call held charged to the item.
 */
export async function lookUp(
  deps: RenderItemDeps,
  payload: JobPayload<'render-item'>,
  info: AttemptInfo,
): Promise<RenderAttempt | undefined> {
  const started = Date.now();
  const log = deps.logger.child({ batch: payload.batchId, item: payload.itemId });
  // With the request hash in the job, the cache is read in the same round trip as the item.
  const cached = payload.hash
    ? deps.cache.lookup(deps.cache.scopeFor(payload.tenant), payload.hash, payload.spec.n)
    : undefined;
  cached?.catch(() => undefined); // not needed if the item has nothing left to do
  const stored = await deps.store.item(payload.batchId, payload.itemId);
  if (!stored) {
    log.warn('item no longer exists; nothing to render');
    return undefined;
  }
  if (TERMINAL_STATUSES.includes(stored.status)) {
    // A job re-run after a crash: the outcome is recorded, but finalising may not have been queued.
    await queueFinalizeIfComplete(deps, payload.batchId);
    return undefined;
  }
  if (isEnrolled(stored)) {
    // Its provider batch renders it: a re-run (a crash after enrolling) only lists it again.
    await reEnrol(deps, payload.batchId, stored.id);
    return undefined;
  }
  const { item, held } = await deps.store.chargeDeadRun(payload.batchId, stored);
  const run = openAttempt(deps, payload, info, { item, heldByDeadRun: held, started, log });
  // A dead run's billed hold is spent by the `running` transition: such an item goes through
  // it even when the cache has every image.
  // An item following a queued prediction collects it, whatever the cache holds; one whose
  // images wait in the spool stores them.
  if (item.hash && held === 0 && !item.pending && !item.spooled) {
    run.firstLook =
      cached && item.hash === payload.hash
        ? reusable(await cached, run.rules)
        : await lookUpCache(run, item.hash);
    const hit = completeHit(run.firstLook, run.rules);
    if (hit) {
      await finish(run, succeeded(run, hit, hit), { spendMicros: 0 });
      return undefined;
    }
  }
  return run;
}

/**
 * The stored variants of request `hash` the item may reuse. `verify`: ask S3 about whatever
 * Redis lacks, even a miss the index vouches for (once it resolves true, when a promise).
 */
export const lookUpCache = async (
  run: RenderAttempt,
  hash: string,
  verify: boolean | Promise<boolean> = false,
): Promise<Map<number, CachedImage>> =>
  reusable(await run.deps.cache.lookup(run.scope, hash, run.spec.n, { verify }), run.rules);

/**
 * Takes the item for this run: `running`, adding what a dead run held to the spend and
 * releasing what the item had reserved. Returns false when the job ends here: another run of
 * it finished the item since it was read, or the batch is being cancelled and the item was
 * cancelled instead of starting (counted, and the manifest queued if the batch has ended).
 */
export async function startRunning(run: RenderAttempt): Promise<boolean> {
  const start = await run.deps.store.transition(run.batchId, itemWith(run, { status: 'running' }), {
    spendMicros: run.heldByDeadRun,
    releaseReservation: true,
    caps: run.caps,
  });
  countSpent(run, run.heldByDeadRun);
  if (start === 'cancelled') {
    run.metrics.itemFinished({ status: 'cancelled', model: run.spec.model, images: {} });
    // A queued prediction it was waiting for will not be collected: stop it at the provider.
    if (run.item.pending) await cancelPrediction(run, run.item.pending);
    if (run.item.spooled) await storeOrDropSpooled(run, run.item.spooled);
  }
  if (start === 'ignored' || start === 'cancelled') {
    await queueFinalizeIfComplete(run.deps, run.batchId);
    return false;
  }
  return true;
}
