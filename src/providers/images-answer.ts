import pLimit from 'p-limit';
import { ProviderUnavailableError } from '../errors.js';
import type { ProviderUsage } from '../errors.js';
import { UNKNOWN_ANSWER_BYTES, type AnswerHold } from '../limits/answer-budget.js';

/** One image of an Images API answer: its decoded `b64_json` bytes, or the `url` to fetch. */
export interface AnsweredImage {
  b64?: Buffer;
  url?: string;
}

/** What rendermill reads from an Images API answer (`data`, `usage`). */
export interface ImagesAnswer {
  data: AnsweredImage[] | undefined;
  usage: ProviderUsage | undefined;
}

/**
 * Answers read at once in this process. An answer of 1024x1024 images weighs megabytes; the
 * answers beyond these wait with their sockets unread, so TCP backpressure keeps most of
 * their bytes out of the heap however many requests are in flight.
 */
export const ANSWERS_READ_AT_ONCE = 8;
const answerReads = pLimit(ANSWERS_READ_AT_ONCE);

/** How many answers are being read now, and how many wait for their turn. */
export function answerReadLoad(): { reading: number; waiting: number } {
  return { reading: answerReads.activeCount, waiting: answerReads.pendingCount };
}

/**
 * Reads an Images API answer from its raw response, at most ANSWERS_READ_AT_ONCE at a time.
 * With a `hold`, room for the answer's bytes is taken in the process's answer budget first
 * (answer-budget.ts), and stays taken until the hold's attempt releases it — after its images
 * are stored — so that answers are read no faster than their images leave the process.
 * `timeoutMs` bounds the reading itself, not the waits for the budget or a turn: the answer is
 * already paid for, and the waits are rendermill's own (every read ahead is bounded the same way).
 */
export async function readImagesAnswer(
  response: Response,
  timeoutMs: number,
  hold?: AnswerHold,
): Promise<ImagesAnswer> {
  if (!isJson(response.headers.get('content-type'))) {
    // The SDK would hand such a body back as text: an answer without images.
    await response.body?.cancel().catch(() => undefined);
    return { data: undefined, usage: undefined };
  }
  const declared = declaredLength(response);
  await hold?.take(declared ?? UNKNOWN_ANSWER_BYTES);
  const bytes = await answerReads(() => readBody(response, timeoutMs, declared));
  if (declared === undefined) hold?.correct(UNKNOWN_ANSWER_BYTES, bytes.length);
  return parseImagesAnswer(bytes);
}

/** The body's length from `Content-Length`, when the answer says it plainly (not compressed). */
function declaredLength(response: Response): number | undefined {
  if (response.headers.get('content-encoding')) return undefined;
  const length = Number(response.headers.get('content-length') ?? NaN);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

function isJson(contentType: string | null): boolean {
  const mediaType = contentType?.split(';')[0]?.trim();
  return !!mediaType && (mediaType.includes('application/json') || mediaType.endsWith('+json'));
}

/**
 * The whole body. Of a declared length, read into one buffer of that length as it arrives:
 * no list of chunks to concatenate, so an answer of megabytes leaves half the garbage.
 */
async function readBody(
  response: Response,
  timeoutMs: number,
  declared: number | undefined,
): Promise<Buffer> {
  const body = response.body;
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => undefined);
  }, timeoutMs);
  // Taken at its word only up to a sane size: a broken or hostile Content-Length must not
  // allocate gigabytes; a longer answer is read in chunks all the same.
  let whole =
    declared === undefined || declared > MAX_PREALLOCATED_BYTES
      ? undefined
      : Buffer.allocUnsafe(declared);
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) {
        throw new ProviderUnavailableError(
          `the provider's answer did not arrive within ${timeoutMs} ms`,
          true,
        );
      }
      if (done) break;
      if (whole && length + value.byteLength <= whole.length) {
        whole.set(value, length);
      } else {
        // More than declared (undici would refuse it, another fetch might not): keep it all.
        if (whole) chunks.push(whole.subarray(0, length));
        whole = undefined;
        chunks.push(value);
      }
      length += value.byteLength;
    }
  } catch (error) {
    if (error instanceof ProviderUnavailableError) throw error;
    throw new ProviderUnavailableError(
      `the provider's answer broke off: ${(error as Error).message}`,
      true,
    );
  } finally {
    clearTimeout(timer);
  }
  return whole ? whole.subarray(0, length) : Buffer.concat(chunks, length);
}

/** The largest answer read into one buffer of its declared length (4 images of 4K, in base64). */
const MAX_PREALLOCATED_BYTES = 256 * 1024 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const EQUALS = 0x3d;
const KEY = Buffer.from('"b64_json"', 'latin1');

