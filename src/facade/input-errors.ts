import { InputImageError } from '../errors.js';
import { OpenAiError, invalidRequest } from './openai-error.js';

/**
 * An error the sender's input caused, in OpenAI's shape — or undefined for one of rendermill's
 * own, which stays a 500. An input image that cannot be used is a 400 naming `image`; any
 * other error that carries a 4xx (Fastify's and the multipart reader's refusals of a body)
 * keeps it. The openai SDKs retry 5xx answers: input that can never succeed must not get one.
 */
export function inputErrorAsOpenAi(error: Error): OpenAiError | undefined {
  if (error instanceof InputImageError) return invalidRequest(error.message, 'image', error.code);
  const { statusCode, code } = error as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new OpenAiError(
      statusCode,
      'invalid_request_error',
      error.message,
      null,
      typeof code === 'string' ? code.toLowerCase() : 'invalid_request',
    );
  }
  return undefined;
}

/**
 * An error met while reading a multipart form, as the caller's 400 when it is about the form's
 * bytes: the multipart parser fails a truncated or malformed body with a plain Error and no
 * status. Errors that carry their own answer (Fastify's limits: 413) pass through unchanged.
 */
export function formReadError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof OpenAiError) return error;
  const { statusCode, code } = error as { statusCode?: unknown; code?: unknown };
  if (statusCode !== undefined || (typeof code === 'string' && code.startsWith('FST_'))) {
    return error;
  }
  return invalidRequest(`the form cannot be read: ${error.message}`, null, 'invalid_multipart');
}
