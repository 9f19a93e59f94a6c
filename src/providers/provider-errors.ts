import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import {
  ModelUnavailableError,
  ProviderAuthError,
  ProviderQuotaError,
  ProviderRateLimitedError,
  ProviderRejectedError,
  ProviderUnavailableError,
  RendermillError,
} from '../errors.js';
import { rateReport } from './rate-limit-headers.js';

/** Codes of a 429 that mean "no more money/quota", which waiting does not cure. */
const QUOTA_CODES = new Set([
  'insufficient_quota',
  'billing_hard_limit_reached',
  'billing_not_active',
  'spend_limit_exceeded',
  'access_terminated',
]);

/** Codes of a 400 that refuse the content itself: the item fails with the provider's reason. */
const CONTENT_CODES = new Set(['content_policy_violation', 'moderation_blocked']);

/** Connection failures that happen before a request can leave: it was certainly not billed. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

function neverConnected(error: Error): boolean {
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_SENT_CODES.has(code)) return true;
  }
  return false;
}

/**
 * Translates what the openai SDK threw into rendermill's typed errors. Anything we cannot
 * classify is treated as transient (retried a bounded number of times), never as success.
 */
export function toProviderError(error: unknown): RendermillError | Error {
  if (error instanceof RendermillError) return error;
  if (error instanceof APIUserAbortError) return error;
  if (error instanceof APIConnectionError) {
    return new ProviderUnavailableError(
      `provider unreachable: ${error.message}`,
      error instanceof APIConnectionTimeoutError || !neverConnected(error),
    );
  }
  if (!(error instanceof APIError)) return error as Error;

  const code =
    error.code ?? (error.type === 'insufficient_quota' ? 'insufficient_quota' : undefined);
  return errorForStatus(error.status ?? 0, code ?? undefined, error.message, error.headers);
}

/**
 * The typed error for a provider's HTTP failure, whatever its API: the status decides, and
 * the provider's error code where it gives one (`insufficient_quota`, `moderation_blocked` …).
 * Adapters that speak HTTP themselves (Replicate, fal) call this with what they read.
 */
export function errorForStatus(
  status: number,
  code: string | undefined,
  message: string,
  headers: Headers | undefined,
): RendermillError {
  if (status === 429) {
    if (code && QUOTA_CODES.has(code)) return new ProviderQuotaError(`${code}: ${message}`);
    return new ProviderRateLimitedError(message, rateReport(headers, { refused: true }));
  }
  if (status === 402) return new ProviderQuotaError(`payment required (402): ${message}`);
  if (status === 401 || status === 403) {
    return new ProviderAuthError(`provider refused the API key (${status}): ${message}`);
  }
  if (status === 404 || code === 'model_not_found') {
    return new ModelUnavailableError(`model retired or unknown to the provider: ${message}`);
  }
  if (code && CONTENT_CODES.has(code)) return new ProviderRejectedError(message, code);
  if (status === 408 || status === 409 || status >= 500) {
    return new ProviderUnavailableError(`provider error ${status}: ${message}`);
  }
  return new ProviderRejectedError(message, code ?? `provider_http_${status}`);
}

/**
 * The typed error for a `fetch` that got no answer: refused or unresolvable connections were
 * certainly not billed; a reset or a timeout may have been.
 */
export function errorForNoAnswer(error: unknown, what: string): RendermillError | Error {
  if (error instanceof RendermillError) return error;
  if (!(error instanceof Error)) return new ProviderUnavailableError(`${what}: ${String(error)}`);
  const timedOut = error.name === 'TimeoutError' || error.name === 'AbortError';
  return new ProviderUnavailableError(
    `${what}: ${error.message}`,
    timedOut || !neverConnected(error),
  );
}
