import type { CachedImage } from '../../src/cache/result-cache.js';
import type { ItemWarning, PendingRender } from '../../src/contracts/batch-records.js';
import {
  ImagesSpooledError,
  PaidResultError,
  PredictionPendingError,
  RendermillError,
} from '../../src/errors.js';
import type { AnswerHold } from '../../src/limits/answer-budget.js';
import type { RenderSpec } from '../../src/models/render-spec.js';
import type { RenderedImage } from '../../src/providers/image-provider.js';
import { convertImage } from '../../src/render/convert-format.js';
import { checkInputImages } from '../../src/render/input-images.js';
import { renderWithFallbacks } from '../../src/render/render-with-fallbacks.js';
import { costOn } from '../../src/render/route-candidates.js';
import { storeRendered } from '../../src/render/store-images.js';
import { spoolSlot, type RenderAttempt } from './attempt.js';
import type { RenderRequest } from './render-request.js';
import { reservationHooks, type Purchase } from './reserve.js';

/**
 * Call and store: checks the inputs against the first route's model, asks the routes in the
 * item's order for the `missing` variants (rate-limited, retried with backoff, falling back;
 * `reservationHooks` keep the ledger in step with every request) — or follows the queued
 * prediction the item already started — prices what was billed at the route's price, converts
 * images the route could not produce in the asked format, and uploads them as those variants,
 * with their derived copies, to S3 (indexed by `indexHeld` when the item settles). Returns the stored images. When the
 * routes give up it throws the last error, with `run.providerGaveUp` set for a provider's own
 * failure and `run.paidMicros` for a billed but unusable result; a prediction still running
 * is left in `run.pending`, and images S3 would not take in `run.spooled` (they wait in the
 * spool), for the job to come back to.
 */
export async function callAndStore(
  run: RenderAttempt,
  request: RenderRequest,
  purchase: Purchase,
  missing: number[],
  pending?: PendingRender,
): Promise<CachedImage[]> {
  const { images, mask } = request;
  await checkInputImages(purchase.primary.model, images, mask);
  // The answer's room in the process's budget, taken when the answer is read: released here
  // whatever happens next — stored, spooled, failed, handed back — or the budget shrinks for good.
  const hold = run.deps.answerBudget?.hold();
  try {
    return await renderAndStore(run, request, purchase, missing, pending, hold);
  } finally {
    hold?.release();
  }
}

/** callAndStore's work, every provider call of it reading its answer under `hold`. */
async function renderAndStore(
  run: RenderAttempt,
  request: RenderRequest,
  purchase: Purchase,
  missing: number[],
  pending: PendingRender | undefined,
  hold: AnswerHold | undefined,
): Promise<CachedImage[]> {
  const { images, mask } = request;
  const outcome = await renderWithFallbacks(
    purchase.candidates,
    { spec: purchase.ask, images, mask, hold },
    {
      policy: run.deps.retryPolicy,
      shutdown: run.signal,
      log: run.log,
      metrics: run.metrics,
      load: run.deps.routeLoad,
      onRateLimit: run.routing === 'cheapest' ? 'wait' : 'fall-back',
      resume: pending && { prediction: pending.prediction, images: pending.images },
      ...reservationHooks(run, purchase),
    },
  );
  if (!outcome.ok) {
    const { candidate, error } = outcome;
    if (error instanceof PredictionPendingError) {
      run.pending = {
        route: candidate.route.name,
        model: candidate.model.id,
        prediction: error.prediction,
        variants: missing,
        images: error.images ?? purchase.ask.n,
        // Filled in when the hold is charged, at the hand-back (settle-failure.ts).
        charged_micros: pending?.charged_micros ?? 0,
        lock_token: run.lease?.token,
      };
      throw error;
    }
    // Billed but unusable: the money is gone whether or not we can use the result.
    if (error instanceof PaidResultError) {
      run.paidMicros = beyondCharged(costOn(candidate, purchase.priced, error.usage), pending);
    }
    // A followed prediction that failed was not billed beyond what its hand-back counted: the
    // item goes back to the queue, to be tried afresh on every route.
    run.providerGaveUp = error instanceof RendermillError && !pending;
    throw error;
  }
  const { candidate, result } = outcome;
  run.paidMicros = beyondCharged(costOn(candidate, purchase.priced, result.usage), pending);
  run.item.rendered_by = {
    provider: candidate.route.name,
    kind: candidate.route.provider.kind,
    model: candidate.model.id,
    ...(candidate.remote !== candidate.model.id && { remote_model: candidate.remote }),
  };
  // The images are paid for: from here on nothing is cut short by a shutdown, and a
  // storage hiccup is retried on the spot rather than by buying the images again.
  const delivered = await inAskedFormat(result.images, purchase.ask);
  run.item.warnings = mergeWarnings(run.item.warnings, [
    ...outcome.warnings,
    ...delivered.warnings,
  ]);
  const slot = spoolSlot(run);
  try {
    return await storeRendered(
      request.target,
      delivered.images,
      missing,
      { paidMicros: run.paidMicros, model: candidate.model.id },
      run.rules.derive,
      slot,
    );
  } catch (error) {
    if (error instanceof ImagesSpooledError) {
      run.spooled = {
        entry: slot.entry,
        variants: missing,
        tries: 1,
        since: new Date().toISOString(),
        lock_token: run.lease?.token,
      };
    }
    throw error;
  }
}

/**
 * The images in the format the item asked for: a route that could not produce it rendered its
 * own, converted here with sharp — said on the item, unless its submission already said so.
 */
async function inAskedFormat(
  images: RenderedImage[],
  ask: RenderSpec,
): Promise<{ images: RenderedImage[]; warnings: ItemWarning[] }> {
  const wanted = ask.output_format;
  if (!wanted || images.every((image) => image.format === wanted)) return { images, warnings: [] };
  const from = images.find((image) => image.format !== wanted)!.format;
  return {
    images: await Promise.all(
      images.map((image) => convertImage(image, wanted, ask.output_compression)),
    ),
    warnings: [
      {
        field: 'output_format',
        asked: wanted,
        done: `rendered as ${from} and converted with sharp`,
        message: `the route returned ${from}; the image was converted to ${wanted} with sharp`,
      },
    ],
  };
}

/** The item's warnings with `more`, one per field and what was done. */
function mergeWarnings(
  known: ItemWarning[] | undefined,
  more: ItemWarning[],
): ItemWarning[] | undefined {
  const all = [...(known ?? [])];
  for (const warning of more) {
    if (!all.some((w) => w.field === warning.field && w.done === warning.done)) all.push(warning);
  }
  return all.length > 0 ? all : undefined;
}

/** What a render cost beyond what its prediction's hand-back already counted as spent. */
const beyondCharged = (micros: number, pending: PendingRender | undefined) =>
  Math.max(0, micros - (pending?.charged_micros ?? 0));
