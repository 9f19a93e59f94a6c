import { UnrecoverableError } from 'bullmq';
import type { BatchStore } from '../../src/batches/batch-store.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import {
  AccountPausedError,
  BatchCancelledError,
  BudgetExceededError,
  ImagesSpooledError,
  PredictionPendingError,
  type ComeBackLaterError,
  ReservationLostError,
  ShutdownError,
  isRetryable,
} from '../../src/errors.js';
import {
  cancelPrediction,
  costSoFar,
  countSpent,
  itemError,
  itemWith,
  storeOrDropSpooled,
  type RenderAttempt,
} from './attempt.js';
import { queueFinalizeIfComplete } from './record.js';
import { waitOnSpooled } from './spooled.js';
import { finish } from './settle.js';
import { HANDED_ON_RECHECK_MS } from './single-flight.js';

/**
 * Settles a run that `error` ended after the item started running, and tells the queue what
 * comes next. Money the provider already took (`run.paidMicros`) is spent whatever happens,
 * and every transition here releases what the item had reserved.
 * - The outcome was already settled (only queueing the manifest failed), or another run owns
 *   the item (ReservationLostError): rethrows and changes nothing.
 * - A queued prediction is still running: its hold is charged as spent, the item stays
 *   `running` with the prediction's handle, the render lock is handed on, and the error is
 *   rethrown for the worker to bring the job back when the prediction is worth checking again.
 * - Paid images wait in the spool (S3 would not take them): the same, with what the provider
 *   billed settled as spent and the spool entry recorded on the item. A run that came back to
 *   store them and met S3 (or Redis) still away hands the job back the same way, one try more.
 * - The batch was cancelled before the call left: the item is cancelled; returns.
 * - A shutdown or a paused account, or an error around the call that a later attempt may not
 *   meet (Redis or S3 away): the item goes back to `queued` and the error is rethrown for the
 *   queue to retry — unless the batch is being cancelled meanwhile (then returns).
 * - Anything else, the provider giving up included: the item ends `failed` (or
 *   `budget_exceeded`) and UnrecoverableError stops the job.
 */
export async function settleFailure(run: RenderAttempt, error: unknown): Promise<void> {
  if (run.settled) throw error; // only queueing the manifest failed: the job retry redoes that
  // Another run owns the item now (it released our reservation): leave everything to it.
  if (error instanceof ReservationLostError) throw error;
  if (error instanceof PredictionPendingError && run.pending) {
    await handBackPending(run, error);
    throw error;
  }
  if (error instanceof ImagesSpooledError && run.spooled) {
    await handBackSpooled(run, error);
    throw error;
  }
  if (run.item.spooled && isRetryable(error)) {
    const again = waitOnSpooled(run, run.item.spooled, error);
    await handBackSpooled(run, again);
    throw again;
  }
  const reason = itemError(error);
  const money = { spendMicros: run.paidMicros, caps: run.caps };
  const cost_micros = costSoFar(run);
  // The batch was cancelled before this item's call left: no call, nothing more to pay.
  if (error instanceof BatchCancelledError) {
    await finish(run, itemWith(run, { status: 'cancelled', cost_micros, error: reason }), money);
    return;
  }
  // A shutdown or a paused account hands the job back without using an attempt.
  const handedBack = error instanceof ShutdownError || error instanceof AccountPausedError;
  if (handedBack || (!run.providerGaveUp && isRetryable(error) && run.attempt < run.maxAttempts)) {
    const back = await run.deps.store.transition(
      run.batchId,
      itemWith(run, { status: 'queued', cost_micros, error: reason }),
      money,
    );
    countSpent(run, money.spendMicros);
    if (back === 'cancelled') {
      // Its batch is being cancelled: the item was cancelled instead, and the job ends.
      run.metrics.itemFinished({ status: 'cancelled', model: run.spec.model, images: {} });
      await queueFinalizeIfComplete(run.deps, run.batchId);
      return;
    }
    run.log.warn(
      { err: reason, attempt: run.attempt },
      'attempt ended; the job goes back to the queue',
    );
    throw error;
  }
  const status = error instanceof BudgetExceededError ? 'budget_exceeded' : 'failed';
  await finish(run, itemWith(run, { status, cost_micros, error: reason }), money);
  throw new UnrecoverableError(reason.message);
}

