import {
  actualCostMicros,
  maxCostMicros,
  microsToUsd,
  pricedRequest,
  usdToMicros,
} from '../models/pricing.js';
import { resolveBatch, type SubmitBatchDeps } from './submit-batch.js';

/** What a batch would cost, before it is submitted. */
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
}

/**
 * Prices a batch request without submitting it: the same validation, the same cache lookups
 * (so a re-run catalog estimates at $0), the registry's prices for the rest. Prices are the
 * requested model's; a fallback with a dearer model may cost more. Items the index cannot
 * answer at once (edits, whose hash needs their input images) are priced as renders.
 */
export async function estimateBatch(
  deps: SubmitBatchDeps,
  tenant: string,
  body: unknown,
): Promise<BatchEstimate> {
  const { request, items } = await resolveBatch(deps, tenant, body);
  let max = 0;
  let typical = 0;
  let saved = 0;
  let images = 0;
  for (const item of items) {
    if (item.status === 'cached') {
      saved += item.saved_micros ?? 0;
      continue;
    }
    // resolveBatch checked the model against the registry: it is there.
    const model = deps.registry.get(item.spec.model)!;
    const priced = pricedRequest(item.spec);
    max += maxCostMicros(model, priced);
    typical += actualCostMicros(model, priced, undefined);
    images += item.spec.n;
  }
  const cached = items.filter((item) => item.status === 'cached').length;
  const budget = request.budget_usd === undefined ? undefined : usdToMicros(request.budget_usd);
  return {
    items: items.length,
    items_cached: cached,
    items_to_render: items.length - cached,
    images_to_render: images,
    max_usd: microsToUsd(max),
    typical_usd: microsToUsd(typical),
    saved_usd: microsToUsd(saved),
    budget_usd: budget === undefined ? null : microsToUsd(budget),
    fits_budget: budget === undefined ? null : max <= budget,
  };
}
