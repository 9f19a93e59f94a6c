import { setTimeout as sleep } from 'node:timers/promises';
import { ShutdownError } from '../errors.js';

export interface BackoffPolicy {
  /** First wait, doubled each retry. */
  minTimeoutMs: number;
  /** Longest single wait, also the cap on a provider's retry-after. */
  maxTimeoutMs: number;
}

/**
 * Exponential backoff with jitter: retry k (from 1) waits between 1× and 2× of
 * min · 2^(k−1), capped at max. Jitter keeps workers that failed together from returning
 * together.
 */
export function backoffDelayMs(
  retry: number,
  policy: BackoffPolicy,
  random = Math.random(),
): number {
  const base = policy.minTimeoutMs * 2 ** Math.max(0, retry - 1);
  return Math.round(Math.min(policy.maxTimeoutMs, base * (1 + random)));
}

/** Waits, unless the worker shuts down first: then throws ShutdownError. */
export async function waitUnlessShutdown(
  ms: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    throw new ShutdownError();
  }
}
