import type { ProviderRateReport, RateFigures } from '../errors.js';
import { parseDuration, retryAfterMs } from './retry-after.js';

const FAMILIES = ['requests', 'images', 'tokens'] as const;

/**
 * Reads OpenAI-style rate-limit headers, which providers send on every answer, not only on
 * 429s: `x-ratelimit-limit-{requests,images,tokens}` (per minute),
 * `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` (durations such as `6m0s`, `1.5s`,
 * `120ms`). A header that is missing or not a number is left out.
 */
export function rateReport(
  headers: Headers | undefined,
  outcome: { refused: boolean; tokensUsed?: number | undefined },
): ProviderRateReport {
  const limits: RateFigures = {};
  const remaining: RateFigures = {};
  const resetMs: RateFigures = {};
  if (headers) {
    for (const family of FAMILIES) {
      const limit = wholeNumber(headers.get(`x-ratelimit-limit-${family}`));
      if (limit !== undefined && limit > 0) limits[family] = limit;
      const left = wholeNumber(headers.get(`x-ratelimit-remaining-${family}`));
      if (left !== undefined) remaining[family] = left;
      const reset = parseDuration(headers.get(`x-ratelimit-reset-${family}`));
      if (reset !== undefined) resetMs[family] = reset;
    }
  }
  return {
    refused: outcome.refused,
    limits,
    remaining,
    resetMs,
    retryAfterMs: outcome.refused ? retryAfterMs(headers) : undefined,
    tokensUsed: outcome.tokensUsed,
  };
}

function wholeNumber(text: string | null): number | undefined {
  if (text === null || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}
