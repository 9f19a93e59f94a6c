import { HttpError } from '../api/http-errors.js';
import type { JobQueue } from '../queue/job-queue.js';
import type { BatchRecord, BatchStore } from './batch-store.js';
import { batchEnded } from './item-status.js';

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
  if (batchEnded(batch.status)) {
    throw new HttpError(409, 'batch_ended', `batch ${batch.id} is already ${batch.status}`);
  }
  await deps.store.markCancelling(batch.id, new Date().toISOString());
  let ended = false;
  for await (const chunk of deps.store.scanItems(batch.id)) {
    const queued = chunk.filter((item) => item.status === 'queued');
    const outcomes = await Promise.all(
      queued.map((item) => deps.store.cancelQueuedItem(batch.id, item)),
    );
    if (outcomes.includes('batch_completed')) ended = true;
    // Best effort: a job left behind finds its item cancelled and ends at once.
    await deps.queue.removeWaiting(
      'render-item',
      queued.map((item) => `${batch.id}-${item.index}`),
    );
  }
  if (ended) await deps.queue.add('finalize-batch', { batchId: batch.id }, `finalize-${batch.id}`);
  const after = await deps.store.get(batch.id);
  if (!after) throw new Error(`batch ${batch.id} vanished while it was cancelled`);
  return after;
}
