import type { ProviderUsage } from '../errors.js';
import type { RoutingStrategy } from '../config/route-kinds.js';
import { whyModelCannotRender } from '../batches/validate-item.js';
import type { ModelRegistry } from '../models/model-registry.js';
import {
  actualCostMicros,
  batchPricing,
  maxCostMicros,
  type Micros,
  type PricedRequest,
} from '../models/pricing.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { RenderSpec } from '../models/render-spec.js';
import type { ProviderCapabilities } from '../providers/image-provider.js';
import type { ProviderRoute } from '../providers/provider-route.js';
import type { RouteLoad } from './route-load.js';

/** A route that can take an item, with the model it would render with and what it costs there. */
export interface Candidate {
  route: ProviderRoute;
  model: ModelSpec;
  /** The route's own id for the model. */
  remote: string;
  /** What the route's API can do for the model (images per call, formats, queued or not). */
  capabilities: ProviderCapabilities;
  /** The route's flat price per image, when it sets one; else the registry prices it. */
  imagePriceMicros?: Micros | undefined;
  /** Through the route's Batch API: the registry's price times this (its flat price aside). */
  priceFactor?: number | undefined;
  /** The most the item can cost on this route: what the budget must hold for it. */
  maxMicros: Micros;
}

/**
 * The routes that can take an item, in the configured order, each with the model it would
 * render with: the item's own, or the route's. A route that does not serve the model, whose
 * API cannot do the operation, or whose model cannot render this item (another size, quality,
 * no price for it) is left out. A cache hit does not depend on any of this: the request hash
 * names the model, never the route.
 */
export function candidatesFor(
  routes: readonly ProviderRoute[],
  spec: RenderSpec,
  priced: PricedRequest,
  registry: ModelRegistry,
): Candidate[] {
  return routes.flatMap((route) => {
    const modelId = route.model ?? spec.model;
    const served = route.models?.get(modelId);
    if (route.models && !served) return [];
    const model = registry.get(modelId);
    if (!model) return [];
    if (model.id !== spec.model && whyModelCannotRender(spec, model, registry)) return [];
    const capabilities = route.provider.capabilities(model);
    if (!capabilities.operations.includes(spec.operation)) return [];
    const imagePriceMicros = served?.imagePriceMicros;
    try {
      const maxMicros =
        imagePriceMicros === undefined ? maxCostMicros(model, priced) : imagePriceMicros * priced.n;
      const remote = served?.remote ?? model.remote_ids?.[route.provider.kind] ?? model.id;
      return [{ route, model, remote, capabilities, imagePriceMicros, maxMicros }];
    } catch {
      return []; // the registry has no price for this combination: it could not be budgeted
    }
  });
}

/**
 * The routes whose Batch API can take an item (`provider_batch` mode), in the configured
 * order, priced at the batch price: the route's flat `batch_price_usd`, else the registry's
 * price times the model's `batch.price_factor`. Generations only.
 */
export function batchCandidatesFor(
  routes: readonly ProviderRoute[],
  spec: RenderSpec,
  priced: PricedRequest,
  registry: ModelRegistry,
): Candidate[] {
  if (spec.operation !== 'generate') return [];
  return candidatesFor(
    routes.filter((route) => route.batch),
    spec,
    priced,
    registry,
  ).flatMap((candidate): Candidate[] => {
    const pricing = batchPricing(candidate.model, {
      flatBatchImageMicros: candidate.route.models?.get(candidate.model.id)?.batchImagePriceMicros,
      flatImageMicros: candidate.imagePriceMicros,
    });
    if (!pricing) return [];
    if ('flatImageMicros' in pricing) {
      const flat = pricing.flatImageMicros;
      return [{ ...candidate, imagePriceMicros: flat, maxMicros: flat * priced.n }];
    }
    return [
      {
        ...candidate,
        priceFactor: pricing.factor,
        maxMicros: Math.ceil(maxCostMicros(candidate.model, priced) * pricing.factor),
      },
    ];
  });
}

/**
 * What a rendered request cost on the candidate's route: its flat price, or the registry's
 * (times the batch price factor through a Batch API).
 */
export function costOn(
  candidate: Candidate,
  priced: PricedRequest,
  usage: ProviderUsage | undefined,
): Micros {
  if (candidate.imagePriceMicros !== undefined) return candidate.imagePriceMicros * priced.n;
  const cost = actualCostMicros(candidate.model, priced, usage);
  return candidate.priceFactor === undefined ? cost : Math.ceil(cost * candidate.priceFactor);
}

/**
 * The candidates in the order a strategy tries them; each falls back to the next only when a
 * route gives up (down, paused, out of quota, retired the model).
 * - `priority`: the configured order.
 * - `cheapest`: the lowest price first (the configured order among equal prices). Waiting for
 *   its limit is part of the route: nothing goes to a dearer one while it is up.
 * - `spread`: the route with the least work per unit of capacity first — what this process
 *   has under way on it (waiting for its window or in flight) over its images per minute — so
 *   every route's window is kept full in proportion to its limit.
 */
export function orderCandidates(
  candidates: readonly Candidate[],
  strategy: RoutingStrategy,
  load: RouteLoad,
): Candidate[] {
  const ordered = [...candidates];
  if (strategy === 'cheapest') {
    ordered.sort((a, b) => a.maxMicros - b.maxMicros);
  } else if (strategy === 'spread') {
    const pressure = new Map(ordered.map((c) => [c, spreadPressure(c, load)]));
    ordered.sort((a, b) => pressure.get(a)! - pressure.get(b)!);
  }
  return ordered;
}

/** Work under way on the route's model per image per minute it allows (+1: the next item). */
function spreadPressure(candidate: Candidate, load: RouteLoad): number {
  const capacity = capacityOf(candidate);
  return (load.underWay(candidate.route.name, candidate.model.id) + 1) / capacity;
}

/** The route's images per minute for the model; a route without a limit for it counts as 1. */
function capacityOf(candidate: Candidate): number {
  try {
    return Math.max(1, candidate.route.limits.for(candidate.model.id).imagesPerMinute);
  } catch {
    return 1; // no limit at this tier: callProvider will say so, and the next route tries
  }
}
