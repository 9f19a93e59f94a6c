import { checkPublicUrl, HostUnresolvedError } from '../net/url-guard.js';

/**
 * The SSRF guard as webhooks use it: `checkPublicUrl` (src/net/url-guard.ts) with the field
 * `webhook_url` and the code `invalid_webhook_url`. Which addresses are refused, and why, is
 * said there.
 */

export { isRefusedAddress } from '../net/url-guard.js';

const FIELD = 'webhook_url';
const CODE = 'invalid_webhook_url';

/**
 * The host name did not resolve. Refused at submission like any bad URL, but a delivery that
 * meets it retries: DNS failing for a while is not the receiver being refused.
 */
export class WebhookHostUnresolvedError extends HostUnresolvedError {
  override name = 'WebhookHostUnresolvedError';
}

/**
 * Checks that `url` is a webhook target rendermill may POST to: `http:` or `https:`, no user
 * name or password, and — unless `allowPrivate` — a public host (see `checkPublicUrl`).
 *
 * Throws `RequestValidationError` (field `webhook_url`, code `invalid_webhook_url`); a host that
 * does not resolve throws its subclass `WebhookHostUnresolvedError`.
 *
 * @param options.allowPrivate Skip the address checks (config `RENDERMILL_ALLOW_PRIVATE_URLS`,
 *   default false): for receivers on the same private network, and for tests.
 */
export async function checkWebhookUrl(
  url: string,
  options: { allowPrivate: boolean },
): Promise<void> {
  try {
    await checkPublicUrl(url, { allowPrivate: options.allowPrivate, field: FIELD, code: CODE });
  } catch (error) {
    if (error instanceof HostUnresolvedError) {
      throw new WebhookHostUnresolvedError(error.message, FIELD, CODE);
    }
    throw error;
  }
}
