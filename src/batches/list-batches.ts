import { z } from 'zod';
import { pageQueryFields } from '../contracts/page-query.js';
import { RequestValidationError } from '../errors.js';
import type { BatchStore } from './batch-store.js';
import { batchView, providerBatchProgress, type BatchView } from './batch-view.js';
import type { ProviderBatchStore } from './provider-batch-store.js';
import { BATCH_STATUSES } from '../contracts/item-status.js';

export const listBatchesQuery = z
  .object({
    ...pageQueryFields('Batches', 20),
    status: z.enum(BATCH_STATUSES).optional(),
    schedule_id: z.string().max(100).optional().describe('Only the batches a schedule created.'),
  })
  .strict();

export type ListBatchesQuery = z.infer<typeof listBatchesQuery>;

/** A filtered page reads at most this many batches, then hands back a cursor to go on from. */
const MAX_SCANNED_PER_PAGE = 2_000;

/**
 * A page of the tenant's batches, newest first. `next_cursor` is null on the last page. With
 * `providerBatches`, provider_batch batches show their provider batches' progress.
 */
export async function listBatches(
  store: BatchStore,
  tenant: string,
  query: ListBatchesQuery,
  providerBatches?: ProviderBatchStore,
): Promise<{ data: BatchView[]; next_cursor: string | null }> {
  const data: BatchView[] = [];
  let cursor = query.cursor;
  let scanned = 0;
  const filtered = query.status !== undefined || query.schedule_id !== undefined;
  while (data.length < query.limit && scanned < MAX_SCANNED_PER_PAGE) {
    const ids = await store.pageOfIds(tenant, cursor, filtered ? 100 : query.limit - data.length);
    if (!ids)
      throw new RequestValidationError(
        `cursor ${cursor} is not one of your batches`,
        'cursor',
        'invalid_cursor',
      );
    if (ids.length === 0) return { data, next_cursor: null };
    const batches = await Promise.all(ids.map((id) => store.get(id)));
    for (const [i, batch] of batches.entries()) {
      scanned += 1;
      cursor = ids[i];
      if (!batch) continue;
      if (query.status && batch.status !== query.status) continue;
      if (query.schedule_id && batch.schedule_id !== query.schedule_id) continue;
      const progress = providerBatches && (await providerBatchProgress(providerBatches, batch));
      data.push(batchView(batch, progress));
      if (data.length === query.limit) break;
    }
  }
  const more = await store.pageOfIds(tenant, cursor, 1);
  return { data, next_cursor: more && more.length > 0 ? (cursor ?? null) : null };
}
