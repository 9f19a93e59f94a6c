import type { ProviderBatchPart } from '../../src/batches/provider-batch-store.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import { isEnrolled } from '../render-item/enrol.js';
import { afterTransition } from '../render-item/record.js';
import { batchRoute, releaseItemLock, type Conductor } from './context.js';
import { applyState, partMetadata, queueOwner } from './submit.js';

/**
 * Ends items enrolled but never sent to the provider: `cancelled` when their batch was
 * cancelled, `failed` when rendermill gave up on the batch's provider batches. Nothing was
 * bought: what each held is released.
 */
export async function cancelWaiting(
  conductor: Conductor,
  itemIds: readonly string[],
  why: 'cancelled' | 'gave_up' = 'cancelled',
): Promise<void> {
  const { store, parts } = conductor.deps;
  const items = await store.itemsById(conductor.batch.id, itemIds);
  for (const item of items) {
    if (!item || !isEnrolled(item)) continue;
    await endItem(conductor, item, 0, why === 'cancelled' ? CANCELLED : NEVER_SENT);
  }
  await parts.unenrol(conductor.batch.id, itemIds);
}

/**
 * Ends parts nobody will follow: a cancelled batch's parts never submitted, or every open part
 * when the job gives up for good (the provider or Redis away for an hour). A part whose
 * creation's answer was lost may exist at the provider: if it is found it is recorded and, for a
 * cancelled batch, followed (cancelled there) like any other. Items of a part the provider has
 * have their hold counted as spent — it may bill them — and fail saying so.
 */
export async function giveUpParts(
  conductor: Conductor,
  open: readonly ProviderBatchPart[],
): Promise<void> {
  const { store, parts } = conductor.deps;
  const batchId = conductor.batch.id;
  const cancelling = conductor.batch.status === 'cancelling';
  for (const part of open) {
    const api = batchRoute(conductor, part.route)?.batch?.api;
    if (!part.batch_id && part.file_id && api) {
      const found = await api.findBatch(partMetadata(batchId, part)).catch(() => undefined);
      if (found) {
        part.batch_id = found.id;
        applyState(part, found);
        await parts.save(batchId, part);
        if (cancelling) continue;
      }
    }
    const items = await store.itemsById(batchId, part.items);
    for (const item of items) {
      if (!item || !isEnrolled(item)) continue;
      if (!part.batch_id) {
        await endItem(conductor, item, 0, cancelling ? CANCELLED : NEVER_SENT);
        continue;
      }
      const held = await store.chargeHold(batchId, item.id);
      await endItem(conductor, item, held, {
        status: 'failed',
        code: 'provider_batch_abandoned',
        message: `rendermill stopped following provider batch ${part.batch_id}; what the item held is counted as spent, since the provider may still bill it`,
      });
    }
    part.status = 'stored';
    part.times.stored = Date.now();
    await parts.save(batchId, part);
    await parts.setEnqueued(part.route, part.model, queueOwner(batchId, part), 0);
  }
}

interface Ending {
  status: 'cancelled' | 'failed';
  code: string;
  message: string;
}

const CANCELLED: Ending = {
  status: 'cancelled',
  code: 'cancelled',
  message: 'the batch was cancelled before its provider batch was submitted',
};

const NEVER_SENT: Ending = {
  status: 'failed',
  code: 'provider_batch_abandoned',
  message: 'rendermill gave up submitting this item’s provider batch; nothing was bought',
};

/** Ends an enrolled item, `spent` added to its cost, its lock released and its hold too. */
async function endItem(
  conductor: Conductor,
  item: ItemRecord,
  spent: number,
  ending: Ending,
): Promise<void> {
  const { deps, batch } = conductor;
  const next: ItemRecord = {
    ...item,
    status: ending.status,
    batched: undefined,
    cost_micros: item.cost_micros + spent,
    error: { code: ending.code, message: ending.message },
    updated_at: new Date().toISOString(),
  };
  await releaseItemLock(conductor, item);
  // The hold charged (if any) is on the spend already: the transition adds nothing more.
  const outcome = await deps.store.transition(batch.id, next, {
    caps: deps.caps.for(batch.tenant),
    onlyFrom: 'running',
  });
  if (outcome === 'ignored') return;
  conductor.metrics.spent(batch.tenant, spent);
  conductor.metrics.itemFinished({ status: ending.status, model: item.spec.model, images: {} });
  await afterTransition(deps, batch.id, outcome);
}
