import type { Logger } from 'pino';
import type { BatchStore } from '../../src/batches/batch-store.js';
import type { ProviderBatchStore } from '../../src/batches/provider-batch-store.js';
import type { RenderLease, RenderLocks } from '../../src/cache/render-lock.js';
import type { CachedImage, ResultCache } from '../../src/cache/result-cache.js';
import type { ReuseRules } from '../../src/cache/reuse.js';
import type {
  ItemRecord,
  PendingRender,
  SpooledRender,
} from '../../src/contracts/batch-records.js';
import type { RoutingStrategy } from '../../src/config/route-kinds.js';
import type { RouteLoad } from '../../src/render/route-load.js';
import type { AttemptInfo, JobPayload } from '../../src/contracts/job-catalog.js';
import { RendermillError } from '../../src/errors.js';
import type { AnswerBudget } from '../../src/limits/answer-budget.js';
import type { SpendCap, SpendCaps } from '../../src/ledger/spend-caps.js';
import { NO_RENDER_METRICS, type RenderMetrics } from '../../src/metrics/render-metrics.js';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import type { ProviderRoute } from '../../src/providers/provider-route.js';
import type { JobQueue } from '../../src/queue/job-queue.js';
import type { ProviderRetryPolicy } from '../../src/render/call-provider.js';
import { storeSpooled, type SpoolSlot, type StoreTarget } from '../../src/render/store-images.js';
import type { ImageStorage } from '../../src/storage/image-storage.js';
import type { ImageSpool } from '../../src/storage/image-spool.js';

export interface RenderItemDeps {
  store: BatchStore;
  storage: ImageStorage;
  /** Where paid images wait while S3 refuses them, for any worker to upload later. */
  spool: ImageSpool;
  cache: ResultCache;
  locks: RenderLocks;
  /** The tenant's monthly and the day's spend counters, with their caps. */
  caps: SpendCaps;
  /** The routes, in the configured order. */
  routes: readonly ProviderRoute[];
  /** How items of batches that name no routing choose a route (the providers file's). */
  routing: RoutingStrategy;
  /**
   * How long a render lock outlives its holder (RENDERMILL_JOB_LOCK_MS): a lock handed on with
   * a queued prediction is kept this long past the next check.
   */
  lockTtlMs: number;
  /** What this process has under way per route: `spread` orders by it, every call counts in it. */
  routeLoad: RouteLoad;
  registry: ModelRegistry;
  queue: JobQueue;
  /**
   * Where items of batches in `provider_batch` mode are enrolled for their provider batch.
   * Absent: such items cannot be taken (a worker wired before the mode existed, some tests).
   */
  providerBatches?: ProviderBatchStore | undefined;
  /** How often provider batches are looked at (RENDERMILL_PROVIDER_BATCH_POLL_MS). */
  providerBatchPollMs?: number | undefined;
  logger: Logger;
  /** Retries and waits of a provider call (the configuration's `retry`). */
  retryPolicy: ProviderRetryPolicy;
  /** Let input image URLs reach private addresses (RENDERMILL_ALLOW_PRIVATE_URLS). */
  allowPrivateUrls: boolean;
  /** Where outcomes, spend and provider calls are counted. Default: nowhere. */
  metrics?: RenderMetrics | undefined;
  /**
   * The process's budget of answer bytes held between reading an answer and storing its
   * images (answer-budget.ts). Absent: answers are read without one (some tests).
   */
  answerBudget?: AnswerBudget | undefined;
}

/**
 * One run of the render-item job: what it was given, and what it has learnt and done so far.
 * Every step reads it, and the money fields are how a later step (settling a failure above
 * all) knows what an earlier one already bought, charged or recorded.
 */
