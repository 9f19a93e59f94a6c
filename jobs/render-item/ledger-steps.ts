import type { BatchStore, ReserveResult } from '../../src/batches/batch-store.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import type { SpendCap } from '../../src/ledger/spend-caps.js';
import { waitUnlessShutdown } from '../../src/limits/backoff.js';

// The render job's ledger steps (a dead run's hold, the item's reservation) in a file of
// their own: they are the spend ledger's rules, not the job's.

/**
 * An item still `running` when a job picks it up (a stalled job re-run, or one given up) had
 * a run that died. If that run's call was under way, the provider may have billed it: what it
 * held is charged to the item and the caller's transition adds it to the spend. If it died
 * before calling, nothing was bought, and the transition only releases the hold.
 */
export async function chargeDeadRun(
  store: BatchStore,
  batchId: string,
  item: ItemRecord,
): Promise<{ item: ItemRecord; held: number }> {
  const hold = item.status === 'running' ? await store.holdOf(batchId, item.id) : undefined;
  const held = hold?.calling ? hold.micros : 0;
  return { item: { ...item, cost_micros: item.cost_micros + held }, held };
}

/** How long an item waits for in-flight items to settle before it gives up on the budget. */
export const RESERVATION_WAIT_MS = 120_000;

/**
 * Reserves the item's maximum price against the batch's budget and every cap. When only
 * money held by other in-flight calls is in the way, waits for them to settle (they usually
 * cost less than they reserved) instead of giving up; a shutdown cuts the wait short.
 */
export async function reserveBudget(
  store: BatchStore,
  batchId: string,
  itemId: string,
  micros: number,
  caps: readonly SpendCap[],
  shutdown: AbortSignal | undefined,
): Promise<ReserveResult> {
  const deadline = Date.now() + RESERVATION_WAIT_MS;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
    const result = await store.reserve(batchId, itemId, micros, caps);
    if (result.outcome !== 'wait' || Date.now() > deadline) return result;
    await waitUnlessShutdown(pause, shutdown);
  }
}
