/**
 * Reads how long a provider asked us to wait, from the headers OpenAI-style APIs send on 429:
 * `retry-after-ms` (milliseconds), `retry-after` (seconds or an HTTP date) and
 * `x-ratelimit-reset-requests` / `x-ratelimit-reset-images` (durations such as `6m0s`, `1.5s`,
 * `120ms`). The first one present wins, in that order of precision.
 */
export function retryAfterMs(
  headers: Headers | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.has('retry-after-ms') && Number.isFinite(ms) && ms >= 0) return Math.ceil(ms);

  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds * 1000);
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }

  for (const name of ['x-ratelimit-reset-requests', 'x-ratelimit-reset-images']) {
    const duration = parseDuration(headers.get(name));
    if (duration !== undefined) return duration;
  }
  return undefined;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Parses Go-style durations as OpenAI sends them: `6m0s`, `1h2m3.5s`, `250ms`, `0.8s`. */
export function parseDuration(text: string | null): number | undefined {
  if (!text) return undefined;
  const parts = [...text.trim().matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text.trim()) return undefined;
  const total = parts.reduce((sum, [, value, unit]) => sum + Number(value) * UNIT_MS[unit!]!, 0);
  return Math.ceil(total);
}
