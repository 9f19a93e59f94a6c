import {
  actualCostMicros,
  maxCostMicros,
  microsToUsd,
  pricedRequest,
  usdToMicros,
} from '../models/pricing.js';
import type { FieldProblem } from '../errors.js';
import { validationError } from '../request-validation.js';
import { PROVIDER_BATCH_WINDOW_MS, modeProblems, resolveMode } from './batch-mode.js';
import type { BatchSource } from './batch-source.js';
import { resolveItems } from './resolve-items.js';
import type { SubmitBatchDeps } from './submit-batch.js';
import type { RouteOffer } from './route-offers.js';
import type { RoutingStrategy } from '../config/route-kinds.js';

/** One route's share of a batch in an estimate. */
export interface RoutePlan {
  route: string;
  model: string;
  images: number;
  max_usd: number;
  typical_usd: number;
  /** The route's limit for the model; null when its tier has none in the registry. */
  images_per_minute: number | null;
  /** Its images at that limit; in provider_batch mode the provider's 24 h window. */
  eta_seconds: number | null;
}

/** What a batch would cost, and how long it would take, before it is submitted. */
export interface BatchEstimate {
  /**
   * How the batch would render, as submission would decide it: `provider_batch` prices it at
   * the Batch API's price (`auto` resolves as it would on submission).
   */
  mode: 'realtime' | 'provider_batch';
  /** `auto` when the mode was chosen by rendermill. */
  mode_requested?: 'auto' | undefined;
  items: number;
  /** Items the cache already holds entirely: $0, no provider call. */
  items_cached: number;
  items_to_render: number;
  images_to_render: number;
  /** The routing the plan follows: the batch's, else the configured default. */
  routing: RoutingStrategy;
  /** The most it can cost on the planned routes: what its reservations would hold. */
  max_usd: number;
  /** What it usually costs: per-token models at the registry's typical tokens per image. */
  typical_usd: number;
  /** What the cached items' images were bought at. */
  saved_usd: number;
  budget_usd: number | null;
  /** Whether the budget holds the maximum: every item renders whatever the prices turn out to be. */
  fits_budget: boolean | null;
  /**
   * The images per minute the batch renders at: the planned routes' limits together (null when
   * the batch mixes models, and in provider_batch mode, which the routes' limits do not pace).
   */
  images_per_minute: number | null;
  /**
   * The least time the renders can take under the routes' limits: each route and model is
   * its own window, so the slowest of them. The provider's latency adds to it for small
   * batches; other batches sharing an account slow it down. In provider_batch mode: the
   * provider's completion window (24 h), the most it takes — a provider batch may end sooner
   * but promises nothing more.
   */
  eta_seconds: number | null;
  /** The plan per route and model: images, cost, time at its limit. */
  routes: RoutePlan[];
  /** Rows skipped (`on_invalid: skip`), with the first problems. */
  rejected: { count: number; rows: FieldProblem[] };
}

/**
 * Prices a batch without submitting it: the same validation, the same cache lookups (so a
 * re-run catalog estimates at $0), each route's price for the rest, shared among the routes
 * as the batch's routing would: all on the first route (`priority`), on the cheapest
 * (`cheapest`), or in proportion to their limits (`spread`). A route that gives up mid-batch
 * sends its items to the next, which may cost more. Items the index cannot answer at once
 * (edits, whose hash needs their input images) are priced as renders.
 */
