import type { Logger } from 'pino';
import type { BatchStore } from '../src/batches/batch-store.js';
import {
  buildManifest,
  manifestCsv,
  manifestJsonl,
  providerBatchProgress,
} from '../src/batches/batch-view.js';
import type { ProviderBatchStore } from '../src/batches/provider-batch-store.js';
import { batchEnded } from '../src/contracts/item-status.js';
import type { ImageStorage } from '../src/storage/image-storage.js';
import type { BatchWebhooks } from '../src/webhooks/batch-webhooks.js';
import type { JobPayload } from '../src/contracts/job-catalog.js';
import {
  MANIFEST_FORMATS,
  manifestKey,
  type ManifestFormat,
} from '../src/batches/manifest-files.js';

export interface FinalizeBatchDeps {
  store: BatchStore;
  storage: ImageStorage;
  logger: Logger;
  /** Queues the batch's webhook event once it has ended (none for checkpoints). */
  webhooks: Pick<BatchWebhooks, 'queueFor'>;
  /** The provider batches of batches in `provider_batch` mode, for the manifest's progress. */
  providerBatches?: ProviderBatchStore | undefined;
}

/**
 * Writes a batch's manifest to S3 — manifest.json, manifest.csv and manifest.jsonl side by
 * side — from the batch's state in Redis. Queued when the batch completes, and as a
 * checkpoint every RENDERMILL_MANIFEST_CHECKPOINT_MS while it runs (marked `partial`).
 * Nothing is kept in the process, so a restarted one simply carries on. Idempotent.
 */
export function createFinalizeBatchProcessor(deps: FinalizeBatchDeps) {
  return async function finalizeBatch({ batchId }: JobPayload<'finalize-batch'>): Promise<void> {
    let written = await writeManifest(deps, batchId);
    if (written === 'checkpoint') {
      // The batch may have completed while the checkpoint was being written, and the final
      // manifest may have been written in between and overwritten: write the final one again.
      const batch = await deps.store.get(batchId);
      if (batch && batchEnded(batch.status)) written = await writeManifest(deps, batchId);
    }
    if (written === 'final') await queueWebhook(deps, batchId);
  };
}

/**
 * Queues the ended batch's webhook event, after its manifest (the event names it). If the
 * queue cannot be reached this throws and the job is retried: the manifest is written again
 * (it is idempotent) and the event is not lost; the batch itself has ended either way.
 */
async function queueWebhook(deps: FinalizeBatchDeps, batchId: string): Promise<void> {
  const batch = await deps.store.get(batchId);
  if (!batch) return;
  const event = await deps.webhooks.queueFor(batch);
  if (event)
    deps.logger.info({ batch: batchId, event: event.id, type: event.type }, 'webhook queued');
}

/** Writes the manifest as it stands: `final` for a finished batch, else a `checkpoint`. */
async function writeManifest(
  deps: FinalizeBatchDeps,
  batchId: string,
): Promise<'final' | 'checkpoint' | 'no_batch'> {
  const batch = await deps.store.get(batchId);
  if (!batch) return 'no_batch';
  const progress = deps.providerBatches
    ? await providerBatchProgress(deps.providerBatches, batch)
    : undefined;
  const manifest = await buildManifest(
    batch,
    await deps.store.items(batchId),
    (key) => deps.storage.uri(key),
    progress,
  );
  manifest.batch.manifest_key = manifestKey(batchId, 'json');
  const bodies: Record<ManifestFormat, string> = {
    json: JSON.stringify(manifest, null, 2),
    csv: manifestCsv(manifest),
    jsonl: manifestJsonl(manifest),
  };
  for (const [format, body] of Object.entries(bodies) as [ManifestFormat, string][]) {
    await deps.storage.put({
      key: manifestKey(batchId, format),
      body,
      contentType: MANIFEST_FORMATS[format],
    });
  }
  if (manifest.partial) {
    deps.logger.info(
      { batch: batchId, counts: manifest.batch.counts, spend_usd: manifest.totals.spend_usd },
      'batch manifest checkpointed',
    );
    return 'checkpoint';
  }
  await deps.store.setManifestKey(batchId, manifestKey(batchId, 'json'));
  deps.logger.info(
    {
      batch: batchId,
      status: batch.status,
      counts: manifest.batch.counts,
      spend_usd: manifest.totals.spend_usd,
      saved_usd: manifest.totals.saved_by_cache_usd,
    },
    'batch manifest written',
  );
  return 'final';
}
