import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), as Svix and Replicate send
 * them: `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with
 * the base64-decoded part of a `whsec_…` secret. Several signatures may be sent, separated by
 * spaces (one per secret while a rotated one is still honoured); any one matching is enough.
 *
 * This file depends on node:crypto alone, so a receiver can copy it whole.
 */

/** How far a webhook's timestamp may be from the receiver's clock: replays older than this fail. */
export const DEFAULT_TOLERANCE_SECONDS = 5 * 60;

/**
 * The HMAC key: the bytes after `whsec_`, base64-decoded (a bare base64 string is accepted too).
 * Lenient, as a receiver's verifier should be; rendermill validates secrets before using them
 * (`webhookSecretKey` in secret-format.ts, which decodes with this).
 */
export function webhookHmacKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

/** `v1,<base64 signature>` of one message with one secret. */
export function signWebhook(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Buffer,
): string {
  const mac = createHmac('sha256', webhookHmacKey(secret))
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest('base64');
  return `v1,${mac}`;
}

/** A webhook that failed verification: forged, altered, or too old (a replay). */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

/** Headers as Node (`IncomingHttpHeaders`) or fetch (`Headers`) hand them over. */
export type WebhookHeaders =
  | Headers
  | Record<string, string | readonly string[] | undefined>
  | { get(name: string): string | null };

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') {
    return (headers as Headers).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | readonly string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * Verifies a webhook rendermill sent and returns its parsed event. Throws
 * `WebhookVerificationError` if a header is missing, no signature matches the body (compared
 * in constant time), or the timestamp is further than `toleranceSeconds` from now.
 *
 * @param secret The tenant's `whsec_…` secret (GET /v1/webhooks/secret).
 * @param body The request body exactly as received — raw text or bytes, never re-serialised JSON.
 * @param options.toleranceSeconds Default 300 (5 minutes).
 * @param options.now The receiver's clock in ms. Default `Date.now()`.
 */
export function verifyWebhook<T = unknown>(
  secret: string,
  headers: WebhookHeaders,
  body: string | Buffer,
  options: { toleranceSeconds?: number; now?: number } = {},
): T {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      'missing webhook-id, webhook-timestamp or webhook-signature',
    );
  }
  const seconds = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || !Number.isSafeInteger(seconds)) {
    throw new WebhookVerificationError('webhook-timestamp is not a unix time in seconds');
  }
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(nowSeconds - seconds) > tolerance) {
    throw new WebhookVerificationError(
      `webhook-timestamp is more than ${tolerance} s from now (a replay, or a wrong clock)`,
    );
  }
  const expected = Buffer.from(signWebhook(secret, id, seconds, body).slice(3), 'base64');
  const matches = signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    if (version !== 'v1' || !signature) return false;
    const given = Buffer.from(signature, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerificationError('no webhook-signature matches the body');
  return JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as T;
}
