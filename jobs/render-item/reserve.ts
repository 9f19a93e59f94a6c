import { BudgetExceededError, ModelUnavailableError } from '../../src/errors.js';
import { describeCap } from '../../src/ledger/spend-caps.js';
import { microsToUsd, pricedRequest, type PricedRequest } from '../../src/models/pricing.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import { candidatesFor, type Candidate } from '../../src/render/render-with-fallbacks.js';
import { countSpent, itemError, itemWith, type RenderAttempt } from './attempt.js';
import { RESERVATION_WAIT_MS } from '../../src/ledger/spend-ledger.js';
import { finish } from './settle.js';

/** What the run buys, from whom, and the most it may cost. */
export interface Purchase {
  /** The item's request for the missing variants only: only those are bought. */
  ask: RenderSpec;
  priced: PricedRequest;
  /** The accounts that may render it, in order; `primary` first. */
  candidates: readonly Candidate[];
  primary: Candidate;
  /** Enough for whichever account of the chain ends up rendering it: what is reserved. */
  maxMicros: number;
}

/**
 * Reserve: prices the `missing` variants on every account that can render them and reserves
 * the highest price against the batch's budget and every spend cap, waiting a while for
 * running items to settle when only their holds are in the way. Returns nothing when the
 * budget cannot hold it: the item is then recorded `budget_exceeded`. Throws
 * ModelUnavailableError when no account of the chain can render the item.
 */
export async function reserve(
  run: RenderAttempt,
  missing: readonly number[],
): Promise<Purchase | undefined> {
  const ask: RenderSpec = { ...run.spec, n: missing.length };
  const priced = pricedRequest(ask);
  const candidates = candidatesFor(run.deps.accounts, ask, priced, run.deps.registry);
  const primary = candidates[0];
  if (!primary) {
    throw new ModelUnavailableError(
      `model ${run.spec.model} is no longer in the registry, and no fallback can render this item`,
    );
  }
  const maxMicros = Math.max(...candidates.map((c) => c.maxMicros));
  const reservation = await reserveBudgetFor(run, maxMicros);
  if (reservation.outcome !== 'reserved') {
    const error = new BudgetExceededError(
      reservation.outcome === 'exhausted'
        ? `${describeCap(reservation.cap ?? 'batch')} cannot hold this item's maximum price of $${microsToUsd(maxMicros)}`
        : `running items held the rest of ${describeCap(reservation.cap ?? 'batch')} for over ${RESERVATION_WAIT_MS / 1000} s`,
    );
    await finish(run, itemWith(run, { status: 'budget_exceeded', error: itemError(error) }), {});
    return undefined;
  }
  return { ask, priced, candidates, primary, maxMicros };
}

/**
 * The ledger's side of each provider request. From the moment a request leaves, the
 * reservation is money at stake: if this worker dies, it counts as spent. A request that
 * gets no answer (a timeout, a cut connection) may have been billed, so what the item held is
 * spent; the next request (a retry, or a fallback) needs a reservation of its own first — or
 * it is not made (BudgetExceededError).
 */
export function reservationHooks(run: RenderAttempt, purchase: Purchase) {
  return {
    beforeCall: async () => {
      if (run.holdCharged) {
        const again = await reserveBudgetFor(run, purchase.maxMicros);
        if (again.outcome !== 'reserved') {
          throw new BudgetExceededError(
            `a request that got no answer was counted as spent ($${microsToUsd(run.unansweredMicros)}), ` +
              `and ${describeCap(again.cap ?? 'batch')} cannot hold another try`,
          );
        }
        run.holdCharged = false;
      }
      await run.deps.store.markCalling(run.batchId, run.itemId);
    },
    afterUnansweredCall: async () => {
      const charged = await run.deps.store.chargeHold(run.batchId, run.itemId);
      countSpent(run, charged);
      run.unansweredMicros += charged;
      run.holdCharged = true;
    },
  };
}

const reserveBudgetFor = (run: RenderAttempt, micros: number) =>
  run.deps.store.reserveWithin(run.batchId, run.itemId, micros, run.caps, run.signal);
