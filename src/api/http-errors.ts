import { z } from 'zod';

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

/** The shape of every error answer, for the OpenAPI document. */
const errorResponse = (description: string) =>
  z
    .object({
      error: z.object({
        code: z.string(),
        message: z.string(),
        field: z.string().nullable().optional(),
        details: z
          .array(
            z.object({
              field: z.string().optional(),
              line: z.number().optional(),
              message: z.string(),
            }),
          )
          .optional(),
      }),
    })
    .describe(description);

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'The request is invalid: `field` names the first problem, `details` all of them',
  401: 'No valid API key',
  404: 'Not found, or another tenant’s',
  409: 'Conflicts with the current state, or an Idempotency-Key still in use',
  413: 'The body is over the size limit',
  415: 'A content type the route cannot read',
  422: 'The Idempotency-Key was used with another body',
};

/** Error answers a route may give, documented in the OpenAPI document with their shape. */
export function errorResponses(...codes: number[]): Record<number, z.ZodType> {
  return Object.fromEntries(
    [401, ...codes].map((code) => [code, errorResponse(ERROR_DESCRIPTIONS[code] ?? 'Error')]),
  );
}

/** A successful answer, documented by its description (its shape is in the README and tests). */
export const answer = (description: string) => z.object({}).passthrough().describe(description);
