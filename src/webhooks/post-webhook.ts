import http from 'node:http';
import https from 'node:https';
import { guardedLookup, RefusedAddressError } from '../net/url-guard.js';

/**
 * The receiver's host resolved, at connection time, to an address webhooks may not reach: the
 * guarded lookup's `RefusedAddressError`, under the name deliveries have always caught.
 */
export { RefusedAddressError as WebhookTargetRefusedError };

/**
 * How long a receiver has to answer. Fixed, not configured: Standard Webhooks receivers are
 * expected to acknowledge at once and do their work afterwards; a slow one is tried again later.
 */
export const WEBHOOK_TIMEOUT_MS = 10_000;

export interface PostWebhookOptions {
  /** The whole exchange — connect, send, the answer's headers — must fit in this. Default WEBHOOK_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
  /** Skip the address check at connection time (RENDERMILL_ALLOW_PRIVATE_URLS). */
  allowPrivate: boolean;
}

/** What the receiver answered; a body excerpt for the log. */
export interface WebhookAnswer {
  status: number;
  excerpt: string;
}

/** Bytes of the receiver's answer kept for the log; the rest is read and dropped. */
const EXCERPT_BYTES = 200;

/**
 * POSTs a webhook body once and returns the status, whatever it is. Redirects are not
 * followed (a 3xx is returned like any other answer). Throws on a timeout or a connection
 * error, and `WebhookTargetRefusedError` (`RefusedAddressError`) if the host resolves to a refused address.
 */
export function postWebhook(
  url: string,
  body: string,
  headers: Record<string, string>,
  options: PostWebhookOptions,
): Promise<WebhookAnswer> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  return new Promise<WebhookAnswer>((resolve, reject) => {
    const request = client.request(target, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      // A fresh connection per delivery: a kept-alive socket would skip the address check.
      agent: false,
      ...(options.allowPrivate ? {} : { lookup: guardedLookup }),
    });
    let answered: WebhookAnswer | undefined;
    const kept: Buffer[] = [];
    const finish = () => {
      clearTimeout(deadline);
      if (!answered) return;
      answered.excerpt = Buffer.concat(kept).subarray(0, EXCERPT_BYTES).toString('utf8');
      resolve(answered);
    };
    // The status is what counts: a body still dripping at the deadline, or cut off, does not
    // turn an answer into a failure.
    const deadline = setTimeout(() => {
      if (answered) {
        finish();
        request.destroy();
      } else request.destroy(new Error(`no answer from the receiver within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on('error', (error) => {
      clearTimeout(deadline);
      if (!answered) reject(error);
    });
    request.on('response', (response) => {
      answered = { status: response.statusCode ?? 0, excerpt: '' };
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (size < EXCERPT_BYTES) kept.push(chunk);
        size += chunk.length;
      });
      response.on('end', finish);
      response.on('error', finish);
      response.on('aborted', finish);
    });
    request.end(body);
  });
}
