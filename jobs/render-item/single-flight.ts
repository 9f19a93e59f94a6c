import { AccountPausedError } from '../../src/errors.js';
import type { CachedImage } from '../../src/cache/result-cache.js';
import { missingVariants, type RenderAttempt } from './attempt.js';
import { lookUpCache } from './look-up.js';

/** What the cache gives the item, and which variants it must buy. */
export interface CacheShare {
  /** Stored variants the item reuses, by index. */
  reused: CachedImage[];
  /** The indexes of the variants nobody has stored. */
  missing: number[];
}

/** One try at the render lock, and the cache read again in the same round trip. */
export interface LockTry {
  /** Whether the lock was taken (then held in `run.lease`). */
  taken: Promise<boolean>;
  /** What the cache holds, read after the lock; with the lock, the bucket is asked too. */
  usable: Promise<Map<number, CachedImage>>;
}

/**
 * The index is read again in the same round trip as the lock is taken — after it, on the same
 * connection and Cluster slot — and, with the lock, the bucket is asked too: about to pay, the
 * bucket itself, not only the index, must lack what we buy. The last holder may have stored it
 * just before, a crashed run may have uploaded it without indexing it, a failed-over Redis may
 * have lost its entry.
 */
function tryRenderLock(run: RenderAttempt, hash: string): LockTry {
  const taken = run.deps.locks.tryAcquire(run.scope, hash).then((lease) => {
    run.lease = lease;
    return lease !== undefined;
  });
  // Either may fail before anyone awaits it (an early try waits for the item's start first):
  // whoever awaits `taken` gets its failure; the look's is the lock's, or not needed.
  taken.catch(() => undefined);
  const usable = lookUpCache(run, hash, taken);
  usable.catch(() => undefined);
  return { taken, usable };
}

/**
 * The first try at the render lock of an item whose first look at the cache missed, made
 * before the item starts running so that both go out in one round trip. Undefined when the
 * item may not need the lock; the caller releases it if the item does not start.
 */
export function earlyLockTry(run: RenderAttempt): LockTry | undefined {
  const hash = run.item.hash;
  if (!hash || !run.firstLook || run.firstLook.size >= run.spec.n) return undefined;
  return tryRenderLock(run, hash);
}

/**
 * Single-flight: while another item, batch or worker renders the same request, waits for it
 * and reuses what it stored; takes the render lock (kept in `run.lease`) when it died or
 * rendered fewer variants than this item needs — `first`, an early try, counts as the first
 * try. With the lock, the bucket itself is checked, not only the index, right before paying.
 * A shutdown ends the wait with ShutdownError.
 */
export async function takeRenderLock(
  run: RenderAttempt,
  hash: string,
  first?: LockTry,
): Promise<CacheShare> {
  const { locks } = run.deps;
  const paid = run.item.pending ?? run.item.spooled;
  if (paid) {
    // Following a queued prediction, or storing spooled images, this item paid for: the lock
    // its first run handed on, and those variants are stored whatever the cache holds meanwhile.
    if (paid.lock_token) run.lease = await locks.takeOver(run.scope, hash, paid.lock_token);
    const usable = await lookUpCache(run, hash);
    return {
      reused: [...usable.values()].filter((image) => !paid.variants.includes(image.index)),
      missing: paid.variants,
    };
  }
  let usable = run.firstLook ?? (await lookUpCache(run, hash));
  let next = first;
  while (usable.size < run.spec.n) {
    const attempt = next ?? tryRenderLock(run, hash);
    next = undefined;
    if (await attempt.taken) {
      usable = await attempt.usable;
      break;
    }
    const recheckMs = await locks.handedOn(run.scope, hash);
    if (recheckMs !== undefined) {
      // A queued prediction or a provider batch renders it, collected later: wait in the
      // queue, not in a slot, looking again as often as its holder said.
      throw new AccountPausedError(
        'the same request is being rendered by a queued prediction or a provider batch; this item waits in the queue to reuse it',
        'waiting_for_prediction',
        Date.now() + recheckMs,
      );
    }
    run.log.debug({ hash }, 'the same request is being rendered elsewhere; waiting to reuse it');
    await locks.waitForRelease(run.scope, hash, run.signal);
    usable = await lookUpCache(run, hash);
  }
  return { reused: [...usable.values()].sort(byIndex), missing: missingVariants(run, usable) };
}

/**
 * Lets items waiting on this request go on: reuse what was stored, or try themselves. Safe to
 * call again; a no-op when the run never held the lock.
 */
export async function releaseRenderLock(run: RenderAttempt): Promise<void> {
  await run.lease?.release();
}

/** How soon an item waiting for another item's queued prediction looks again. */
export const HANDED_ON_RECHECK_MS = 5_000;

export const byIndex = (a: CachedImage, b: CachedImage) => a.index - b.index;
