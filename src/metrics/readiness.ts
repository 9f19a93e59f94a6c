import type { Redis } from 'ioredis';
import type { ImageStorage } from '../storage/image-storage.js';
import { fatalError } from './fatal-errors.js';

/** What a process needs reachable to do its work. */
export interface ReadinessProbes {
  /** Pinged with PING. */
  redis: Pick<Redis, 'ping'>;
  /** Asked for its bucket (HeadBucket). */
  storage: Pick<ImageStorage, 'ping'>;
}

export type CheckResult = 'ok' | string;

export interface Readiness {
  ready: boolean;
  /** `ok`, or why the dependency is not ready (`timed out after 2000 ms`, the error). */
  checks: { redis: CheckResult; s3: CheckResult; process?: CheckResult };
}

/** How long each dependency has to answer. */
export const READINESS_TIMEOUT_MS = 2_000;

/**
 * Checks Redis and S3 at once, each within `timeoutMs`. A Redis that is away does not fail a
 * PING by itself (the connections queue commands until it is back), so the time limit is what
 * turns it into an answer.
 */
export async function checkReadiness(
  probes: ReadinessProbes,
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<Readiness> {
  const [redis, s3] = await Promise.all([
    check((_signal) => probes.redis.ping(), timeoutMs),
    check((signal) => probes.storage.ping(signal), timeoutMs),
  ]);
  // A process exiting after an error nothing handled (fatal-errors.ts) takes no more traffic.
  const fatal = fatalError();
  if (fatal !== undefined) return { ready: false, checks: { redis, s3, process: fatal } };
  return { ready: redis === 'ok' && s3 === 'ok', checks: { redis, s3 } };
}

async function check(
  probe: (signal: AbortSignal) => Promise<unknown>,
  timeoutMs: number,
): Promise<CheckResult> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve(`timed out after ${timeoutMs} ms`);
    }, timeoutMs);
  });
  try {
    const answered = probe(abort.signal).then(
      () => 'ok',
      (error: unknown) => describe(error),
    );
    return await Promise.race([answered, late]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The AWS SDK names S3 errors (`NotFound`, `AccessDenied`) and may leave the message empty.
  const detail = error.message || error.name;
  return detail.length > 200 ? `${detail.slice(0, 200)}…` : detail;
}

/** HTTP status and body for `/readyz`: 200 when every check is ok, 503 naming those that failed. */
export function readinessResponse(readiness: Readiness): {
  statusCode: number;
  body: Readiness & { failed?: string[] };
} {
  if (readiness.ready) return { statusCode: 200, body: readiness };
  const failed = Object.entries(readiness.checks)
    .filter(([, result]) => result !== 'ok')
    .map(([name]) => name);
  return { statusCode: 503, body: { ...readiness, failed } };
}