export interface RenderAttempt {
  readonly deps: RenderItemDeps;
  readonly batchId: string;
  readonly itemId: string;
  readonly tenant: string;
  readonly spec: RenderSpec;
  /** How the item chooses among routes: its batch's routing, else the workers' default. */
  readonly routing: RoutingStrategy;
  /** `provider_batch`: the item is enrolled in its batch's provider batch, not rendered now. */
  readonly mode: 'realtime' | 'provider_batch';
  /** This job attempt (1-based) and how many the queue allows. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /** Set when the worker shuts down: waits end, calls in flight are seen through. */
  readonly signal: AbortSignal | undefined;
  /** When the run began (Date.now()), for the duration logged with the outcome. */
  readonly started: number;
  readonly log: Logger;
  readonly metrics: RenderMetrics;
  /** The tenant's spend caps, as of this run. */
  readonly caps: readonly SpendCap[];
  /** Whose renders the tenant may reuse. */
  readonly scope: string;
  readonly rules: ReuseRules;
  /**
   * The item as this run records it: as read, with what a dead run held charged to its cost;
   * `hash` and `rendered_by` are filled in as they become known.
   */
  readonly item: ItemRecord;
  /** What a run that died with a call under way held: spent when this run starts. */
  readonly heldByDeadRun: number;
  /** The cache's first answer, reused by the single-flight step rather than asked again. */
  firstLook: Map<number, CachedImage> | undefined;
  /** The request's render lock, once this run holds it. */
  lease: RenderLease | undefined;
  /**
   * Images this run stored that the cache index does not name yet: indexed right before the
   * render lock is released, in the same round trip as the item's settlement (indexHeld).
   */
  unindexed: CachedImage[];
  /** What the provider billed for this run's images, usable or not. */
  paidMicros: number;
  /** Requests that got no answer, counted as spent in the ledger already. */
  unansweredMicros: number;
  /**
   * An unanswered request charged what the item held: the next request (a retry, a
   * fallback) needs a reservation of its own first.
   */
  holdCharged: boolean;
  /**
   * The provider's own failures were retried inside the call (RENDERMILL_RETRIES, with
   * backoff) and through the fallback chain: once it gives up, the item fails with the last
   * error. Job attempts are for what happens around the call: a crashed worker, Redis or S3
   * away.
   */
  providerGaveUp: boolean;
  /** The item's outcome and its money are recorded: never again in this run. */
  settled: boolean;
  /**
   * A queued prediction this run submitted, or followed, that had not ended: recorded on the
   * item when the run hands the job back (settle-failure.ts), with the render lock handed on.
   */
  pending: PendingRender | undefined;
  /**
   * Paid images this run could not store and left in the spool: recorded on the item when
   * the run hands the job back (settle-failure.ts), with the render lock handed on.
   */
  spooled: SpooledRender | undefined;
}

/** The state of a run that found `item` to render, a dead run's billed hold charged to it. */
export function openAttempt(
  deps: RenderItemDeps,
  { batchId, itemId, tenant, spec, routing, mode }: JobPayload<'render-item'>,
  { attempt, maxAttempts, signal }: AttemptInfo,
  found: { item: ItemRecord; heldByDeadRun: number; started: number; log: Logger },
): RenderAttempt {
  const { item } = found;
  return {
    deps,
    batchId,
    itemId,
    tenant,
    spec,
    routing: routing ?? deps.routing,
    mode: mode ?? 'realtime',
    attempt,
    maxAttempts,
    signal,
    ...found,
    metrics: deps.metrics ?? NO_RENDER_METRICS,
    caps: deps.caps.for(tenant),
    scope: deps.cache.scopeFor(tenant),
    rules: { n: spec.n, reuseAfter: item.reuse_after, derive: item.derive ?? [] },
    firstLook: undefined,
    lease: undefined,
    unindexed: [],
    paidMicros: 0,
    unansweredMicros: 0,
    holdCharged: false,
    providerGaveUp: false,
    settled: false,
    pending: undefined,
    spooled: undefined,
  };
}

/** The item as this run stores it next: its fields with `changes`, stamped with the attempt. */
export const itemWith = (run: RenderAttempt, changes: Partial<ItemRecord>): ItemRecord => ({
  ...run.item,
  ...changes,
  attempts: run.attempt,
  updated_at: new Date().toISOString(),
});

