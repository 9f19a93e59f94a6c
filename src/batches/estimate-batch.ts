import {
  actualCostMicros,
  maxCostMicros,
  microsToUsd,
  pricedRequest,
  usdToMicros,
} from '../models/pricing.js';
import type { FieldProblem } from '../errors.js';
import type { BatchSource } from './batch-source.js';
import { resolveItems } from './resolve-items.js';
import type { SubmitBatchDeps } from './submit-batch.js';

/** What a batch would cost, and how long it would take, before it is submitted. */
export interface BatchEstimate {
  items: number;
  /** Items the cache already holds entirely: $0, no provider call. */
  items_cached: number;
  items_to_render: number;
  images_to_render: number;
  /** The most it can cost: what its reservations would hold. */
  max_usd: number;
  /** What it usually costs: per-token models at the registry's typical tokens per image. */
  typical_usd: number;
  /** What the cached items' images were bought at. */
  saved_usd: number;
  budget_usd: number | null;
  /** Whether the budget holds the maximum: every item renders whatever the prices turn out to be. */
  fits_budget: boolean | null;
  /** The model's images-per-minute limit the time is worked out from (null when the batch mixes models). */
  images_per_minute: number | null;
  /**
   * The least time the renders can take under that limit (images ÷ limit). The provider's
   * latency adds to it for small batches; other batches sharing the account slow it down.
   */
  eta_seconds: number | null;
  /** Rows skipped (`on_invalid: skip`), with the first problems. */
  rejected: { count: number; rows: FieldProblem[] };
}

/**
 * Prices a batch without submitting it: the same validation, the same cache lookups (so a
 * re-run catalog estimates at $0), the registry's prices for the rest. Prices are the
 * requested model's; a fallback with a dearer model may cost more. Items the index cannot
 * answer at once (edits, whose hash needs their input images) are priced as renders.
 */
export async function estimateFromSource(
  deps: SubmitBatchDeps,
  tenant: string,
  source: BatchSource,
): Promise<BatchEstimate> {
  // Checked as submission checks it: an estimate that passes promises the submission will.
  if (source.options.webhook_url) await deps.checkWebhookUrl?.(source.options.webhook_url);
  let max = 0;
  let typical = 0;
  let saved = 0;
  let images = 0;
  const imagesByModel = new Map<string, number>();
  let cached = 0;
  const resolved = await resolveItems(
    deps,
    tenant,
    source,
    deps.now?.() ?? new Date(),
    async (items) => {
      for (const item of items) {
        if (item.status === 'cached') {
          cached += 1;
          saved += item.saved_micros ?? 0;
          continue;
        }
        // resolveItems checked the model against the registry: it is there.
        const model = deps.registry.get(item.spec.model)!;
        const priced = pricedRequest(item.spec);
        max += maxCostMicros(model, priced);
        typical += actualCostMicros(model, priced, undefined);
        images += item.spec.n;
        imagesByModel.set(model.id, (imagesByModel.get(model.id) ?? 0) + item.spec.n);
      }
    },
  );
  const { budget_usd } = source.options;
  const budget = budget_usd === undefined ? undefined : usdToMicros(budget_usd);
  // Models have limits of their own: the time is the sum of each model's images at its rate.
  const limits = [...imagesByModel].map(([model, count]) => ({
    count,
    perMinute: deps.imagesPerMinute?.(model),
  }));
  const known = limits.every((l) => l.perMinute !== undefined);
  const minutes = limits.reduce((sum, l) => sum + l.count / (l.perMinute ?? Infinity), 0);
  const perMinute = limits.length === 1 ? limits[0]!.perMinute : undefined;
  return {
    items: resolved.tally.total,
    items_cached: cached,
    items_to_render: resolved.tally.total - cached,
    images_to_render: images,
    max_usd: microsToUsd(max),
    typical_usd: microsToUsd(typical),
    saved_usd: microsToUsd(saved),
    budget_usd: budget === undefined ? null : microsToUsd(budget),
    fits_budget: budget === undefined ? null : max <= budget,
    images_per_minute: perMinute ?? null,
    eta_seconds: known && limits.length > 0 ? Math.ceil(minutes * 60) : null,
    rejected: { count: resolved.rejected, rows: resolved.problems },
  };
}
