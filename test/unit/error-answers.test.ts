import { describe, expect, it } from 'vitest';
import { errorAnswer } from '../../src/api/error-answers.js';
import { HttpError } from '../../src/api/http-errors.js';
import { CatalogLineTooLongError } from '../../src/catalog/line-length-guard.js';
import { InputImageError, RequestValidationError } from '../../src/errors.js';

/** An error as Fastify makes them: a code and the status it stands for. */
const fastifyError = (code: string, statusCode: number, message = code) =>
  Object.assign(new Error(message), { code, statusCode });

describe('errorAnswer: input failures are 4xx, only rendermill’s own are 5xx', () => {
  it('maps rendermill’s input errors', () => {
    expect(errorAnswer(new RequestValidationError('bad', 'size'), '').statusCode).toBe(400);
    expect(errorAnswer(new HttpError(409, 'conflict', 'no'), '').statusCode).toBe(409);
    expect(errorAnswer(new CatalogLineTooLongError(7, 1024), '')).toMatchObject({
      statusCode: 413,
      body: { error: { code: 'line_too_long', line: 7 } },
    });
    expect(errorAnswer(new InputImageError('x.png cannot be read'), '')).toMatchObject({
      statusCode: 400,
      body: { error: { code: 'invalid_input_image', field: 'image' } },
    });
  });

  it('keeps the 4xx of Fastify’s refusals of a body', () => {
    expect(errorAnswer(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), '').statusCode).toBe(413);
    expect(errorAnswer(fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), 'x/y')).toMatchObject({
      statusCode: 415,
      body: { error: { code: 'unsupported_media_type' } },
    });
    expect(errorAnswer(fastifyError('FST_ERR_CTP_INVALID_JSON_BODY', 400), '')).toMatchObject({
      statusCode: 400,
      body: { error: { code: 'invalid_json' } },
    });
    expect(
      errorAnswer(fastifyError('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 413), '').statusCode,
    ).toBe(413);
  });

  it('answers 500, without the message, for anything else', () => {
    for (const error of [
      new TypeError("Cannot read properties of null (reading 'x')"),
      new Error('boom'),
    ]) {
      expect(errorAnswer(error, '')).toEqual({
        statusCode: 500,
        body: { error: { code: 'internal_error', message: 'internal error; see the server log' } },
      });
    }
    expect(errorAnswer(fastifyError('SOMETHING', 503), '').statusCode).toBe(500);
  });
});
