import type { BatchedRender, ItemRecord } from '../../src/contracts/batch-records.js';
import type { RenderAttempt, RenderItemDeps } from './attempt.js';
import { itemWith } from './attempt.js';
import { queueFinalizeIfComplete } from './record.js';
import type { Purchase } from './reserve.js';

/**
 * How long the render lock of an enrolled item is kept for the provider batch that renders it:
 * its 24 h window and an hour to store the results. Identical items wait in the queue meanwhile
 * instead of buying the same image; the lock lapses by itself if the batch is abandoned.
 */
const PROVIDER_BATCH_LOCK_MS = 25 * 3600_000;

/**
 * Enrol: instead of calling a route now, the item joins its batch's next provider batch. It
 * stays `running`, holding the batch price `purchase` reserved, with `batched` saying which
 * route's Batch API renders which variants; its render lock is handed on for the batch's
 * window; the batch's provider-batch job (jobs/provider-batch.ts) gathers, submits, follows
 * and stores it. The item is recorded before it is listed, and a run that finds it recorded
 * lists it again (`reEnrol`): a crash between the two loses nothing.
 */
export async function enrol(
  run: RenderAttempt,
  purchase: Purchase,
  missing: readonly number[],
): Promise<void> {
  const batched: BatchedRender = {
    route: purchase.primary.route.name,
    model: purchase.primary.model.id,
    variants: [...missing],
    held_micros: purchase.heldMicros,
    lock_token: run.lease?.token,
    enrolled_at: Date.now(),
  };
  const outcome = await run.deps.store.transition(
    run.batchId,
    itemWith(run, { status: 'running', batched }),
    {},
  );
  run.settled = true;
  if (outcome === 'cancelled') {
    // Its batch is being cancelled: the item was cancelled instead, its hold released.
    run.metrics.itemFinished({ status: 'cancelled', model: run.spec.model, images: {} });
    await queueFinalizeIfComplete(run.deps, run.batchId);
    return;
  }
  // Identical items look again as often as the provider batch is looked at: not every 5 s for a day.
  await run.lease?.handOff(PROVIDER_BATCH_LOCK_MS, run.deps.providerBatchPollMs ?? 60_000);
  await reEnrol(run.deps, run.batchId, run.itemId);
  run.log.debug(
    { route: batched.route, variants: batched.variants },
    'enrolled in a provider batch',
  );
}

/**
 * Lists an enrolled item among those waiting for its batch's next provider batch and makes
 * sure the batch's provider-batch job exists. Harmless when it is listed or in a part already.
 */
export async function reEnrol(
  deps: Pick<RenderItemDeps, 'providerBatches' | 'queue'>,
  batchId: string,
  itemId: string,
): Promise<void> {
  if (!deps.providerBatches) {
    throw new Error('this worker was started without provider batches; cannot enrol the item');
  }
  await deps.providerBatches.enrol(batchId, itemId);
  await deps.queue.add('provider-batch', { batchId }, providerBatchJobId(batchId));
}

/** One provider-batch job per rendermill batch: it lives until the batch has ended. */
export const providerBatchJobId = (batchId: string) => `provider-batch-${batchId}`;

/** Whether the item waits for a provider batch (its job then has nothing to do). */
export const isEnrolled = (item: ItemRecord) => item.status === 'running' && !!item.batched;
