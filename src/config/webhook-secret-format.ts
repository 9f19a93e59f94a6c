import { randomBytes } from 'node:crypto';

/**
 * Webhook secrets in the Standard Webhooks form: `whsec_` followed by the base64 of the key
 * bytes. The prefix only says what the string is; the HMAC key is the decoded bytes.
 */
export const SECRET_PREFIX = 'whsec_';

/** Bytes of a generated secret: Standard Webhooks asks for 24 to 64. */
export const GENERATED_SECRET_BYTES = 32;
export const MIN_SECRET_BYTES = 24;
export const MAX_SECRET_BYTES = 64;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A fresh random secret, `whsec_` + 32 random bytes in base64. */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(GENERATED_SECRET_BYTES).toString('base64');
}

/**
 * The HMAC key of a secret: the base64-decoded part after `whsec_` (a bare base64 string is
 * accepted too, as the reference libraries do). Throws if it is not base64. It decodes exactly
 * as the signer's `webhookHmacKey` (webhooks/signature.ts, which depends on node:crypto alone so
 * that receivers can copy it), so the key checked here is the key that signs; a unit test
 * holds the two together.
 */
export function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!BASE64.test(encoded)) throw new Error('a webhook secret is whsec_ followed by base64');
  return Buffer.from(encoded, 'base64');
}

/** Why a configured secret cannot be used, or undefined if it can. */
export function webhookSecretProblem(secret: string): string | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return 'must start with whsec_';
  let key: Buffer;
  try {
    key = webhookSecretKey(secret);
  } catch {
    return 'must be whsec_ followed by base64';
  }
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    return `must hold ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES} bytes (it holds ${key.length}); make one with: echo whsec_$(openssl rand -base64 32)`;
  }
  return undefined;
}
