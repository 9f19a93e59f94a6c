import type { TransitionOutcome } from '../../src/batches/batch-store.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import { batchEnded } from '../../src/contracts/item-status.js';
import { microsToUsd } from '../../src/models/pricing.js';
import type { RenderAttempt, RenderItemDeps } from './attempt.js';

/**
 * Record: once `next` is settled, counts the item's outcome and its images (unless another
 * run of the job recorded it first), logs it, and queues the manifest's writing when the
 * transition completed the batch or made a checkpoint due. A failure here comes after the
 * outcome is settled: the job's retry only redoes the queueing.
 */
export async function record(
  run: RenderAttempt,
  next: ItemRecord,
  outcome: TransitionOutcome,
  derivedCopies = 0,
): Promise<void> {
  // `ignored`: another run of the job recorded the item's outcome, and counted it.
  if (outcome !== 'ignored') {
    run.metrics.itemFinished({
      status: next.status,
      model: run.spec.model,
      images: imageOutcomes(next, run.spec.n, derivedCopies),
    });
  }
  run.log.info(
    {
      status: next.status,
      model: run.spec.model,
      n: run.spec.n,
      cost_usd: microsToUsd(next.cost_micros),
      saved_usd: microsToUsd(next.saved_micros ?? 0),
      ms: Date.now() - run.started,
      attempt: run.attempt,
      error: next.error,
    },
    'item finished',
  );
  await afterTransition(run.deps, run.batchId, outcome);
}

/**
 * What became of a finished item's images: bought or reused when it succeeded (with the
 * copies this run made), all of them undelivered when it failed. An item stopped by its
 * budget or a cancellation failed no image: items_total says what happened to it.
 */
export function imageOutcomes(item: ItemRecord, n: number, derivedCopies: number) {
  if (item.status === 'failed') return { failed: n };
  if (item.status !== 'succeeded' && item.status !== 'cached') return {};
  const cached = item.images.filter((image) => image.cached).length;
  return { rendered: item.images.length - cached, cached, derived: derivedCopies };
}

/** Queues the manifest's writing when a transition completed the batch or made a checkpoint due. */
export async function afterTransition(
  deps: Pick<RenderItemDeps, 'queue'>,
  batchId: string,
  outcome: TransitionOutcome,
) {
  if (outcome === 'batch_completed') await queueFinalize(deps, batchId);
  if (outcome === 'checkpoint_due') {
    await deps.queue.add('finalize-batch', { batchId }, `checkpoint-${batchId}-${Date.now()}`);
  }
}

async function queueFinalize(deps: Pick<RenderItemDeps, 'queue'>, batchId: string) {
  await deps.queue.add('finalize-batch', { batchId }, `finalize-${batchId}`);
}

/**
 * Queues the manifest's writing if the batch has ended without one: for a job that finds its
 * item's outcome already recorded, the queueing may be what its last run did not get to.
 */
export async function queueFinalizeIfComplete(
  deps: Pick<RenderItemDeps, 'store' | 'queue'>,
  batchId: string,
) {
  const batch = await deps.store.get(batchId);
  if (batch && batchEnded(batch.status) && !batch.manifest_key) await queueFinalize(deps, batchId);
}
