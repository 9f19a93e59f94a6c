import { BatchStore } from '../batches/batch-store.js';
import { type ItemRecord, type ItemTally } from '../contracts/batch-records.js';
import type { RendermillMetrics } from '../metrics/rendermill-metrics.js';

/**
 * The batch store, counting the items a submission settles from the cache. A re-run catalog
 * completes at submission — no job ever runs for those items — so the render job cannot count
 * them; the store sees them staged, and counts them once their batch is published (a refused
 * submission's staged items are discarded, and never counted).
 */
export class CountingBatchStore extends BatchStore {
  /** Per batch being submitted: model → cached items and images, until it is published. */
  private readonly staged = new Map<string, Map<string, { items: number; images: number }>>();

  constructor(
    redis: ConstructorParameters<typeof BatchStore>[0],
    options: ConstructorParameters<typeof BatchStore>[1],
    private readonly metrics: RendermillMetrics,
  ) {
    super(redis, options);
  }

  override async stageItems(batchId: string, items: readonly ItemRecord[]): Promise<void> {
    await super.stageItems(batchId, items);
    for (const item of items) {
      if (item.status !== 'cached') continue;
      const byModel = this.staged.get(batchId) ?? new Map();
      this.staged.set(batchId, byModel);
      const counts = byModel.get(item.spec.model) ?? { items: 0, images: 0 };
      counts.items += 1;
      counts.images += item.images.length;
      byModel.set(item.spec.model, counts);
    }
  }

  override async discardStaged(batchId: string): Promise<void> {
    this.staged.delete(batchId);
    await super.discardStaged(batchId);
  }

  override async publish(
    batch: Parameters<BatchStore['publish']>[0],
    tally: ItemTally,
  ): Promise<void> {
    const cached = this.staged.get(batch.id);
    this.staged.delete(batch.id);
    await super.publish(batch, tally);
    for (const [model, { items, images }] of cached ?? []) {
      this.metrics.cachedAtSubmission(model, items, images);
    }
  }
}
