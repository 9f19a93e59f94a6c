import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Whether an `Authorization` header may read /metrics: always when no token is configured
 * (like /healthz, for a scraper inside the cluster), else only `Bearer <token>`. Compared as
 * digests in constant time, so neither the token nor its length leaks through timing.
 */
export function metricsAccessAllowed(
  token: string | undefined,
  authorization: string | undefined,
): boolean {
  if (!token) return true;
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  if (!match) return false;
  return timingSafeEqual(digest(match[1]!.trim()), digest(token));
}
