import { BudgetExceededError, ModelUnavailableError } from '../../src/errors.js';
import { describeCap } from '../../src/ledger/spend-caps.js';
import { microsToUsd, pricedRequest, type PricedRequest } from '../../src/models/pricing.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import {
  batchCandidatesFor,
  candidatesFor,
  orderCandidates,
  type Candidate,
} from '../../src/render/route-candidates.js';
import { countSpent, itemError, itemWith, missingVariants, type RenderAttempt } from './attempt.js';
import type { PendingRender } from '../../src/contracts/batch-records.js';
import { RESERVATION_WAIT_MS } from '../../src/ledger/spend-ledger.js';
import { finish } from './settle.js';

/** What the run buys, from whom, and the most it may cost. */
export interface Purchase {
  /** The item's request for the missing variants only: only those are bought. */
  ask: RenderSpec;
  priced: PricedRequest;
  /** The routes that may render it, in the order the item's routing tries them. */
  candidates: readonly Candidate[];
  primary: Candidate;
  /** What the item holds reserved now: the price on the route about to be called. */
  heldMicros: number;
}

/**
 * A reservation sent in the round trip that starts the item running (after the start, on the
 * same connection): the price of the variants the item's first look at the cache missed, on
 * the route its routing puts first. Most items buy exactly that, and `reserve` then needs no
 * round trip of its own. Held only if the start left the item running (reserve.lua checks, in
 * the same round trip): an item that did not start holds nothing.
 */
export interface EarlyHold {
  micros: number;
  /** Whether the hold was taken; false when the budget said wait or no, or Redis failed. */
  reserved: Promise<boolean>;
}

/**
 * Sends the early reservation of a realtime item whose first look at the cache missed. To be
 * called in the same tick as the item's start, after it. Undefined when there is nothing to
 * send: another mode, no first look, or no route (`reserve` names that error later).
 */
export function reserveEarly(run: RenderAttempt): EarlyHold | undefined {
  const firstLook = run.firstLook;
  if (run.mode !== 'realtime' || !firstLook) return undefined;
  let micros: number;
  try {
    micros = choosePurchase(run, missingVariants(run, firstLook), 'realtime').heldMicros;
  } catch {
    return undefined;
  }
  const reserved = run.deps.store
    .reserve(run.batchId, run.itemId, micros, run.caps, { onlyIfRunning: true })
    .then((result) => result.outcome === 'reserved');
  reserved.catch(() => undefined); // awaited by whoever uses or drops the hold
  return { micros, reserved };
}

/**
 * Releases an early hold while the item waits for another renderer of its request, whose own
 * reservation this one might be keeping out. Best effort: a hold left is released by the
 * item's next transition. A hold already marked calling (a stalled run of the same item,
 * still alive, took it for its call) is left for that call.
 */
export async function dropEarlyHold(run: RenderAttempt, early: EarlyHold | undefined) {
  if (!early || !(await early.reserved.catch(() => false))) return;
  await run.deps.store.releaseHold(run.batchId, run.itemId).catch(() => 0);
}

/**
 * Reserve: finds the routes that can render the `missing` variants, orders them as the item's
 * routing says (priority, cheapest, spread), and reserves the price on the first against the
 * batch's budget and every spend cap, waiting a while for running items to settle when only
 * their holds are in the way — unless the early hold (`reserveEarly`) already holds that very
 * price. A later, dearer route reserves its own price before it is
 * called (`reservationHooks`). Returns nothing when the budget cannot hold it: the item is
 * then recorded `budget_exceeded`. Throws ModelUnavailableError when no route can render it.
 */
export async function reserve(
  run: RenderAttempt,
  missing: readonly number[],
  through: 'realtime' | 'provider_batch' = 'realtime',
  early?: EarlyHold,
): Promise<Purchase | undefined> {
  const purchase = choosePurchase(run, missing, through);
  const maxMicros = purchase.heldMicros;
  // The early hold is the same price (the same variants, the same route or an equal one).
  if (
    through === 'realtime' &&
    early?.micros === maxMicros &&
    (await early.reserved.catch(() => false))
  ) {
    return purchase;
  }
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
  return purchase;
}

/**
 * What buying the `missing` variants means: the routes that can render them in the order the
 * item's routing tries them, and the price to hold on the first. Throws ModelUnavailableError
 * when no route can render them.
 */
function choosePurchase(
  run: RenderAttempt,
  missing: readonly number[],
  through: 'realtime' | 'provider_batch',
): Purchase {
  const ask: RenderSpec = { ...run.spec, n: missing.length };
  const priced = pricedRequest(ask);
  const { routes, registry } = run.deps;
  // A provider batch is bought from the cheapest Batch API; realtime, as the routing says.
  const candidates =
    through === 'provider_batch'
      ? orderCandidates(
          batchCandidatesFor(routes, ask, priced, registry),
          'cheapest',
          run.deps.routeLoad,
        )
      : orderCandidates(
          candidatesFor(routes, ask, priced, registry),
          run.routing,
          run.deps.routeLoad,
        );
  const primary = candidates[0];
  if (!primary) {
    throw new ModelUnavailableError(
      through === 'provider_batch'
        ? `no route offers model ${run.spec.model} through its Batch API for this item (provider_batch mode takes generations of GPT Image models on routes with batch_api)`
        : `no route can render model ${run.spec.model} for this item (none serves it, or it is no longer in the registry)`,
    );
  }
  return { ask, priced, candidates, primary, heldMicros: primary.maxMicros };
}

/**
 * The purchase of an item that is following a queued prediction: the route it was submitted
 * to. Nothing is held: the hand-back charged the hold as spent (settle-failure.ts), and a later
 * call of a split item reserves its own price before it leaves (`reservationHooks`). Throws
 * ModelUnavailableError if that route is no longer configured: nobody else can collect it.
 */
export function resumePurchase(
  run: RenderAttempt,
  missing: readonly number[],
  pending: PendingRender,
): Purchase {
  const ask: RenderSpec = { ...run.spec, n: missing.length };
  const priced = pricedRequest(ask);
  const routes = run.deps.routes.filter((route) => route.name === pending.route);
  const primary = candidatesFor(routes, ask, priced, run.deps.registry)[0];
  if (!primary) {
    throw new ModelUnavailableError(
      `route "${pending.route}" that runs this item's prediction ${pending.prediction.id} is no longer configured`,
    );
  }
  return { ask, priced, candidates: [primary], primary, heldMicros: 0 };
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
    beforeCall: async (candidate: Candidate) => {
      // A dearer route than the one reserved for (the cheaper one gave up) holds its own price.
      if (run.holdCharged || candidate.maxMicros > purchase.heldMicros) {
        const again = await reserveBudgetFor(run, candidate.maxMicros);
        if (again.outcome !== 'reserved') {
          throw new BudgetExceededError(
            run.holdCharged
              ? `a request that got no answer was counted as spent ($${microsToUsd(run.unansweredMicros)}), ` +
                  `and ${describeCap(again.cap ?? 'batch')} cannot hold another try`
              : `route "${candidate.route.name}" costs $${microsToUsd(candidate.maxMicros)} for this item, ` +
                  `more than ${describeCap(again.cap ?? 'batch')} can hold`,
          );
        }
        purchase.heldMicros = candidate.maxMicros;
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
