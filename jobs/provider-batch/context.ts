import type { Logger } from 'pino';
import type { BatchStore } from '../../src/batches/batch-store.js';
import type { ProviderBatchStore } from '../../src/batches/provider-batch-store.js';
import type { RenderLocks } from '../../src/cache/render-lock.js';
import type { ResultCache } from '../../src/cache/result-cache.js';
import type { ProviderBatchSettings } from '../../src/config/config.js';
import type { BatchRecord, ItemRecord } from '../../src/contracts/batch-records.js';
import type { SpendCaps } from '../../src/ledger/spend-caps.js';
import { NO_RENDER_METRICS, type RenderMetrics } from '../../src/metrics/render-metrics.js';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import { pricedRequest } from '../../src/models/pricing.js';
import type { ProviderRoute } from '../../src/providers/provider-route.js';
import type { JobQueue } from '../../src/queue/job-queue.js';
import { batchCandidatesFor, type Candidate } from '../../src/render/route-candidates.js';
import type { ImageStorage } from '../../src/storage/image-storage.js';

export interface ProviderBatchDeps {
  store: BatchStore;
  parts: ProviderBatchStore;
  storage: ImageStorage;
  cache: ResultCache;
  locks: RenderLocks;
  caps: SpendCaps;
  routes: readonly ProviderRoute[];
  registry: ModelRegistry;
  queue: JobQueue;
  logger: Logger;
  settings: ProviderBatchSettings;
  metrics?: RenderMetrics | undefined;
}

/** One run of a batch's provider-batch job: the batch as read at its start. */
export interface Conductor {
  readonly deps: ProviderBatchDeps;
  readonly batch: BatchRecord;
  readonly log: Logger;
  readonly metrics: RenderMetrics;
}

export function openConductor(deps: ProviderBatchDeps, batch: BatchRecord): Conductor {
  return {
    deps,
    batch,
    log: deps.logger.child({ batch: batch.id, job: 'provider-batch' }),
    metrics: deps.metrics ?? NO_RENDER_METRICS,
  };
}

/**
 * Releases the render lock an enrolled item's render job handed on to its provider batch, so
 * identical items waiting for it go on (and reuse what was stored).
 */
export async function releaseItemLock(conductor: Conductor, item: ItemRecord): Promise<void> {
  const token = item.batched?.lock_token;
  if (!item.hash || !token) return;
  const { cache, locks } = conductor.deps;
  const scope = cache.scopeFor(conductor.batch.tenant);
  await (await locks.takeOver(scope, item.hash, token))?.release();
}

/** The route named `name` if it still offers a Batch API. */
export const batchRoute = (conductor: Conductor, name: string) =>
  conductor.deps.routes.find((route) => route.name === name && route.batch);

/**
 * How one variant of the item is bought on its route's Batch API: the model's remote id and the
 * batch price (undefined if the route no longer offers it).
 */
export function lineCandidate(
  conductor: Conductor,
  item: ItemRecord,
  route: string,
): Candidate | undefined {
  const { routes, registry } = conductor.deps;
  const one = { ...item.spec, n: 1 };
  return batchCandidatesFor(
    routes.filter((r) => r.name === route),
    one,
    pricedRequest(one),
    registry,
  )[0];
}

/** A stable id per item and variant: what the provider's result lines are matched back by. */
export const customIdOf = (item: ItemRecord, variant: number) => `item-${item.index}-v${variant}`;

/** The item index and variant a result line is for, or undefined if it is none of ours. */
export function parseCustomId(customId: string): { index: number; variant: number } | undefined {
  const match = /^item-(\d+)-v(\d+)$/.exec(customId);
  return match ? { index: Number(match[1]), variant: Number(match[2]) } : undefined;
}
