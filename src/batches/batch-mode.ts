import type { BatchMode } from '../contracts/batch-request.js';
import type { FieldProblem } from '../errors.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { RenderSpec } from '../models/render-spec.js';
import type { RouteOffers } from './route-offers.js';

/** A provider batch's completion window (OpenAI's `24h`, the only one it offers). */
export const PROVIDER_BATCH_WINDOW_MS = 24 * 3600_000;

/** Time `auto` keeps after the window for storing the results. */
const STORING_MARGIN_MS = 3600_000;

/** How a batch is rendered once its mode is decided. */
export interface ResolvedMode {
  mode: 'realtime' | 'provider_batch';
  /** `auto` when rendermill chose. */
  mode_requested?: 'auto' | undefined;
}

/**
 * Why an item cannot go in a provider batch, or undefined if it can: provider batches take
 * generations of models some route offers through its Batch API.
 */
export function whyNotBatchable(
  spec: RenderSpec,
  registry: ModelRegistry,
  offers: RouteOffers | undefined,
): string | undefined {
  if (spec.operation !== 'generate') {
    return `provider batches take generations; an ${spec.operation} renders in realtime mode`;
  }
  const inBatches = offers
    ? offers(spec.model).some((offer) => offer.batch)
    : registry.get(spec.model)?.batch !== undefined;
  if (!inBatches) {
    return `no configured route offers ${spec.model} through its Batch API (GPT Image models on routes with batch_api)`;
  }
  return undefined;
}

/** Problems of the mode options themselves (checked before any item). */
export function modeProblems(
  options: { mode?: BatchMode | undefined; complete_by?: string | undefined },
  now: Date,
): FieldProblem[] {
  if (options.complete_by === undefined) return [];
  if (options.mode !== 'auto') {
    return [{ field: 'complete_by', message: 'complete_by is read with mode "auto" only' }];
  }
  if (Date.parse(options.complete_by) <= now.getTime()) {
    return [{ field: 'complete_by', message: 'complete_by is in the past' }];
  }
  return [];
}

/**
 * The mode a batch runs in. `auto` is a provider batch when every item can go in one and
 * `complete_by` (if given) leaves the 24 h window and an hour to store the results; realtime
 * otherwise.
 */
export function resolveMode(
  options: { mode?: BatchMode | undefined; complete_by?: string | undefined },
  unbatchable: number,
  now: Date,
): ResolvedMode {
  if (options.mode === 'provider_batch') return { mode: 'provider_batch' };
  if (options.mode !== 'auto') return { mode: 'realtime' };
  const room =
    options.complete_by === undefined ||
    Date.parse(options.complete_by) - now.getTime() >= PROVIDER_BATCH_WINDOW_MS + STORING_MARGIN_MS;
  return {
    mode: room && unbatchable === 0 ? 'provider_batch' : 'realtime',
    mode_requested: 'auto',
  };
}
