import type { RoutingStrategy } from '../../src/config/route-kinds.js';
import type { ProviderBatchPart } from '../../src/batches/provider-batch-store.js';
import { reusable, savedBy, storedImage } from '../../src/cache/reuse.js';
import type { CachedImage } from '../../src/cache/result-cache.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import type { ProviderBatchState } from '../../src/providers/openai-batch-api.js';
import { afterTransition, imageOutcomes } from '../render-item/record.js';
import { releaseItemLock, type Conductor } from './context.js';

/** What the result lines of one item brought: images stored, money paid, errors. */
export interface LineOutcomes {
  stored: CachedImage[];
  paidMicros: number;
  errors: { code: string; message: string }[];
  /** Lines read for it, in either file. */
  seen: number;
}

/**
 * Settles one item of an ended part in one transition, adding what its lines cost to the
 * spend and releasing the batch price it held:
 * - every variant stored → `succeeded` (with the variants the cache gave it, if any);
 * - a line failed → `failed` with the provider's reason (what other lines cost still spent);
 * - no line reached it → `cancelled` (the batch was cancelled), `queued` again for a realtime
 *   render (an expired provider batch and `on_expiry: realtime`), or `failed` saying why.
 * Only an item still `running` moves: a run that died after settling it changes nothing. Its
 * render lock is released first, and the manifest queued when the batch is complete.
 */
export async function settleBatchedItem(
  conductor: Conductor,
  item: ItemRecord,
  part: ProviderBatchPart,
  state: ProviderBatchState | undefined,
  lines: LineOutcomes | undefined,
): Promise<void> {
  const { deps, batch } = conductor;
  const paid = lines?.paidMicros ?? 0;
  const next = await outcomeOf(conductor, item, part, state, lines);
  // The lock first: its images are stored (or there are none to wait for), and a run that died
  // between the two must not leave identical items waiting out the lock's 25 h.
  await releaseItemLock(conductor, item);
  const outcome = await deps.store.transition(batch.id, next, {
    spendMicros: paid,
    savedMicros: next.saved_micros,
    caps: deps.caps.for(batch.tenant),
    onlyFrom: 'running',
  });
  if (outcome === 'ignored') return;
  conductor.metrics.spent(batch.tenant, paid);
  const status = outcome === 'cancelled' ? 'cancelled' : next.status;
  if (status !== 'queued') {
    conductor.metrics.itemFinished({
      status,
      model: item.spec.model,
      images: imageOutcomes({ ...next, status }, item.spec.n, 0),
    });
  }
  if (status === 'queued') await queueRealtime(conductor, next);
  await afterTransition(deps, batch.id, outcome);
}

/** The item's next record, from what its lines brought and how the part ended. */
async function outcomeOf(
  conductor: Conductor,
  item: ItemRecord,
  part: ProviderBatchPart,
  state: ProviderBatchState | undefined,
  lines: LineOutcomes | undefined,
): Promise<ItemRecord> {
  const batched = item.batched!;
  const stored = lines?.stored ?? [];
  const base: ItemRecord = {
    ...item,
    batched: undefined,
    cost_micros: item.cost_micros + (lines?.paidMicros ?? 0),
    updated_at: new Date().toISOString(),
  };
  const storedVariants = new Set(stored.map((image) => image.index));
  if (batched.variants.every((variant) => storedVariants.has(variant))) {
    const reused = await reusedVariants(conductor, item);
    const images = [...reused, ...stored].sort((a, b) => a.index - b.index);
    return {
      ...base,
      status: 'succeeded',
      images: images.map((image) => storedImage(image, reused.includes(image))),
      saved_micros: savedBy(reused),
      rendered_by: {
        provider: part.route,
        kind: 'openai',
        model: batched.model,
        provider_batch: part.batch_id,
      },
      error: undefined,
    };
  }
  const failure = lines?.errors[0];
  if (failure) return { ...base, status: 'failed', error: failure };
  const ended = state?.status ?? part.status;
  if (ended === 'cancelled') {
    return {
      ...base,
      status: 'cancelled',
      error: {
        code: 'cancelled',
        message: 'the batch was cancelled before the provider rendered this item',
      },
    };
  }
  if (ended === 'expired') {
    const realtime = conductor.batch.on_expiry === 'realtime';
    return {
      ...base,
      status: realtime ? 'queued' : 'failed',
      error: {
        code: 'provider_batch_expired',
        message: realtime
          ? 'the provider batch expired before rendering this item; it is rendered realtime instead'
          : 'the provider batch expired (its 24 h window ended) before rendering this item; submit it again, or use on_expiry: realtime',
      },
    };
  }
  return {
    ...base,
    status: 'failed',
    error: {
      code: 'provider_batch_failed',
      message:
        ended === 'failed'
          ? `the provider failed the whole batch: ${part.error ?? 'no reason given'}`
          : 'the provider batch ended without a result for this item',
    },
  };
}

/** The variants the item did not enrol for: the cache gave them when it was looked at. */
async function reusedVariants(conductor: Conductor, item: ItemRecord): Promise<CachedImage[]> {
  const batched = item.batched!;
  if (batched.variants.length === item.spec.n || !item.hash) return [];
  const { cache } = conductor.deps;
  const found = await cache.lookup(cache.scopeFor(conductor.batch.tenant), item.hash, item.spec.n);
  const rules = { n: item.spec.n, reuseAfter: item.reuse_after, derive: item.derive ?? [] };
  return [...reusable(found, rules).values()].filter(
    (image) => !batched.variants.includes(image.index),
  );
}

/**
 * Queues a realtime render of an item its expired provider batch never reached. Harmless if
 * queued already (the job id is fixed): a run that died after moving the item queues it again.
 */
export async function queueRealtime(conductor: Conductor, item: ItemRecord): Promise<void> {
  const { batch } = conductor;
  await conductor.deps.queue.add(
    'render-item',
    {
      batchId: batch.id,
      itemId: item.id,
      tenant: batch.tenant,
      spec: item.spec,
      routing: batch.routing as RoutingStrategy | undefined,
    },
    `${batch.id}-${item.index}-realtime`,
  );
}
