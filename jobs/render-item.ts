import { UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import pRetry from 'p-retry';
import type {
  BatchStore,
  ItemRecord,
  ReserveOutcome,
  StoredImage,
} from '../src/batches/batch-store.js';
import { TERMINAL_STATUSES } from '../src/batches/item-status.js';
import {
  AccountPausedError,
  BudgetExceededError,
  PaidResultError,
  ShutdownError,
  ModelUnavailableError,
  RendermillError,
  isRetryable,
} from '../src/errors.js';
import type { ModelRegistry } from '../src/models/model-registry.js';
import { actualCostMicros, microsToUsd, type PricedRequest } from '../src/models/pricing.js';
import { CONTENT_TYPES, type RenderSpec } from '../src/models/render-spec.js';
import type { ProviderAccount } from '../src/providers/provider-account.js';
import { waitUnlessShutdown } from '../src/render/backoff.js';
import type { ProviderRetryPolicy } from '../src/render/call-provider.js';
import { candidatesFor, renderWithFallbacks } from '../src/render/render-with-fallbacks.js';
import { checkInputImages, loadInputImage } from '../src/render/input-images.js';
import type { ImageStorage } from '../src/storage/image-storage.js';
import { renderItemRef, type AttemptInfo, type JobHandler, type JobPayload } from './catalog.js';
import type { JobQueue } from '../src/queue/job-queue.js';

export interface RenderItemDeps {
  store: BatchStore;
  storage: ImageStorage;
  /** The configured provider account first, then its fallbacks in order. */
  accounts: readonly ProviderAccount[];
  registry: ModelRegistry;
  queue: JobQueue;
  logger: Logger;
  retryPolicy?: ProviderRetryPolicy;
}

/** Where a rendered image lives: addressed by what was asked, so the same request lands in the same place. */
export const imageKey = (hash: string, index: number, format: string) =>
  `images/${hash.slice(0, 2)}/${hash}/${index}.${format === 'jpeg' ? 'jpg' : format}`;

export function pricedRequest(spec: RenderSpec): PricedRequest {
  return {
    size: spec.size,
    quality: spec.quality,
    n: spec.n,
    promptChars: spec.prompt?.length ?? 0,
    inputImages: (spec.images?.length ?? 0) + (spec.mask ? 1 : 0),
  };
}

/**
 * Renders one item: reserve its maximum price → call the provider (rate-limited, retried)
 * → upload every image to S3 → settle the actual price and record the outcome. Each step's
 * failure has one meaning: retryable errors leave the item queued for the next attempt,
 * everything else ends the item with a reason. Every transition after `running` releases
 * what the item reserved; what the provider billed is always added to the spend.
 */
export function createRenderItemProcessor(deps: RenderItemDeps) {
  return async function renderItem(
    { batchId, itemId, spec }: JobPayload<'render-item'>,
    { attempt, maxAttempts, signal }: AttemptInfo,
  ): Promise<void> {
    const started = Date.now();
    const log = deps.logger.child({ batch: batchId, item: itemId });
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
    const { item, held: heldByDeadRun } = await chargeDeadRun(deps.store, batchId, stored);

    const record = (changes: Partial<ItemRecord>): ItemRecord => ({
      ...item,
      ...changes,
      attempts: attempt,
      updated_at: new Date().toISOString(),
    });
    let settled = false;
    const finish = async (next: ItemRecord, money: { spendMicros?: number }) => {
      const outcome = await deps.store.transition(batchId, next, money);
      settled = true; // from here on the outcome and its money are recorded: never again
      log.info(
        {
          status: next.status,
          model: spec.model,
          n: spec.n,
          cost_usd: microsToUsd(next.cost_micros),
          ms: Date.now() - started,
          attempt,
          error: next.error,
        },
        'item finished',
      );
      if (outcome === 'batch_completed') await queueFinalize(deps, batchId);
    };

    const priced = pricedRequest(spec);
    const candidates = candidatesFor(deps.accounts, spec, priced, deps.registry);
    const primary = candidates[0];
    if (!primary) {
      const error = new ModelUnavailableError(
        `model ${spec.model} is no longer in the registry, and no fallback can render this item`,
      );
      await finish(record({ status: 'failed', error: describe(error) }), {});
      throw new UnrecoverableError(error.message);
    }
    // Enough for whichever account of the chain ends up rendering it; settled to the actual price.
    const maxMicros = Math.max(...candidates.map((c) => c.maxMicros));
    const start = await deps.store.transition(batchId, record({ status: 'running' }), {
      spendMicros: heldByDeadRun,
      releaseReservation: true,
    });
    if (start === 'ignored') {
      // Another run of the same job finished the item since we read it.
      await queueFinalizeIfComplete(deps, batchId);
      return;
    }
    let paidMicros = 0;
    // The provider's own failures were retried inside the call (RENDERMILL_RETRIES, with backoff)
    // and through the fallback chain: once it gives up, the item fails with the last error.
    // Job attempts are for what happens around the call: a crashed worker, Redis or S3 away.
    let providerGaveUp = false;
    try {
      const reservation = await reserveBudget(deps.store, batchId, itemId, maxMicros, signal);
      if (reservation !== 'reserved') {
        const error = new BudgetExceededError(
          reservation === 'exhausted'
            ? `the batch budget cannot hold this item's maximum price of $${microsToUsd(maxMicros)}`
            : `running items held the rest of the budget for over ${RESERVATION_WAIT_MS / 1000} s`,
        );
        await finish(record({ status: 'budget_exceeded', error: describe(error) }), {});
        return;
      }

      const images = await Promise.all(
        (spec.images ?? []).map((ref) => loadInputImage(ref, deps.storage)),
      );
      const mask = spec.mask ? await loadInputImage(spec.mask, deps.storage) : undefined;
      await checkInputImages(primary.model, images, mask);

      const rendered = await renderWithFallbacks(
        candidates,
        { spec, images, mask },
        { policy: deps.retryPolicy, shutdown: signal, log },
      );
      if (!rendered.ok) {
        // Billed but unusable: the money is gone whether or not we can use the result.
        if (rendered.error instanceof PaidResultError) {
          paidMicros = actualCostMicros(rendered.candidate.model, priced, rendered.error.usage);
        }
        providerGaveUp = rendered.error instanceof RendermillError;
        throw rendered.error;
      }
      const { candidate, result } = rendered;
      paidMicros = actualCostMicros(candidate.model, priced, result.usage);

      // The images are paid for: from here on nothing is cut short by a shutdown, and a
      // storage hiccup is retried here rather than by buying the images again.
      const stored: StoredImage[] = [];
      for (const [index, image] of result.images.entries()) {
        const key = imageKey(item.hash, index, image.format);
        await pRetry(
          () =>
            deps.storage.put({
              key,
              body: image.data,
              contentType: CONTENT_TYPES[image.format],
              metadata: {
                'request-hash': item.hash,
                model: candidate.model.id,
                size: spec.size,
                'cost-usd': String(microsToUsd(paidMicros / result.images.length)),
              },
            }),
          { retries: UPLOAD_RETRIES, minTimeout: 200 },
        );
        stored.push({ key, format: image.format, bytes: image.data.length });
      }
      await finish(
        record({
          status: 'succeeded',
          cost_micros: item.cost_micros + paidMicros,
          images: stored,
          rendered_by: { provider: candidate.account.name, model: candidate.model.id },
          error: undefined,
        }),
        { spendMicros: paidMicros },
      );
    } catch (error) {
      if (settled) throw error; // only queueing the manifest failed: the job retry redoes that
      const reason = describe(error);
      // Money the provider already took is spent whatever happens next: never under-count it.
      // Every transition below also releases what the item had reserved.
      const money = { spendMicros: paidMicros };
      const cost_micros = item.cost_micros + paidMicros;
      // A shutdown or a paused account hands the job back without using an attempt.
      const handedBack = error instanceof ShutdownError || error instanceof AccountPausedError;
      if (handedBack || (!providerGaveUp && isRetryable(error) && attempt < maxAttempts)) {
        await deps.store.transition(
          batchId,
          record({ status: 'queued', cost_micros, error: reason }),
          money,
        );
        log.warn({ err: reason, attempt }, 'attempt ended; the job goes back to the queue');
        throw error;
      }
      await finish(record({ status: 'failed', cost_micros, error: reason }), money);
      throw new UnrecoverableError(reason.message);
    }
  };
}

/** The render-item job as workers run it: the processor, and what happens if it never finishes. */
export function createRenderItemHandler(deps: RenderItemDeps): JobHandler<'render-item'> {
  return { process: createRenderItemProcessor(deps), onGiveUp: recordGiveUp(deps) };
}

/**
 * When the queue gives up on a job the processor could not finish (Redis or S3 down for every
 * attempt, a worker that kept dying), the item still gets an outcome: failed, with the reason.
 * An item that already has one is left alone. If it still holds a reservation, its last run
 * died between reserving and settling — perhaps after the provider billed — so the
 * reservation is counted as spent: spend is never under-counted.
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
    const { item: charged, held } = await chargeDeadRun(deps.store, batchId, item);
    const failed: ItemRecord = {
      ...charged,
      status: 'failed',
      error: { code: 'job_failed', message: reason },
      updated_at: new Date().toISOString(),
    };
    const outcome = await deps.store.transition(batchId, failed, { spendMicros: held });
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
    if (outcome === 'batch_completed') await queueFinalize(deps, batchId);
  };
}

/**
 * An item still `running` when a job picks it up (a stalled job re-run, or one given up) had
 * a run that died between reserving and settling — perhaps after the provider billed. What
 * it held is charged to the item, never silently dropped; the caller's transition adds it to
 * the spend and releases it.
 */
async function chargeDeadRun(
  store: BatchStore,
  batchId: string,
  item: ItemRecord,
): Promise<{ item: ItemRecord; held: number }> {
  const held = item.status === 'running' ? await store.reservedBy(batchId, item.id) : 0;
  return { item: { ...item, cost_micros: item.cost_micros + held }, held };
}

/** How long an item waits for in-flight items to settle before it gives up on the budget. */
export const RESERVATION_WAIT_MS = 120_000;
const UPLOAD_RETRIES = 3;

/**
 * Reserves the item's maximum price. When only money held by other running items is in the
 * way, waits for them to settle (they usually cost less than they reserved) instead of giving
 * up; a shutdown cuts the wait short.
 */
async function reserveBudget(
  store: BatchStore,
  batchId: string,
  itemId: string,
  micros: number,
  shutdown: AbortSignal | undefined,
): Promise<ReserveOutcome> {
  const deadline = Date.now() + RESERVATION_WAIT_MS;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2_000)) {
    const outcome = await store.reserve(batchId, itemId, micros);
    if (outcome !== 'wait' || Date.now() > deadline) return outcome;
    await waitUnlessShutdown(pause, shutdown);
  }
}

function describe(error: unknown): { code: string; message: string } {
  if (error instanceof RendermillError) return { code: error.code, message: error.message };
  return {
    code: 'internal_error',
    message: error instanceof Error ? error.message : String(error),
  };
}

async function queueFinalize(deps: Pick<RenderItemDeps, 'queue'>, batchId: string) {
  await deps.queue.add('finalize-batch', { batchId }, `finalize-${batchId}`);
}

async function queueFinalizeIfComplete(deps: RenderItemDeps, batchId: string) {
  const batch = await deps.store.get(batchId);
  if (batch?.status === 'completed' && !batch.manifest_key) await queueFinalize(deps, batchId);
}
