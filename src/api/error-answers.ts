import type { FastifyError } from 'fastify';
import { ConflictError, InputImageError, RequestValidationError } from '../errors.js';
import { CatalogLineTooLongError } from '../catalog/line-length-guard.js';
import { errorBody, HttpError } from './http-errors.js';

/** An error answer: its status and its `{ error: { code, message, … } }` body. */
export interface ErrorAnswer {
  statusCode: number;
  body: ReturnType<typeof errorBody>;
}

/**
 * What rendermill answers for an error a request ended with. Anything the sender's input
 * caused — a field that fails validation, a body that cannot be read, an image that cannot be
 * decoded, a catalog line too long — is a 4xx that says so; a 5xx means rendermill itself
 * failed, and only an error none of the rules below recognise is one.
 */
export function errorAnswer(error: FastifyError | Error, contentType: string): ErrorAnswer {
  const answer = (statusCode: number, ...body: Parameters<typeof errorBody>) => ({
    statusCode,
    body: errorBody(...body),
  });
  if (error instanceof RequestValidationError) {
    return answer(400, error.code, error.message, {
      field: error.field ?? null,
      details: error.details,
    });
  }
  if (error instanceof ConflictError) return answer(409, error.code, error.message);
  if (error instanceof HttpError) {
    return answer(error.statusCode, error.code, error.message, error.extra);
  }
  if (error instanceof CatalogLineTooLongError) {
    return answer(413, error.code, error.message, { line: error.line });
  }
  if (error instanceof InputImageError) {
    return answer(400, error.code, error.message, { field: 'image' });
  }
  const { code, statusCode } = error as Partial<FastifyError>;
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return answer(
      415,
      'unsupported_media_type',
      `unsupported content type "${contentType}": send application/json, or a catalog as text/csv or application/x-ndjson`,
    );
  }
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return answer(413, 'body_too_large', error.message);
  if (statusCode === 400) {
    return answer(400, 'invalid_json', `the body is not valid JSON: ${error.message}`);
  }
  // Fastify's other refusals of a request (a content length that does not add up, a URL it
  // cannot route) carry their 4xx: the sender's mistake, answered as such.
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return answer(statusCode, code?.toLowerCase() ?? 'bad_request', error.message);
  }
  return answer(500, 'internal_error', 'internal error; see the server log');
}