/**
 * Records the queued prediction on the item, still `running`. What the item held is charged as
 * spent first: the prediction will be billed, and from here on the item may be cancelled, its
 * route removed or its job given up before anyone collects it — the money is counted whatever
 * happens (a prediction that then fails unbilled stays counted: never less than was paid).
 */
async function handBackPending(run: RenderAttempt, error: PredictionPendingError): Promise<void> {
  const charged = await run.deps.store.chargeHold(run.batchId, run.itemId);
  countSpent(run, charged);
  run.unansweredMicros += charged;
  const pending = { ...run.pending!, charged_micros: run.pending!.charged_micros + charged };
  if (!(await handBack(run, { pending }, {}, error))) {
    // Its batch is being cancelled: nobody will collect it; stop it at the provider.
    await cancelPrediction(run, pending);
    await queueFinalizeIfComplete(run.deps, run.batchId);
    return;
  }
  run.log.info(
    {
      route: pending.route,
      prediction: pending.prediction.id,
      recheck_in_ms: Math.max(0, error.recheckAt - Date.now()),
    },
    'queued prediction still running; the job comes back to follow it',
  );
}

/**
 * Records the spooled images on the item, still `running`, with what the provider billed for
 * them settled as spent — once: the run that uploads them later adds nothing — and what the
 * item held released.
 */
async function handBackSpooled(run: RenderAttempt, error: ImagesSpooledError): Promise<void> {
  const spooled = run.spooled!;
  const money = { spendMicros: run.paidMicros, releaseReservation: true, caps: run.caps };
  const stillRunning = await handBack(run, { spooled }, money, error);
  countSpent(run, money.spendMicros);
  if (!stillRunning) {
    await storeOrDropSpooled(run, spooled);
    await queueFinalizeIfComplete(run.deps, run.batchId);
    return;
  }
  run.log.warn(
    {
      entry: spooled.entry,
      tries: spooled.tries,
      recheck_in_ms: Math.max(0, error.recheckAt - Date.now()),
      err: error.message,
    },
    'paid images wait in the spool; the job comes back to upload them',
  );
}

/**
 * Hands the job back with what the item paid for and has yet to finish (`changes`): the item
 * stays `running` with it, and its outcome is settled for this run. The render lock is handed
 * on until well after the job comes back, marked so that items waiting for the same request
 * go back to the queue rather than hold a slot or buy it again. Returns false when the batch
 * is being cancelled: the item was cancelled instead and the lock released.
 */
async function handBack(
  run: RenderAttempt,
  changes: Pick<ItemRecord, 'pending' | 'spooled'>,
  money: Parameters<BatchStore['transition']>[2],
  error: ComeBackLaterError,
): Promise<boolean> {
  const outcome = await run.deps.store.transition(
    run.batchId,
    itemWith(run, { status: 'running', ...changes, cost_micros: costSoFar(run) }),
    money,
  );
  run.settled = true;
  if (outcome === 'cancelled') {
    await run.lease?.release();
    return false;
  }
  await run.lease?.handOff(
    Math.max(0, error.recheckAt - Date.now()) + HANDED_ON_LOCK_MS,
    HANDED_ON_RECHECK_MS,
  );
  return true;
}

/**
 * How long a handed-on render lock outlives the next check: enough for the job to come back
 * through a busy queue. Waiters do not hold a slot meanwhile (they go back to the queue).
 */
const HANDED_ON_LOCK_MS = 10 * 60_000;
