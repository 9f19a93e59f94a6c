import type { Logger } from 'pino';
import type { BatchStore } from '../src/batches/batch-store.js';
import { buildManifest, manifestCsv } from '../src/batches/batch-view.js';
import type { ImageStorage } from '../src/storage/image-storage.js';
import type { JobPayload } from './catalog.js';

export interface FinalizeBatchDeps {
  store: BatchStore;
  storage: ImageStorage;
  logger: Logger;
}

export const manifestKey = (batchId: string, ext: 'json' | 'csv') =>
  `batches/${batchId}/manifest.${ext}`;

/**
 * Writes a completed batch's manifest to S3 (manifest.json and manifest.csv beside it) and
 * records where it is. Idempotent: running it twice writes the same content twice.
 */
export function createFinalizeBatchProcessor(deps: FinalizeBatchDeps) {
  return async function finalizeBatch({ batchId }: JobPayload<'finalize-batch'>): Promise<void> {
    const batch = await deps.store.get(batchId);
    if (!batch) return;
    const manifest = await buildManifest(batch, await deps.store.items(batchId), (key) =>
      deps.storage.uri(key),
    );
    manifest.batch.manifest_key = manifestKey(batchId, 'json');
    await deps.storage.put({
      key: manifestKey(batchId, 'json'),
      body: JSON.stringify(manifest, null, 2),
      contentType: 'application/json',
    });
    await deps.storage.put({
      key: manifestKey(batchId, 'csv'),
      body: manifestCsv(manifest),
      contentType: 'text/csv',
    });
    await deps.store.setManifestKey(batchId, manifestKey(batchId, 'json'));
    deps.logger.info(
      {
        batch: batchId,
        status: batch.status,
        counts: manifest.batch.counts,
        spend_usd: manifest.batch.spend_usd,
      },
      'batch manifest written',
    );
  };
}
