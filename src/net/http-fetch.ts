import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { keptAliveAgent } from './kept-alive-agent.js';

/**
 * A `fetch` for the provider SDKs' API calls, over node:http with kept-alive connections.
 *
 * Node's own `fetch` (undici) costs about a millisecond of CPU per call before a byte of the
 * answer is read — building and validating the Request, running the Fetch standard's steps as
 * promise turns, and asking for a compressed answer it then inflates — which is as much as
 * everything else rendermill does for an image. A provider call needs none of that: a POST of
 * a JSON body to one origin, an answer read once. Compression is not asked for: base64 images
 * barely compress and inflating them costs more CPU than the bytes saved; an answer that comes
 * compressed all the same is inflated.
 *
 * Anything this does not cover goes to `fallback` (the global `fetch`) unchanged: a `Request`
 * object, a body other than text or bytes (the SDK's multipart uploads for edits). A redirect
 * is refused (an API call is not redirected). What it returns is a standard `Response`, with
 * the body as a web stream over the socket: read as slowly as the reader reads, so an answer
 * nobody reads yet stays in the kernel's buffers — but a read that gets nothing for
 * `bodyIdleMs` fails (the SDKs bound only the wait for the headers, and undici bounded the body
 * too). Errors are the global fetch's: a `TypeError('fetch failed')` with the network error as
 * its `cause` (the SDKs read the cause's code), and the signal's reason on abort.
 */
export function createHttpFetch(
  options: {
    fallback?: typeof fetch;
    bodyIdleMs?: number;
    /**
     * `refuse` (the default): a redirect fails the request, as no API call is redirected.
     * `fallback`: the request is made again by `fallback`, which follows it — for downloads
     * of the images a provider answered with, whose hosts may redirect.
     */
    redirects?: 'refuse' | 'fallback';
  } = {},
): typeof fetch {
  const fallback = options.fallback ?? fetch;
  const bodyIdleMs = options.bodyIdleMs ?? BODY_IDLE_MS;
  const followElsewhere = options.redirects === 'fallback';
  const agents = { 'http:': keptAliveAgent('http:'), 'https:': keptAliveAgent('https:') };
  const httpFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = init?.body;
    const simpleBody =
      body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
    if (input instanceof Request || !simpleBody) return fallback(input, init);
    const url = typeof input === 'string' ? new URL(input) : input;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fallback(input, init);
    const sent = send(url, init ?? {}, body ?? undefined, agents[url.protocol], bodyIdleMs);
    if (!followElsewhere) return sent;
    return sent.catch((error: unknown) => {
      if (!(error instanceof RedirectRefused)) throw error;
      return fallback(input, init);
    });
  };
  return httpFetch as typeof fetch;
}

/** The error of a request answered with a redirect: fetch's `TypeError('fetch failed')`. */
class RedirectRefused extends TypeError {
  constructor(status: number, location: string | null) {
    super('fetch failed', { cause: new Error(`redirected (${status}) to ${location}`) });
  }
}

function send(
  url: URL,
  init: RequestInit,
  body: string | Uint8Array | undefined,
  agent: HttpAgent,
  bodyIdleMs: number,
): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<Response>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      url,
      { method: init.method ?? 'GET', headers: plainHeaders(init.headers), agent },
      (incoming) => {
        signal?.removeEventListener('abort', onAbort);
        let response: Response;
        try {
          response = toResponse(incoming, url, signal, bodyIdleMs);
        } catch (error) {
          incoming.destroy();
          reject(error as Error);
          return;
        }
        resolve(response);
      },
    );
    const onAbort = () => {
      request.destroy();
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      reject(Object.assign(new TypeError('fetch failed'), { cause: error }));
    });
    request.end(body);
  });
}

function toResponse(
  incoming: IncomingMessage,
  url: URL,
  signal: AbortSignal | undefined,
  bodyIdleMs: number,
): Response {
  const status = incoming.statusCode ?? 0;
  const headers = new Headers();
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  if (status >= 300 && status < 400 && headers.has('location')) {
    // A redirect the global fetch would follow: not something an API call does.
    incoming.destroy();
    throw new RedirectRefused(status, headers.get('location'));
  }
  const noBody = status === 204 || status === 304;
  let stream: Readable = incoming;
  const decoder = decoderFor(headers.get('content-encoding'));
  if (decoder && !noBody) {
    stream = incoming.pipe(decoder);
    incoming.on('error', (error) => decoder.destroy(error));
    // Cancelled or aborted, the decoder is destroyed: the socket under it must go too.
    decoder.on('close', () => incoming.destroy());
  }
  if (signal) {
    const onAbort = () => stream.destroy(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  const response = new Response(noBody ? null : pulledOnDemand(stream, bodyIdleMs), {
    status,
    statusText: incoming.statusMessage ?? '',
    headers,
  });
  Object.defineProperty(response, 'url', { value: url.href });
  return response;
}

/**
 * The body as a web stream that reads from the socket only when its reader asks
 * (`highWaterMark: 0`). `Readable.toWeb` reads ahead into its own queue: an answer that had
 * landed but was not read yet held ~200 KB of socket reads instead of one (~64 KB), and a
 * worker with 1,000 answers landed at once held that many.
 */
function pulledOnDemand(stream: Readable, idleMs: number): ReadableStream<Uint8Array> {
  // One set of listeners and one timer for the whole body: a 2.9 MB answer is ~45 reads.
  let waiting: (() => void) | undefined;
  const wake = () => {
    const resume = waiting;
    waiting = undefined;
    resume?.();
  };
  for (const event of ['readable', 'end', 'error', 'close']) stream.on(event, wake);
  const idle = setTimeout(() => {
    if (!waiting) return;
    const error = Object.assign(new Error(`no byte of the body came in ${idleMs} ms`), {
      code: 'ETIMEDOUT',
    });
    stream.destroy(error);
  }, idleMs);
  idle.unref();
  const done = () => clearTimeout(idle);
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const step = (): Promise<void> | undefined => {
          const error = stream.errored as Error | null;
          if (error) return void (done(), controller.error(error));
          const chunk = stream.read() as Buffer | null;
          if (chunk !== null) {
            controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
            return;
          }
          if (stream.readableEnded) return void (done(), controller.close());
          if (stream.destroyed) {
            done();
            controller.error(new Error('the connection closed before the body ended'));
            return;
          }
          idle.refresh();
          return new Promise<void>((resolve) => (waiting = resolve)).then(step);
        };
        return step();
      },
      cancel() {
        done();
        stream.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

function decoderFor(encoding: string | null) {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      return undefined;
  }
}

function plainHeaders(headers: RequestInit['headers']): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers.entries());
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return { ...(headers as Record<string, string>) };
}

/** How long a read of the body may wait for a byte; the provider adapters pass their timeout. */
const BODY_IDLE_MS = 120_000;

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException('This operation was aborted', 'AbortError');
}
