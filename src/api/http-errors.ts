/** The body of every error answer: `{ error: { code, message, …extra } }`. */
export const errorBody = (code: string, message: string, extra: Record<string, unknown> = {}) => ({
  error: { code, message, ...extra },
});

/**
 * An answer other than 2xx that a handler decides on: 404 for what the tenant cannot see,
 * 409 for a conflict, 422 for a request that is well formed but cannot be done.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (what: string) => new HttpError(404, 'not_found', `no ${what}`);