/**
 * An Images API answer from its bytes. Every `b64_json` string is cut out of the bytes and
 * decoded on its own; only the rest (usage, urls, revised prompts …) goes through JSON.parse,
 * so megabytes of base64 are never decoded as UTF-8 or copied into a JavaScript string twice.
 * Each cut-out string is replaced by its index in the list of cut-outs, a number where the
 * API only ever sends strings, and put back decoded where the parsed answer names it.
 */
export function parseImagesAnswer(bytes: Buffer): ImagesAnswer {
  const payloads: Array<[start: number, end: number]> = [];
  const rest: Buffer[] = [];
  let copied = hasByteOrderMark(bytes) ? 3 : 0;
  for (let at = bytes.indexOf(KEY, copied); at !== -1; at = bytes.indexOf(KEY, at + 1)) {
    if (isEscaped(bytes, at)) continue;
    let open = skipWhitespace(bytes, at + KEY.length);
    if (bytes[open] !== COLON) continue;
    open = skipWhitespace(bytes, open + 1);
    if (bytes[open] !== QUOTE) continue;
    const close = closingQuote(bytes, open + 1);
    // Left to JSON.parse: an empty string (answered as "no image") or one never closed.
    if (close === -1 || close === open + 1) continue;
    rest.push(bytes.subarray(copied, open), Buffer.from(String(payloads.length), 'latin1'));
    payloads.push([open + 1, close]);
    copied = close + 1;
    at = close;
  }
  rest.push(bytes.subarray(copied));
  const parsed = JSON.parse(Buffer.concat(rest).toString('utf8')) as unknown;
  if (!isRecord(parsed)) return { data: undefined, usage: undefined };
  const data = Array.isArray(parsed.data)
    ? parsed.data.map((datum: unknown): AnsweredImage => {
        if (!isRecord(datum)) return {};
        const { b64_json: b64, url } = datum;
        return {
          ...(typeof url === 'string' && url ? { url } : {}),
          ...(typeof b64 === 'number'
            ? { b64: decodePayload(bytes, payloads[b64]!) }
            : typeof b64 === 'string' && b64
              ? { b64: Buffer.from(b64, 'base64') }
              : {}),
        };
      })
    : undefined;
  return { data, usage: isRecord(parsed.usage) ? (parsed.usage as ProviderUsage) : undefined };
}

function decodePayload(bytes: Buffer, [start, end]: [number, number]): Buffer {
  const text = bytes.subarray(start, end);
  // Base64 has no `"` or `\`; an escape is a server writing `/` as `\/`, or something odder
  // that JSON.parse reads as the JSON it is.
  if (text.indexOf(BACKSLASH) !== -1) {
    return Buffer.from(JSON.parse(`"${text.toString('utf8')}"`) as string, 'base64');
  }
  return decodeBase64(text);
}

/** Characters of base64 decoded per step: a multiple of 4, so every step ends on a whole group. */
const DECODE_STEP = 32 * 1024;

/**
 * Node's base64 decoder over the text in 32 KB steps, into one buffer of the decoded length.
 * Each step's one-byte string is small enough to die young; a whole image's text as one string
 * (186 KB for a 139 KB PNG) is allocated among the large objects, which only a full garbage
 * collection frees: ~1 ms an image in a worker's heap against ~0.1 ms in steps. A text that
 * decodes to other than its length says (characters outside the alphabet, padding inside)
 * is decoded whole, as leniently as Node decodes it.
 */
function decodeBase64(text: Buffer): Buffer {
  const length = text.length;
  const padding = text[length - 1] === EQUALS ? (text[length - 2] === EQUALS ? 2 : 1) : 0;
  if (length % 4 !== 0) return Buffer.from(text.toString('latin1'), 'base64');
  const out = Buffer.allocUnsafe((length / 4) * 3 - padding);
  let written = 0;
  for (let at = 0; at < length; at += DECODE_STEP) {
    const step = text.toString('latin1', at, Math.min(length, at + DECODE_STEP));
    written += out.write(step, written, 'base64');
  }
  return written === out.length ? out : Buffer.from(text.toString('latin1'), 'base64');
}

/** The quote that ends the string whose text starts at `from`, or -1. */
function closingQuote(bytes: Buffer, from: number): number {
  for (let at = bytes.indexOf(QUOTE, from); at !== -1; at = bytes.indexOf(QUOTE, at + 1)) {
    if (!isEscaped(bytes, at)) return at;
  }
  return -1;
}

/** Whether the byte at `at` follows an odd run of backslashes, inside a JSON string. */
function isEscaped(bytes: Buffer, at: number): boolean {
  let backslashes = 0;
  while (at - backslashes - 1 >= 0 && bytes[at - backslashes - 1] === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}

function skipWhitespace(bytes: Buffer, at: number): number {
  while (at < bytes.length) {
    const byte = bytes[at];
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) break;
    at++;
  }
  return at;
}

function hasByteOrderMark(bytes: Buffer): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