export async function estimateFromSource(
  deps: SubmitBatchDeps,
  tenant: string,
  source: BatchSource,
): Promise<BatchEstimate> {
  // Checked as submission checks it: an estimate that passes promises the submission will.
  if (source.options.webhook_url) await deps.checkWebhookUrl?.(source.options.webhook_url);
  const now = deps.now?.() ?? new Date();
  const problems = modeProblems(source.options, now);
  if (problems.length > 0) throw validationError(problems, 'invalid_request');
  const routing = source.options.routing ?? deps.routing ?? 'priority';
  const realtimePlans: Plans = new Map();
  // `auto` is decided once every item is read: both plans are kept until then.
  const batchPlans: Plans | undefined =
    (source.options.mode ?? 'realtime') === 'realtime' ? undefined : new Map();
  let saved = 0;
  let images = 0;
  let cached = 0;
  const resolved = await resolveItems(deps, tenant, source, now, async (items) => {
    for (const item of items) {
      if (item.status === 'cached') {
        cached += 1;
        saved += item.saved_micros ?? 0;
        continue;
      }
      // resolveItems checked the model against the registry: it is there.
      const model = deps.registry.get(item.spec.model)!;
      const priced = pricedRequest(item.spec);
      images += item.spec.n;
      const offers = deps.routeOffers?.(model.id) ?? [];
      const priceOf: PriceOf = (offer, bound) =>
        offer?.imagePriceMicros !== undefined
          ? offer.imagePriceMicros * priced.n
          : bound === 'max'
            ? maxCostMicros(model, priced)
            : actualCostMicros(model, priced, undefined);
      addShares(
        realtimePlans,
        model.id,
        item.spec.n,
        sharesOf(offers, routing, (o) => priceOf(o, 'max')),
        priceOf,
      );
      if (!batchPlans) continue;
      // As the workers price an enrolment: a route's flat batch price, else the registry's
      // price times the model's factor, rounded up per item; bought from the cheapest.
      const factor = model.batch?.price_factor ?? 1;
      const batchPriceOf: PriceOf = (offer, bound) =>
        offer?.batch?.imagePriceMicros !== undefined
          ? offer.batch.imagePriceMicros * priced.n
          : Math.ceil(
              (bound === 'max'
                ? maxCostMicros(model, priced)
                : actualCostMicros(model, priced, undefined)) * factor,
            );
      addShares(
        batchPlans,
        model.id,
        item.spec.n,
        sharesOf(
          offers.filter((o) => o.batch),
          'cheapest',
          (o) => batchPriceOf(o, 'max'),
        ),
        batchPriceOf,
      );
    }
  });
  const mode = resolveMode(source.options, resolved.unbatchable, now);
  const inBatch = mode.mode === 'provider_batch';
  const plans = inBatch && batchPlans ? batchPlans : realtimePlans;
  const windowSeconds = PROVIDER_BATCH_WINDOW_MS / 1000;
  const routes: RoutePlan[] = [...plans.values()].map(({ maxMicros, typicalMicros, ...plan }) => ({
    ...plan,
    images: Math.round(plan.images * 100) / 100,
    max_usd: microsToUsd(Math.ceil(maxMicros)),
    typical_usd: microsToUsd(Math.ceil(typicalMicros)),
    images_per_minute: inBatch ? null : plan.images_per_minute,
    eta_seconds: inBatch
      ? windowSeconds
      : plan.images_per_minute === null
        ? null
        : Math.ceil((plan.images / plan.images_per_minute) * 60),
  }));
  const max = Math.ceil([...plans.values()].reduce((sum, p) => sum + p.maxMicros, 0));
  const typical = Math.ceil([...plans.values()].reduce((sum, p) => sum + p.typicalMicros, 0));
  const { budget_usd } = source.options;
  const budget = budget_usd === undefined ? undefined : usdToMicros(budget_usd);
  const known = routes.length > 0 && routes.every((r) => r.eta_seconds !== null);
  const models = new Set(routes.map((r) => r.model));
  return {
    ...mode,
    items: resolved.tally.total,
    items_cached: cached,
    items_to_render: resolved.tally.total - cached,
    images_to_render: images,
    routing,
    max_usd: microsToUsd(max),
    typical_usd: microsToUsd(typical),
    saved_usd: microsToUsd(saved),
    budget_usd: budget === undefined ? null : microsToUsd(budget),
    fits_budget: budget === undefined ? null : max <= budget,
    images_per_minute:
      models.size === 1 && known && !inBatch
        ? routes.reduce((sum, r) => sum + (r.images_per_minute ?? 0), 0)
        : null,
    eta_seconds: known ? Math.max(...routes.map((r) => r.eta_seconds ?? 0)) : null,
    routes,
    rejected: { count: resolved.rejected, rows: resolved.problems },
  };
}

/** An item's price on a route (no route: the registry's), at its most or typically. */
type PriceOf = (offer: RouteOffer | undefined, bound: 'max' | 'typical') => number;

/** Plans by route and model, with their sums in micro-dollars (fractions while shared). */
type Plans = Map<string, RoutePlan & { maxMicros: number; typicalMicros: number }>;

/** Adds an item's images and price to the plans of the routes it is shared among. */
function addShares(
  plans: Plans,
  modelId: string,
  n: number,
  shares: { offer: RouteOffer | undefined; share: number }[],
  priceOf: PriceOf,
): void {
  for (const { offer, share } of shares) {
    const key = `${offer?.route ?? ''}\u0000${modelId}`;
    const plan = plans.get(key) ?? {
      route: offer?.route ?? 'none',
      model: modelId,
      images: 0,
      max_usd: 0,
      typical_usd: 0,
      images_per_minute: offer?.imagesPerMinute ?? null,
      eta_seconds: null,
      maxMicros: 0,
      typicalMicros: 0,
    };
    plan.images += n * share;
    plan.maxMicros += priceOf(offer, 'max') * share;
    plan.typicalMicros += priceOf(offer, 'typical') * share;
    plans.set(key, plan);
  }
}

/**
 * How an item is shared among the routes offering its model under a routing: wholly on the
 * first (`priority`) or the cheapest (`cheapest`), or in proportion to their limits
 * (`spread`). No offer at all: priced at the registry's price, on no route.
 */
function sharesOf(
  offers: RouteOffer[],
  routing: RoutingStrategy,
  price: (offer: RouteOffer) => number,
): { offer: RouteOffer | undefined; share: number }[] {
  if (offers.length === 0) return [{ offer: undefined, share: 1 }];
  if (routing === 'cheapest') {
    const cheapest = offers.reduce((best, o) => (price(o) < price(best) ? o : best));
    return [{ offer: cheapest, share: 1 }];
  }
  const limited = offers.filter((o) => o.imagesPerMinute !== undefined);
  if (routing === 'spread' && limited.length > 1) {
    const total = limited.reduce((sum, o) => sum + o.imagesPerMinute!, 0);
    return limited.map((offer) => ({ offer, share: offer.imagesPerMinute! / total }));
  }
  return [{ offer: offers[0], share: 1 }];
}
