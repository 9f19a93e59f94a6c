import { TERMINAL_STATUSES } from '../../src/contracts/item-status.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import { renderItemRef } from '../../src/contracts/job-catalog.js';
import { NO_RENDER_METRICS } from '../../src/metrics/render-metrics.js';
import { microsToUsd } from '../../src/models/pricing.js';
import type { RenderItemDeps } from './attempt.js';
import { afterTransition, queueFinalizeIfComplete } from './record.js';

/**
 * When the queue gives up on a job the processor could not finish (Redis or S3 down for every
 * attempt, a worker that kept dying), the item still gets an outcome: failed, with the reason.
 * An item that already has one is left alone. If its last run died with a call under way —
 * perhaps billed — what it held is counted as spent: spend is never under-counted.
 */
export function recordGiveUp(deps: RenderItemDeps) {
  return async (data: unknown, reason: string) => {
    const ref = renderItemRef.safeParse(data);
    if (!ref.success) return; // not even an item to blame; the worker has logged the job
    const { batchId, itemId } = ref.data;
    const item = await deps.store.item(batchId, itemId);
    if (!item) return;
    if (TERMINAL_STATUSES.includes(item.status)) {
      // The outcome was recorded but queueing the manifest kept failing: do it now.
      await queueFinalizeIfComplete(deps, batchId);
      return;
    }
    // Images it left in the spool are paid for and counted in its cost: nobody will store them.
    if (item.spooled) await deps.spool.remove(item.spooled.entry).catch(() => undefined);
    const { item: charged, held } = await deps.store.chargeDeadRun(batchId, item);
    const failed: ItemRecord = {
      ...charged,
      status: 'failed',
      error: { code: 'job_failed', message: reason },
      updated_at: new Date().toISOString(),
    };
    const outcome = await deps.store.transition(batchId, failed, { spendMicros: held });
    const metrics = deps.metrics ?? NO_RENDER_METRICS;
    // The job's payload names the tenant (a payload too broken to parse was never rendered).
    const { tenant } = data as { tenant?: unknown };
    if (typeof tenant === 'string') metrics.spent(tenant, held);
    if (outcome !== 'ignored') {
      metrics.itemFinished({
        status: 'failed',
        model: charged.spec.model,
        images: { failed: charged.spec.n },
      });
    }
    deps.logger.info(
      {
        batch: batchId,
        item: itemId,
        status: 'failed',
        cost_usd: microsToUsd(held),
        error: failed.error,
      },
      'item finished',
    );
    await afterTransition(deps, batchId, outcome);
  };
}
