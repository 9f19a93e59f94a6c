import type { CachedImage } from '../../src/cache/result-cache.js';
import { PaidResultError, RendermillError } from '../../src/errors.js';
import { actualCostMicros } from '../../src/models/pricing.js';
import { checkInputImages } from '../../src/render/input-images.js';
import { renderWithFallbacks } from '../../src/render/render-with-fallbacks.js';
import { storeRendered } from '../../src/render/store-images.js';
import type { RenderAttempt } from './attempt.js';
import type { RenderRequest } from './render-request.js';
import { reservationHooks, type Purchase } from './reserve.js';

/**
 * Call and store: checks the inputs against the primary model's rules, asks the chain of
 * accounts for the `missing` variants (rate-limited, retried with backoff, falling back;
 * `reservationHooks` keep the ledger in step with every request), prices what was billed and
 * uploads the images as those variants, with their derived copies, to S3 and the cache index.
 * Returns the stored images. When the chain gives up it throws its last error, with
 * `run.providerGaveUp` set for a provider's own failure and `run.paidMicros` set for a billed
 * but unusable result.
 */
export async function callAndStore(
  run: RenderAttempt,
  request: RenderRequest,
  purchase: Purchase,
  missing: number[],
): Promise<CachedImage[]> {
  const { images, mask } = request;
  await checkInputImages(purchase.primary.model, images, mask);
  const outcome = await renderWithFallbacks(
    purchase.candidates,
    { spec: purchase.ask, images, mask },
    {
      policy: run.deps.retryPolicy,
      shutdown: run.signal,
      log: run.log,
      metrics: run.metrics,
      ...reservationHooks(run, purchase),
    },
  );
  if (!outcome.ok) {
    // Billed but unusable: the money is gone whether or not we can use the result.
    if (outcome.error instanceof PaidResultError) {
      run.paidMicros = actualCostMicros(
        outcome.candidate.model,
        purchase.priced,
        outcome.error.usage,
      );
    }
    run.providerGaveUp = outcome.error instanceof RendermillError;
    throw outcome.error;
  }
  const { candidate, result } = outcome;
  run.paidMicros = actualCostMicros(candidate.model, purchase.priced, result.usage);
  run.item.rendered_by = { provider: candidate.account.name, model: candidate.model.id };
  // The images are paid for: from here on nothing is cut short by a shutdown, and a
  // storage hiccup is retried on the spot rather than by buying the images again.
  return storeRendered(
    request.target,
    result.images,
    missing,
    { paidMicros: run.paidMicros, model: candidate.model.id },
    run.rules.derive,
  );
}
