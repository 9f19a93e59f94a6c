import { UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import type { BatchStore, TransitionOutcome } from '../src/batches/batch-store.js';
import type { ItemRecord } from '../src/contracts/batch-records.js';
import { TERMINAL_STATUSES, batchEnded } from '../src/contracts/item-status.js';
import type { RenderLease, RenderLocks } from '../src/cache/render-lock.js';
import type { CachedImage, ResultCache } from '../src/cache/result-cache.js';
import {
  completeHit,
  renderedByCache,
  reusable,
  savedBy,
  storedImage,
  type ReuseRules,
} from '../src/cache/reuse.js';
import {
  AccountPausedError,
  BudgetExceededError,
  PaidResultError,
  ShutdownError,
  ModelUnavailableError,
  RendermillError,
  ReservationLostError,
  BatchCancelledError,
  isRetryable,
} from '../src/errors.js';
import { describeCap, type SpendCaps } from '../src/ledger/spend-caps.js';
import { RESERVATION_WAIT_MS } from '../src/ledger/spend-ledger.js';
import type { ModelRegistry } from '../src/models/model-registry.js';
import { actualCostMicros, microsToUsd, pricedRequest } from '../src/models/pricing.js';
import type { RenderSpec } from '../src/models/render-spec.js';
import { contentHash, requestHash } from '../src/models/request-hash.js';
import type { ProviderAccount } from '../src/providers/provider-account.js';
import type { ProviderRetryPolicy } from '../src/render/call-provider.js';
import { candidatesFor, renderWithFallbacks } from '../src/render/render-with-fallbacks.js';
import { checkInputImages, checkInputRef, loadInputImage } from '../src/render/input-images.js';
import { completeDerivations, storeRendered } from '../src/render/store-images.js';
import type { ImageStorage } from '../src/storage/image-storage.js';
import {
  renderItemRef,
  type AttemptInfo,
  type JobHandler,
  type JobPayload,
} from '../src/contracts/job-catalog.js';
import type { JobQueue } from '../src/queue/job-queue.js';
import { NO_RENDER_METRICS, type RenderMetrics } from '../src/metrics/render-metrics.js';

export interface RenderItemDeps {
  store: BatchStore;
  storage: ImageStorage;
  cache: ResultCache;
  locks: RenderLocks;
  /** The tenant's monthly and the day's spend counters, with their caps. */
  caps: SpendCaps;
  /** The configured provider account first, then its fallbacks in order. */
  accounts: readonly ProviderAccount[];
  registry: ModelRegistry;
  queue: JobQueue;
  logger: Logger;
  retryPolicy?: ProviderRetryPolicy;
  /** Let input image URLs reach private addresses (RENDERMILL_ALLOW_PRIVATE_URLS). Default false. */
  allowPrivateUrls?: boolean | undefined;
  /** Where outcomes, spend and provider calls are counted. Default: nowhere. */
  metrics?: RenderMetrics | undefined;
}

/**
 * Renders one item, paying for each image at most once:
 * cache (every variant stored? done, $0) → single-flight (someone else rendering it? wait and
 * reuse) → reserve the maximum price against every cap → call the provider for the missing
 * variants (rate-limited, retried, fallbacks) → upload to S3 and index → settle the actual
 * price and record the outcome. Each step's failure has one meaning: retryable errors leave
 * the item queued for the next attempt, everything else ends the item with a reason. Every
 * transition after `running` releases what the item reserved; what the provider billed is
 * always added to the spend.
 */
export function createRenderItemProcessor(deps: RenderItemDeps) {
  return async function renderItem(
    { batchId, itemId, tenant, spec }: JobPayload<'render-item'>,
    { attempt, maxAttempts, signal }: AttemptInfo,
  ): Promise<void> {
    const started = Date.now();
    const log = deps.logger.child({ batch: batchId, item: itemId });
    const metrics = deps.metrics ?? NO_RENDER_METRICS;
    /** Every amount the ledger counts as spent is counted in the metrics too, once recorded. */
    const spent = (micros: number | undefined) => metrics.spent(tenant, micros ?? 0);
    const stored = await deps.store.item(batchId, itemId);
    if (!stored) {
      log.warn('item no longer exists; nothing to render');
      return;
    }
    if (TERMINAL_STATUSES.includes(stored.status)) {
      // A job re-run after a crash: the outcome is recorded, but finalising may not have been queued.
      await queueFinalizeIfComplete(deps, batchId);
      return;
    }
    const { item, held: heldByDeadRun } = await deps.store.chargeDeadRun(batchId, stored);
    const caps = deps.caps.for(tenant);
    const scope = deps.cache.scopeFor(tenant);

    const record = (changes: Partial<ItemRecord>): ItemRecord => ({
      ...item,
      ...changes,
      attempts: attempt,
      updated_at: new Date().toISOString(),
    });
    let settled = false;
    const finish = async (next: ItemRecord, money: { spendMicros?: number }, derivedCopies = 0) => {
      const outcome = await deps.store.transition(batchId, next, {
        ...money,
        savedMicros: next.saved_micros,
        caps,
      });
      settled = true; // from here on the outcome and its money are recorded: never again
      spent(money.spendMicros);
      // `ignored`: another run of the job recorded the item's outcome, and counted it.
      if (outcome !== 'ignored') {
        metrics.itemFinished({
          status: next.status,
          model: spec.model,
          images: imageOutcomes(next, spec.n, derivedCopies),
        });
      }
      log.info(
        {
          status: next.status,
          model: spec.model,
          n: spec.n,
          cost_usd: microsToUsd(next.cost_micros),
          saved_usd: microsToUsd(next.saved_micros ?? 0),
          ms: Date.now() - started,
          attempt,
          error: next.error,
        },
        'item finished',
      );
      await afterTransition(deps, batchId, outcome);
    };
    /** Requests that got no answer, counted as spent in the ledger already (see below). */
    let unansweredMicros = 0;
    let holdSpent = false;
    const derive = item.derive ?? [];
    const rules: ReuseRules = { n: spec.n, reuseAfter: item.reuse_after, derive };
    /** `verify`: ask S3 about whatever Redis lacks, even a miss the index vouches for. */
    const lookup = async (hash: string, verify = false) =>
      reusable(await deps.cache.lookup(scope, hash, spec.n, { verify }), rules);
    /** The item's outcome from its images: `cached` when no provider call was made for it. */
    const succeed = (
      images: CachedImage[],
      reused: CachedImage[],
      paidMicros: number,
      derivedCopies = 0,
    ) =>
      finish(
        record({
          status: reused.length === images.length ? 'cached' : 'succeeded',
          hash: item.hash,
          // A reused image was rendered by the model recorded with it (a fallback's, maybe).
          rendered_by: item.rendered_by ?? renderedByCache(reused[0]),
          cost_micros: item.cost_micros + paidMicros + unansweredMicros,
          saved_micros: savedBy(reused),
          images: images.map((image) => storedImage(image, reused.includes(image))),
          error: undefined,
        }),
        { spendMicros: paidMicros },
        derivedCopies,
      );

    // The common case of a re-run catalog, in three round trips: every variant is stored
    // and has its derived copies — no reservation, no lock, no call.
    let firstLook: Map<number, CachedImage> | undefined;
    if (item.hash && heldByDeadRun === 0) {
      firstLook = await lookup(item.hash);
      const hit = completeHit(firstLook, rules);
      if (hit) {
        await succeed(hit, hit, 0);
        return;
      }
    }

    const start = await deps.store.transition(batchId, record({ status: 'running' }), {
      spendMicros: heldByDeadRun,
      releaseReservation: true,
      caps,
    });
    spent(heldByDeadRun);
    if (start === 'cancelled') {
      metrics.itemFinished({ status: 'cancelled', model: spec.model, images: {} });
    }
    if (start === 'ignored' || start === 'cancelled') {
      // Another run of the same job finished the item since we read it, or the batch is being
      // cancelled and the item was cancelled instead of starting.
      await queueFinalizeIfComplete(deps, batchId);
      return;
    }
    let paidMicros = 0;
    // The provider's own failures were retried inside the call (RENDERMILL_RETRIES, with backoff)
    // and through the fallback chain: once it gives up, the item fails with the last error.
    // Job attempts are for what happens around the call: a crashed worker, Redis or S3 away.
    let providerGaveUp = false;
    let lease: RenderLease | undefined;
    try {
      // What exactly is asked: for an edit, that includes the input images' content.
      const ownRenders = deps.cache.scopeFolder(scope);
      for (const ref of [...(spec.images ?? []), ...(spec.mask ? [spec.mask] : [])]) {
        checkInputRef(ref, ownRenders);
      }
      const load = { allowPrivateUrls: deps.allowPrivateUrls };
      const images = await Promise.all(
        (spec.images ?? []).map((ref) => loadInputImage(ref, deps.storage, load)),
      );
      const mask = spec.mask ? await loadInputImage(spec.mask, deps.storage, load) : undefined;
      const hash =
        item.hash ??
        requestHash(spec, {
          images: images.map((image) => contentHash(image.data)),
          mask: mask && contentHash(mask.data),
        });
      item.hash = hash;
      const target = { storage: deps.storage, cache: deps.cache, scope, hash };

      // Single-flight: while another item, batch or worker renders this request, wait for it
      // and reuse what it stored; take over if it died or rendered fewer variants than we need.
      let usable = firstLook ?? (await lookup(hash));
      while (usable.size < spec.n) {
        lease = await deps.locks.tryAcquire(scope, hash);
        if (lease) {
          // About to pay: the bucket itself, not only the index, must lack what we buy. The
          // last holder may have stored it just before, a crashed run may have uploaded it
          // without indexing it, a failed-over Redis may have lost its entry.
          usable = await lookup(hash, true);
          break;
        }
        log.debug({ hash }, 'the same request is being rendered elsewhere; waiting to reuse it');
        await deps.locks.waitForRelease(scope, hash, signal);
        usable = await lookup(hash);
      }
      const reused = [...usable.values()].sort((a, b) => a.index - b.index);
      const missing = range(spec.n).filter((index) => !usable.has(index));

      let rendered: CachedImage[] = [];
      if (missing.length > 0) {
        // Only the variants the cache lacks are bought.
        const ask: RenderSpec = { ...spec, n: missing.length };
        const priced = pricedRequest(ask);
        const candidates = candidatesFor(deps.accounts, ask, priced, deps.registry);
        const primary = candidates[0];
        if (!primary) {
          throw new ModelUnavailableError(
            `model ${spec.model} is no longer in the registry, and no fallback can render this item`,
          );
        }
        // Enough for whichever account of the chain ends up rendering it; settled to the actual price.
        const maxMicros = Math.max(...candidates.map((c) => c.maxMicros));
        const reserve = () => deps.store.reserveWithin(batchId, itemId, maxMicros, caps, signal);
        const reservation = await reserve();
        if (reservation.outcome !== 'reserved') {
          const error = new BudgetExceededError(
            reservation.outcome === 'exhausted'
              ? `${describeCap(reservation.cap ?? 'batch')} cannot hold this item's maximum price of $${microsToUsd(maxMicros)}`
              : `running items held the rest of ${describeCap(reservation.cap ?? 'batch')} for over ${RESERVATION_WAIT_MS / 1000} s`,
          );
          await finish(record({ status: 'budget_exceeded', error: describe(error) }), {});
          return;
        }
        await checkInputImages(primary.model, images, mask);

        const outcome = await renderWithFallbacks(
          candidates,
          { spec: ask, images, mask },
          {
            policy: deps.retryPolicy,
            shutdown: signal,
            log,
            metrics,
            // From here on the reservation is money at stake: if this worker dies, it counts as
            // spent. After a request that got no answer, the next one (a retry, or a fallback)
            // needs a reservation of its own first — or it is not made.
            beforeCall: async () => {
              if (holdSpent) {
                const again = await reserve();
                if (again.outcome !== 'reserved') {
                  throw new BudgetExceededError(
                    `a request that got no answer was counted as spent ($${microsToUsd(unansweredMicros)}), ` +
                      `and ${describeCap(again.cap ?? 'batch')} cannot hold another try`,
                  );
                }
                holdSpent = false;
              }
              await deps.store.markCalling(batchId, itemId);
            },
            // No answer came (a timeout, a cut connection): the provider may have billed it, so
            // what it held is spent.
            afterUnansweredCall: async () => {
              const charged = await deps.store.chargeHold(batchId, itemId);
              spent(charged);
              unansweredMicros += charged;
              holdSpent = true;
            },
          },
        );
        if (!outcome.ok) {
          // Billed but unusable: the money is gone whether or not we can use the result.
          if (outcome.error instanceof PaidResultError) {
            paidMicros = actualCostMicros(outcome.candidate.model, priced, outcome.error.usage);
          }
          providerGaveUp = outcome.error instanceof RendermillError;
          throw outcome.error;
        }
        const { candidate, result } = outcome;
        paidMicros = actualCostMicros(candidate.model, priced, result.usage);
        item.rendered_by = { provider: candidate.account.name, model: candidate.model.id };
        // The images are paid for: from here on nothing is cut short by a shutdown, and a
        // storage hiccup is retried on the spot rather than by buying the images again.
        rendered = await storeRendered(
          target,
          result.images,
          missing,
          { paidMicros, model: candidate.model.id },
          derive,
        );
      }
      const complete = await completeDerivations(target, reused, derive);
      await lease?.release();
      await succeed(
        [...complete, ...rendered].sort((a, b) => a.index - b.index),
        complete,
        paidMicros,
        derivedCount(rendered) + derivedCount(complete) - derivedCount(reused),
      );
    } catch (error) {
      if (settled) throw error; // only queueing the manifest failed: the job retry redoes that
      // Another run owns the item now (it released our reservation): leave everything to it.
      if (error instanceof ReservationLostError) throw error;
      const reason = describe(error);
      // Money the provider already took is spent whatever happens next: never under-count it.
      // Every transition below also releases what the item had reserved.
      const money = { spendMicros: paidMicros, caps };
      const cost_micros = item.cost_micros + paidMicros + unansweredMicros;
      // The batch was cancelled before this item's call left: no call, nothing more to pay.
      if (error instanceof BatchCancelledError) {
        await finish(record({ status: 'cancelled', cost_micros, error: reason }), money);
        return;
      }
      // A shutdown or a paused account hands the job back without using an attempt.
      const handedBack = error instanceof ShutdownError || error instanceof AccountPausedError;
      if (handedBack || (!providerGaveUp && isRetryable(error) && attempt < maxAttempts)) {
        const back = await deps.store.transition(
          batchId,
          record({ status: 'queued', cost_micros, error: reason }),
          money,
        );
        spent(money.spendMicros);
        if (back === 'cancelled') {
          // Its batch is being cancelled: the item was cancelled instead, and the job ends.
          metrics.itemFinished({ status: 'cancelled', model: spec.model, images: {} });
          await queueFinalizeIfComplete(deps, batchId);
          return;
        }
        log.warn({ err: reason, attempt }, 'attempt ended; the job goes back to the queue');
        throw error;
      }
      const status = error instanceof BudgetExceededError ? 'budget_exceeded' : 'failed';
      await finish(record({ status, cost_micros, error: reason }), money);
      throw new UnrecoverableError(reason.message);
    } finally {
      // Whatever happened, items waiting on this request may go on: reuse, or try themselves.
      await lease?.release().catch(() => undefined); // it lapses by itself if Redis is away
    }
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Derived copies the images carry. */
const derivedCount = (images: readonly CachedImage[]) =>
  images.reduce((sum, image) => sum + image.derived.length, 0);

/**
 * What became of a finished item's images: bought or reused when it succeeded (with the
 * copies this run made), all of them undelivered when it failed. An item stopped by its
 * budget or a cancellation failed no image: items_total says what happened to it.
 */
function imageOutcomes(item: ItemRecord, n: number, derivedCopies: number) {
  if (item.status === 'failed') return { failed: n };
  if (item.status !== 'succeeded' && item.status !== 'cached') return {};
  const cached = item.images.filter((image) => image.cached).length;
  return { rendered: item.images.length - cached, cached, derived: derivedCopies };
}

/** The render-item job as workers run it: the processor, and what happens if it never finishes. */
export function createRenderItemHandler(deps: RenderItemDeps): JobHandler<'render-item'> {
  return { process: createRenderItemProcessor(deps), onGiveUp: recordGiveUp(deps) };
}

/**
 * When the queue gives up on a job the processor could not finish (Redis or S3 down for every
 * attempt, a worker that kept dying), the item still gets an outcome: failed, with the reason.
 * An item that already has one is left alone. If its last run died with a call under way —
 * perhaps billed — what it held is counted as spent: spend is never under-counted.
 */
function recordGiveUp(deps: RenderItemDeps) {
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

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof RendermillError) return { code: error.code, message: error.message };
  return {
    code: 'internal_error',
    message: error instanceof Error ? error.message : String(error),
  };
}

/** Queues the manifest's writing when a transition completed the batch or made a checkpoint due. */
async function afterTransition(
  deps: Pick<RenderItemDeps, 'queue'>,
  batchId: string,
  outcome: TransitionOutcome,
) {
  if (outcome === 'batch_completed') await queueFinalize(deps, batchId);
  if (outcome === 'checkpoint_due') {
    await deps.queue.add('finalize-batch', { batchId }, `checkpoint-${batchId}-${Date.now()}`);
  }
}

async function queueFinalize(deps: Pick<RenderItemDeps, 'queue'>, batchId: string) {
  await deps.queue.add('finalize-batch', { batchId }, `finalize-${batchId}`);
}

async function queueFinalizeIfComplete(deps: RenderItemDeps, batchId: string) {
  const batch = await deps.store.get(batchId);
  if (batch && batchEnded(batch.status) && !batch.manifest_key) await queueFinalize(deps, batchId);
}