/** The indexes of the item's variants `usable` lacks, in order. */
export const missingVariants = (run: RenderAttempt, usable: Map<number, CachedImage>) =>
  Array.from({ length: run.spec.n }, (_, index) => index).filter((index) => !usable.has(index));

/** The item's cost so far: earlier runs', what this run paid, and its unanswered requests. */
export const costSoFar = (run: RenderAttempt) =>
  run.item.cost_micros + run.paidMicros + run.unansweredMicros;

/** Every amount the ledger counts as spent is counted in the metrics too, once recorded. */
export const countSpent = (run: RenderAttempt, micros: number | undefined) =>
  run.metrics.spent(run.tenant, micros ?? 0);

/** The item's `error` for whatever ended it: a rendermill error's code, or an internal one. */
export function itemError(error: unknown): { code: string; message: string } {
  if (error instanceof RendermillError) return { code: error.code, message: error.message };
  return {
    code: 'internal_error',
    message: error instanceof Error ? error.message : String(error),
  };
}

/**
 * Asks the route to stop a queued prediction nobody will collect (its batch was cancelled).
 * Best effort: what the item's hand-back charged stays counted, since a cancel may come after
 * the provider billed it.
 */
export async function cancelPrediction(run: RenderAttempt, pending: PendingRender): Promise<void> {
  const route = run.deps.routes.find((candidate) => candidate.name === pending.route);
  try {
    await route?.provider.cancel?.(pending.prediction);
    run.log.info(
      { route: pending.route, prediction: pending.prediction.id },
      'queued prediction cancelled',
    );
  } catch (error) {
    run.log.warn(
      { route: pending.route, prediction: pending.prediction.id, err: (error as Error).message },
      'queued prediction could not be cancelled; it runs on, counted as spent',
    );
  }
}

/** Where the item's images go: the bucket and the cache index of request `hash`. */
export const storeTarget = (run: RenderAttempt, hash: string): StoreTarget => ({
  storage: run.deps.storage,
  cache: run.deps.cache,
  scope: run.scope,
  hash,
});

/** Where the item's request stores its images, indexed by indexHeld rather than at once. */
export const heldIndexTarget = (run: RenderAttempt, hash: string): StoreTarget => ({
  ...storeTarget(run, hash),
  index: async (images) => {
    run.unindexed.push(...images);
  },
});

/**
 * Indexes what the run stored and has not indexed yet. Sent before the render lock's release
 * on the same connection, so a waiter let go by it finds the images; a write that fails leaves
 * them unindexed but in the bucket, where the next run with the lock looks before paying.
 */
export function indexHeld(run: RenderAttempt): Promise<void> {
  const images = run.unindexed.splice(0);
  if (images.length === 0 || !run.item.hash) return Promise.resolve();
  return run.deps.cache.record(run.scope, run.item.hash, images);
}

/** The item's place in the spool: one entry per item, whichever run fills or empties it. */
export const spoolSlot = (run: RenderAttempt): SpoolSlot => ({
  spool: run.deps.spool,
  entry: `${run.batchId}:${run.itemId}`,
});

/**
 * Deals with the spooled images of an item nobody will record them on (its batch was
 * cancelled). They are paid for: if S3 takes them now they are stored and indexed, for later
 * requests to reuse at $0; otherwise they are dropped from the spool. Best effort: their price
 * stays counted as spent either way.
 */
export async function storeOrDropSpooled(
  run: RenderAttempt,
  spooled: SpooledRender,
): Promise<void> {
  const slot = { ...spoolSlot(run), entry: spooled.entry };
  try {
    if (!run.item.hash) throw new Error('the item has no request hash');
    await storeSpooled(storeTarget(run, run.item.hash), slot, run.rules.derive);
    run.log.info({ entry: spooled.entry }, 'spooled images of a cancelled item stored for reuse');
  } catch (error) {
    await slot.spool.remove(slot.entry).catch(() => undefined); // it expires by itself
    run.log.warn(
      { entry: spooled.entry, err: (error as Error).message },
      'spooled images of a cancelled item dropped; their price stays counted as spent',
    );
  }
}
