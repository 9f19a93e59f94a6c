import { PaidResultError, PredictionPendingError } from '../errors.js';
import type { PendingPrediction } from './image-provider.js';

/**
 * How long a queued prediction is followed before rendermill stops waiting for it: Replicate
 * deletes a prediction's outputs an hour after it ends and fal its results, so one that has
 * not ended an hour after it was submitted will not be collected.
 */
export const MAX_PREDICTION_AGE_MS = 60 * 60_000;

/**
 * What to throw for a prediction that exists but has not been collected yet: once an id
 * exists, every way out is either "follow it again later" (PredictionPendingError, which keeps
 * the handle) or "it is paid and lost" (PaidResultError) — never an error that would let
 * the item be submitted a second time. Past MAX_PREDICTION_AGE_MS it is the latter.
 */
export function notCollectedYet(
  provider: string,
  prediction: PendingPrediction,
  why: string,
  recheckMs: number,
): PredictionPendingError | PaidResultError {
  if (Date.now() - prediction.submittedAt > MAX_PREDICTION_AGE_MS) {
    return new PaidResultError(
      `${provider} prediction ${prediction.id} ${why}, and it was submitted over an hour ago: ` +
        'rendermill stops waiting for it (counted as paid)',
    );
  }
  return new PredictionPendingError(
    `${provider} prediction ${prediction.id} ${why}; following it again later`,
    prediction,
    Date.now() + recheckMs,
  );
}
