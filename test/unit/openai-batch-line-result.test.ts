import { describe, expect, it } from 'vitest';
import { MalformedBatchLineError, parseBatchLine } from '../../src/providers/openai-batch-api.js';

const line = (value: unknown) => JSON.stringify(value);

describe('parseBatchLine', () => {
  it('reads a 200 line as the Images API answer', () => {
    const body = { created: 1, data: [{ b64_json: 'iVBOR' }], usage: { output_tokens: 272 } };
    expect(
      parseBatchLine(
        line({
          id: 'batch_req_1',
          custom_id: 'sku-1',
          response: { status_code: 200, request_id: 'req_1', body },
          error: null,
        }),
      ),
    ).toEqual({ customId: 'sku-1', ok: true, body });
  });

  it('reads a refused line by the error object in its body, not as a success', () => {
    expect(
      parseBatchLine(
        line({
          id: 'batch_req_2',
          custom_id: 'sku-2',
          response: {
            status_code: 400,
            request_id: 'req_2',
            body: {
              error: {
                message: 'Your request was rejected as a result of our safety system.',
                type: 'image_generation_user_error',
                param: null,
                code: 'moderation_blocked',
              },
            },
          },
          error: null,
        }),
      ),
    ).toEqual({
      customId: 'sku-2',
      ok: false,
      statusCode: 400,
      code: 'moderation_blocked',
      message: 'Your request was rejected as a result of our safety system.',
    });
  });

  it("takes the error's type, then the status, when a refusal has no code", () => {
    const refused = (status: number, error: unknown) =>
      parseBatchLine(
        line({ custom_id: 'a', response: { status_code: status, body: { error } }, error: null }),
      );
    expect(refused(500, { message: 'boom', type: 'server_error', code: null })).toMatchObject({
      ok: false,
      statusCode: 500,
      code: 'server_error',
      message: 'boom',
    });
    expect(refused(502, undefined)).toMatchObject({ ok: false, statusCode: 502, code: 'http_502' });
  });

  it('reads a line that never ran (expired) by its top-level error', () => {
    expect(
      parseBatchLine(
        line({
          id: 'batch_req_3',
          custom_id: 'sku-3',
          response: null,
          error: { code: 'batch_expired', message: 'This request could not be executed.' },
        }),
      ),
    ).toEqual({
      customId: 'sku-3',
      ok: false,
      code: 'batch_expired',
      message: 'This request could not be executed.',
    });
  });

  it('keeps custom_ids as given, whatever they look like', () => {
    const customId = '__proto__';
    expect(
      parseBatchLine(line({ custom_id: customId, response: { status_code: 200, body: {} } })),
    ).toMatchObject({ customId, ok: true });
  });

  for (const [name, text] of [
    ['not JSON', '{"custom_id": "a", '],
    ['a JSON array', '[1, 2]'],
    ['no custom_id', line({ response: { status_code: 200, body: {} }, error: null })],
    ['a numeric custom_id', line({ custom_id: 7, response: { status_code: 200, body: {} } })],
    ['neither response nor error', line({ custom_id: 'a', response: null, error: null })],
    ['a response without status_code', line({ custom_id: 'a', response: { body: {} } })],
    ['an error that is a string', line({ custom_id: 'a', response: null, error: 'x' })],
    ['a response that is a string', line({ custom_id: 'a', response: 'ok' })],
  ] as const) {
    it(`throws a MalformedBatchLineError for ${name}`, () => {
      expect(() => parseBatchLine(text)).toThrow(MalformedBatchLineError);
    });
  }

  it('names the line it could not read', () => {
    expect(() => parseBatchLine('garbage')).toThrow(/malformed batch result line.*garbage/);
  });
});
