import { UnrecoverableError } from 'bullmq';
import {
  AccountPausedError,
  BatchCancelledError,
  BudgetExceededError,
  PredictionPendingError,
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
  type RenderAttempt,
} from './attempt.js';
import { queueFinalizeIfComplete } from './record.js';
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
 * The render lock is handed on until well after the next check, marked so that items
 * waiting for the same request go back to the queue rather than hold a slot or buy it again.
 */
async function handBackPending(run: RenderAttempt, error: PredictionPendingError): Promise<void> {
  const charged = await run.deps.store.chargeHold(run.batchId, run.itemId);
  countSpent(run, charged);
  run.unansweredMicros += charged;
  const pending = { ...run.pending!, charged_micros: run.pending!.charged_micros + charged };
  const cost_micros = costSoFar(run);
  const outcome = await run.deps.store.transition(
    run.batchId,
    itemWith(run, { status: 'running', pending, cost_micros }),
    {},
  );
  run.settled = true;
  const untilNextCheck = Math.max(0, error.recheckAt - Date.now());
  if (outcome === 'cancelled') {
    // Its batch is being cancelled: nobody will collect it; stop it at the provider.
    await run.lease?.release();
    await cancelPrediction(run, pending);
    await queueFinalizeIfComplete(run.deps, run.batchId);
    return;
  }
  await run.lease?.handOff(untilNextCheck + HANDED_ON_LOCK_MS, HANDED_ON_RECHECK_MS);
  run.log.info(
    { route: pending.route, prediction: pending.prediction.id, recheck_in_ms: untilNextCheck },
    'queued prediction still running; the job comes back to follow it',
  );
}

/**
 * How long a handed-on render lock outlives the next check: enough for the job to come back
 * through a busy queue. Waiters do not hold a slot meanwhile (they go back to the queue).
 */
const HANDED_ON_LOCK_MS = 10 * 60_000;
