import type { RequestValidationError } from '../errors.js';

/**
 * OpenAI's error types. The SDK picks its exception class by HTTP status alone
 * (BadRequestError, AuthenticationError, RateLimitError …); `type` and `code` are what callers
 * branch on next, so they follow OpenAI's own values.
 */
export type OpenAiErrorType =
  'invalid_request_error' | 'image_generation_user_error' | 'insufficient_quota' | 'server_error';

/** The body of every error of the Images API façade, as OpenAI answers them. */
export interface OpenAiErrorBody {
  error: {
    message: string;
    type: OpenAiErrorType;
    param: string | null;
    code: string | null;
    /** rendermill's batch, once one was created: look it up at /v1/batches/{id}. */
    batch_id?: string;
  };
}

/**
 * An answer of the Images API façade other than 200, in OpenAI's shape. `retryable: false`
 * adds `x-should-retry: false`, which the openai SDKs obey: rendermill has already retried the
 * provider call (or knows a retry cannot help), so the SDK's own retries would only repeat it.
 */
export class OpenAiError extends Error {
  override name = 'OpenAiError';
  constructor(
    readonly statusCode: number,
    readonly type: OpenAiErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly options: { retryable?: boolean; batchId?: string } = {},
  ) {
    super(message);
  }

  body(): OpenAiErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
        ...(this.options.batchId !== undefined && { batch_id: this.options.batchId }),
      },
    };
  }
}

export const invalidRequest = (message: string, param: string | null, code: string | null = null) =>
  new OpenAiError(400, 'invalid_request_error', message, param, code);

/**
 * The OpenAI parameter a rendermill field name stands for. The façade submits a one-item
 * batch, so its problems are named like `items[0].size`; the caller sent `size`. An item's
 * `operation` is chosen by the endpoint: a model that cannot do it is the `model`'s fault.
 */
export function openAiParam(field: string | undefined): string | null {
  if (!field) return null;
  const name = field.replace(/^items\[0\]\.?/, '');
  if (name === '' || name === 'metadata') return null;
  if (name === 'operation') return 'model';
  return name.replace(/\[\d+\]$/, '');
}

/**
 * A refused submission as OpenAI's 400: `param` is the first field to blame, and the message
 * names every problem by its OpenAI name (`size: size "300x300" is not offered by dall-e-2 …`).
 */
export function fromValidationError(error: RequestValidationError): OpenAiError {
  const problems =
    error.details.length > 0 ? error.details : [{ field: error.field, message: error.message }];
  const message = problems
    .map(({ field, message }) => {
      const param = openAiParam(field);
      return param ? `${param}: ${message}` : message;
    })
    .join('; ');
  return invalidRequest(message, openAiParam(problems[0]?.field), error.code);
}

/**
 * rendermill's own error shape (`{ error: { code, message } }`, e.g. the 401 of the API-key
 * check, which runs before any route) rewritten as OpenAI's, or undefined if it is not one.
 */
export function rewriteRendermillError(payload: string, statusCode: number): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown; type?: unknown } }).error;
  if (!error || typeof error.message !== 'string' || error.type !== undefined) return undefined;
  const code =
    statusCode === 401 ? 'invalid_api_key' : typeof error.code === 'string' ? error.code : null;
  const type: OpenAiErrorType = statusCode >= 500 ? 'server_error' : 'invalid_request_error';
  return JSON.stringify({ error: { message: error.message, type, param: null, code } });
}
