import http from 'node:http';
import https from 'node:https';
import { checkPublicUrl, guardedLookup } from './url-guard.js';

export interface GuardedGetOptions {
  /**
   * Let the request reach loopback, private, link-local and reserved addresses
   * (`RENDERMILL_ALLOW_PRIVATE_URLS`).
   */
  allowPrivate: boolean;
  /** The whole download — every redirect, connect, headers and body — must fit in this. */
  timeoutMs: number;
  /** Largest body read; a larger one fails with `DownloadTooLargeError` as soon as it is seen. */
  maxBytes: number;
  /** Redirects followed, each checked like the first URL. Default MAX_REDIRECTS. */
  maxRedirects?: number | undefined;
  /** Sent as `accept`. Default `*\/*`. */
  accept?: string | undefined;
  /** The request field the URL came from, for `checkPublicUrl`'s errors. Default `url`. */
  field?: string | undefined;
  /** The error code of a refused URL, for `checkPublicUrl`'s errors. Default `invalid_url`. */
  code?: string | undefined;
}

/** What the server answered: a 2xx with its body, or any other final status without one. */
export interface GuardedAnswer {
  status: number;
  /** Empty unless the status is 2xx. */
  body: Buffer;
}

/** The body is larger than `maxBytes`. */
export class DownloadTooLargeError extends Error {
  override name = 'DownloadTooLargeError';
}

/** No complete answer within `timeoutMs`. */
export class DownloadTimeoutError extends Error {
  override name = 'DownloadTimeoutError';
}

/** More redirects than `maxRedirects`. */
export class TooManyRedirectsError extends Error {
  override name = 'TooManyRedirectsError';
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * GETs a URL a tenant gave, through the SSRF guard: the URL, and every redirect's target, is
 * checked with `checkPublicUrl`, and each connection resolves its host with `guardedLookup`, so
 * it connects only to addresses that were checked (no DNS rebinding, no redirect to
 * 169.254.169.254). A fresh connection each time: a kept-alive socket would skip the lookup.
 *
 * Throws what `checkPublicUrl` throws (`PrivateUrlError` …), `RefusedAddressError` when a host
 * resolves to a refused address at connection time, `DownloadTooLargeError`,
 * `DownloadTimeoutError`, `TooManyRedirectsError`, or the connection's error.
 */
/** Redirects a download follows unless told otherwise: enough for a CDN's hops, few enough to end a loop. */
export const MAX_REDIRECTS = 5;

export async function guardedGet(url: string, options: GuardedGetOptions): Promise<GuardedAnswer> {
  const { allowPrivate } = options;
  const check = {
    allowPrivate,
    field: options.field ?? 'url',
    code: options.code ?? 'invalid_url',
  };
  const deadline = AbortSignal.timeout(options.timeoutMs);
  const maxRedirects = options.maxRedirects ?? MAX_REDIRECTS;
  let target = url;
  for (let hop = 0; ; hop++) {
    // The check's DNS lookup counts against the deadline like the rest.
    const checked = await beforeDeadline(
      checkPublicUrl(target, check),
      deadline,
      options.timeoutMs,
    );
    const answer = await getOnce(checked, { ...options, allowPrivate, deadline });
    if (answer.location === undefined) return { status: answer.status, body: answer.body };
    if (hop >= maxRedirects) {
      throw new TooManyRedirectsError(`more than ${maxRedirects} redirects`);
    }
    target = new URL(answer.location, checked).href;
  }
}

const timeout = (ms: number) => new DownloadTimeoutError(`no complete answer within ${ms} ms`);

function beforeDeadline<T>(work: Promise<T>, deadline: AbortSignal, ms: number): Promise<T> {
  if (deadline.aborted) return Promise.reject(timeout(ms));
  return new Promise<T>((resolve, reject) => {
    const onDeadline = () => reject(timeout(ms));
    deadline.addEventListener('abort', onDeadline, { once: true });
    work.then(resolve, reject).finally(() => deadline.removeEventListener('abort', onDeadline));
  });
}

interface OneAnswer extends GuardedAnswer {
  /** Set when the answer is a redirect to follow. */
  location?: string | undefined;
}

function getOnce(
  target: URL,
  options: GuardedGetOptions & { allowPrivate: boolean; deadline: AbortSignal },
): Promise<OneAnswer> {
  const client = target.protocol === 'https:' ? https : http;
  return new Promise<OneAnswer>((resolve, reject) => {
    const request = client.request(target, {
      method: 'GET',
      // Some hosts refuse a request that names no client.
      headers: { accept: options.accept ?? '*/*', 'user-agent': 'rendermill' },
      agent: false,
      ...(options.allowPrivate ? {} : { lookup: guardedLookup }),
    });
    // The first outcome settles the promise; whatever the torn-down socket emits after it is
    // ignored (but handled, so that no 'error' event goes unheard).
    const onDeadline = () => fail(timeout(options.timeoutMs));
    options.deadline.addEventListener('abort', onDeadline, { once: true });
    const done = () => {
      options.deadline.removeEventListener('abort', onDeadline);
      request.destroy();
    };
    const fail = (error: Error) => {
      reject(error);
      done();
    };
    const answer = (result: OneAnswer) => {
      resolve(result);
      done();
    };
    request.on('error', fail);
    request.on('response', (response) => {
      response.on('error', fail);
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (REDIRECTS.has(status) && location) {
        return answer({ status, body: Buffer.alloc(0), location });
      }
      // Any other answer is final and its body is not needed.
      if (status < 200 || status >= 300) return answer({ status, body: Buffer.alloc(0) });
      const tooLarge = () =>
        fail(new DownloadTooLargeError(`larger than ${options.maxBytes} bytes`));
      if (Number(response.headers['content-length'] ?? 0) > options.maxBytes) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) return tooLarge();
        chunks.push(chunk);
      });
      response.on('end', () => answer({ status, body: Buffer.concat(chunks) }));
    });
    request.end();
  });
}
