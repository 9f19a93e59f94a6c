/**
 * Errors of the commands that talk to the API. Each one's message is the single line a person
 * reads after `rendermill: `; all of them exit with 1.
 */

/** A problem found before anything was sent: a missing setting, a bad argument, an unreadable file. */
export class ClientUsageError extends Error {
  override name = 'ClientUsageError';
}

/** One problem of a refused request, as the API lists them in `error.details`. */
export interface ApiErrorDetail {
  line?: number;
  field?: string;
  message: string;
}

/** The API's error body: `{ error: { code, message, field?, details? } }`. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string | null; details?: ApiErrorDetail[] };
}

/** The API answered with an error status (4xx/5xx). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    /** The API's `error.code`, or `http_<status>` for an answer that is not rendermill's. */
    readonly code: string,
    /** The API's `error.message`, as it wrote it. */
    readonly apiMessage: string,
    readonly field?: string,
    readonly details: readonly ApiErrorDetail[] = [],
    /** What the person can do about it, in the command's own terms. */
    readonly hint?: string,
  ) {
    super(describeApiError(status, apiMessage, field, details, hint));
  }

  /** The same error, with a hint added to its line. */
  withHint(hint: string): ApiError {
    return new ApiError(this.status, this.code, this.apiMessage, this.field, this.details, hint);
  }

  static fromBody(status: number, statusText: string, body: unknown): ApiError {
    const error = (body as Partial<ApiErrorBody> | undefined)?.error;
    if (error && typeof error.message === 'string') {
      return new ApiError(
        status,
        String(error.code ?? `http_${status}`),
        error.message,
        error.field ?? undefined,
        Array.isArray(error.details) ? error.details : [],
      );
    }
    // Not rendermill's answer: a proxy, a load balancer, another service on the port.
    return new ApiError(
      status,
      `http_${status}`,
      `the server answered ${status} ${statusText}`.trim(),
    );
  }
}

/**
 * `<message> (HTTP 400, field items[3].size)`. A catalog problem names its line first, since
 * the line is what a person opens the file at.
 */
function describeApiError(
  status: number,
  message: string,
  field: string | undefined,
  details: readonly ApiErrorDetail[],
  hint: string | undefined,
): string {
  const line = details.find((d) => d.line !== undefined)?.line;
  const named = line !== undefined && !new RegExp(`\\bline ${line}\\b`).test(message);
  const context = [`HTTP ${status}`];
  if (field && !message.includes(field)) context.push(`field ${field}`);
  if (status === 401) context.push('check RENDERMILL_API_KEY');
  if (hint) context.push(hint);
  return `${named ? `line ${line}: ` : ''}${oneLine(message)} (${context.join(', ')})`;
}

/** Why a request got no answer, in words. */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  TimeoutError: 'no answer in time',
  AbortError: 'no answer in time',
};

/** The request got no answer: nothing listening, a cut connection, a name that does not resolve. */
export class ApiUnreachableError extends Error {
  override name = 'ApiUnreachableError';
  constructor(
    readonly baseUrl: string,
    /** The system's code for it (ECONNREFUSED …), when there is one. */
    readonly reasonCode: string | undefined,
    reason: string,
  ) {
    super(
      `cannot reach the API at ${baseUrl}: ${reason} — is \`rendermill api\` running? (RENDERMILL_URL)`,
    );
  }

  /** Reads the code out of fetch's `TypeError: fetch failed` and its `cause` chain. */
  static from(baseUrl: string, error: unknown): ApiUnreachableError {
    let code: string | undefined;
    let detail: string | undefined;
    for (let e: unknown = error; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
      const candidate = (e as { code?: unknown }).code ?? (e as { name?: unknown }).name;
      if (typeof candidate === 'string' && candidate in REASONS) code = candidate;
      const message = (e as { message?: unknown }).message;
      if (typeof message === 'string' && message !== 'fetch failed') detail = message;
    }
    return new ApiUnreachableError(
      baseUrl,
      code,
      code ? REASONS[code]! : oneLine(detail ?? String(error)),
    );
  }

  /** A connection cut while the request was on its way: the same request may pass next time. */
  get interrupted(): boolean {
    return this.reasonCode === 'ECONNRESET' || this.reasonCode === 'UND_ERR_SOCKET';
  }
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();
