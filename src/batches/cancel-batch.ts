import { ConflictError } from '../errors.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { BatchStore } from './batch-store.js';
import type { BatchRecord } from '../contracts/batch-records.js';
import { batchEnded } from '../contracts/item-status.js';

/**
 * Cancels a batch: items still queued become `cancelled` (releasing anything they held
 * reserved) and their jobs leave the queue; items a worker has started finish, since their
 * provider call may already be paid for. The batch is `cancelling` until they have, then
 * `cancelled`, and its manifest is written. Cancelling twice is harmless.
 */
export async function cancelBatch(
  deps: { store: BatchStore; queue: JobQueue },
  batch: BatchRecord,
): Promise<BatchRecord> {
  const ended = (status: string) =>
    new ConflictError(`batch ${batch.id} is already ${status}`, 'batch_ended');
  if (batchEnded(batch.status)) throw ended(batch.status);
  // From here on no item of the batch starts, goes back to the queue or calls the provider:
  // each of those moves finds the batch `cancelling` and cancels the item instead.
  if (!(await deps.store.markCancelling(batch.id, new Date().toISOString()))) {
    throw ended((await deps.store.get(batch.id))?.status ?? 'gone');
  }
  let lastItemCancelled = false;
  for await (const chunk of deps.store.scanItems(batch.id)) {
    const queued = chunk.filter((item) => item.status === 'queued');
    const outcomes = await Promise.all(
      queued.map((item) => deps.store.cancelQueuedItem(batch.id, item)),
    );
    if (outcomes.includes('batch_completed')) lastItemCancelled = true;
    // Best effort: a job left behind finds its item cancelled and ends at once.
    await deps.queue.removeWaiting(
      'render-item',
      queued.map((item) => `${batch.id}-${item.index}`),
    );
  }
  if (lastItemCancelled)
    await deps.queue.add('finalize-batch', { batchId: batch.id }, `finalize-${batch.id}`);
  const after = await deps.store.get(batch.id);
  if (!after) throw new Error(`batch ${batch.id} vanished while it was cancelled`);
  return after;
}
