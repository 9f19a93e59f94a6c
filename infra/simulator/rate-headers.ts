import { RATE_DIMENSIONS, type SimulatorKnobs } from './knobs.js';
import type { LimitsView, Refusal } from './rate-limits.js';
import { SimulatedError } from './simulated-error.js';

/** OpenAI's duration format in rate-limit headers: 120ms, 1s, 6m0s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const seconds = Math.ceil(ms / 100) / 10;
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${Math.round(seconds % 60)}s`;
}

/**
 * The `x-ratelimit-{limit,remaining,reset}-{requests,images,tokens}` headers the `rateHeaders`
 * knob asks for, from the limits as the answered request saw them. A family whose dimension is
 * unlimited sends none. The `requests` family reports the requests limit when there is one,
 * else the images limit: OpenAI-compatible image providers often call their images limit that.
 */
export function rateLimitHeaders(
  view: LimitsView,
  choice: SimulatorKnobs['rateHeaders'],
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const family of choice.families) {
    const seen = family === 'requests' ? (view.requests ?? view.images) : view[family];
    if (!seen) continue;
    const values = {
      limit: String(seen.perMinute),
      remaining: String(seen.remaining),
      reset: formatDuration(seen.msUntilFull),
    };
    for (const field of choice.fields) headers[`x-ratelimit-${field}-${family}`] = values[field];
  }
  return headers;
}

/** A refused request, with the knobs that decide its 429's headers. */
export interface RateLimitRefusal extends Refusal {
  view: LimitsView;
  retryHeaders: SimulatorKnobs['retryHeaders'];
  rateHeaders: SimulatorKnobs['rateHeaders'];
}

/**
 * The 429 `rate_limit_exceeded` of a refused request, naming the dimension that refused it.
 * Its `x-ratelimit-limit/remaining-*` are those `rateHeaders` asks for; its wait hints
 * (`retry-after-ms`, `retry-after`, `x-ratelimit-reset-requests` set to the wait) are those
 * `retryHeaders` keeps, so a test can check how a client copes with each one missing. The
 * other `x-ratelimit-reset-*` stay only where `retryHeaders` keeps `x-ratelimit-reset-requests`:
 * a client reading resets as wait hints must not find one that `retryHeaders` took away.
 */
export function rateLimitExceeded(refusal: RateLimitRefusal): SimulatedError {
  const { waitMs, dimension, weight, allowance, perMinute, retryHeaders: choice } = refusal;
  const headers = rateLimitHeaders(refusal.view, refusal.rateHeaders);
  // A request that can never fit still gets a finite hint, as clients expect a number.
  const finite = Number.isFinite(waitMs) ? waitMs : 60_000;
  if (choice === 'all' || choice === 'x-ratelimit-reset-requests') {
    headers['x-ratelimit-reset-requests'] = formatDuration(finite);
  } else {
    for (const family of RATE_DIMENSIONS) delete headers[`x-ratelimit-reset-${family}`];
  }
  if (choice === 'all' || choice === 'retry-after-ms') headers['retry-after-ms'] = String(finite);
  if (choice === 'all' || choice === 'retry-after')
    headers['retry-after'] = String(Math.ceil(finite / 1000));
  const message = Number.isFinite(waitMs)
    ? `Rate limit reached for ${dimension} per minute: limit ${perMinute}. Please try again in ${formatDuration(finite)}.`
    : `Request for ${weight} ${dimension} exceeds the ${allowance} ${dimension} this limit allows at once (${dimension} per minute: limit ${perMinute}), so it can never fit.`;
  return new SimulatedError(429, 'requests', 'rate_limit_exceeded', message, null, headers);
}
