import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSimulator, textTokens, type RunningSimulator } from '../../infra/simulator/server.js';
import {
  ProviderAuthError,
  ProviderRejectedError,
  ProviderUnavailableError,
} from '../../src/errors.js';
import { outputTokensPerImage } from '../../src/models/pricing.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import type { PerTokenPricing } from '../../src/models/registry-schema.js';
import {
  ENDED_STATUSES,
  OpenAIBatchApi,
  parseBatchLine,
  type ProviderBatchEndpoint,
  type ProviderBatchState,
} from '../../src/providers/openai-batch-api.js';

/**
 * The simulator's Files and Batches APIs, driven through rendermill's client (and raw HTTP
 * where the client does not go): a batch's life, its files, its failures and its limits.
 */
let sim: RunningSimulator;
const KEY = 'sk-batch-test';

const api = (apiKey = KEY) => new OpenAIBatchApi({ baseUrl: sim.url, apiKey, timeoutMs: 10_000 });

type Body = Record<string, unknown>;
const generation = (customId: string, body: Body = {}) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/images/generations',
  body: { model: 'gpt-image-2', prompt: `prompt of ${customId}`, size: '256x256', ...body },
});
const jsonl = (lines: unknown[]) =>
  Buffer.from(lines.map((line) => JSON.stringify(line)).join('\n') + '\n');

/** Polls until the batch has ended, returning every state seen on the way. */
async function follow(client: OpenAIBatchApi, id: string): Promise<ProviderBatchState[]> {
  const seen: ProviderBatchState[] = [];
  for (;;) {
    const state = await client.getBatch(id);
    seen.push(state);
    if (ENDED_STATUSES.has(state.status)) return seen;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function lines(client: OpenAIBatchApi, fileId: string | undefined) {
  const found: string[] = [];
  if (fileId) for await (const line of client.fileLines(fileId)) found.push(line);
  return found;
}

/** Uploads the lines, creates a batch of them and follows it to its end. */
async function runBatch(
  input: unknown[],
  endpoint: ProviderBatchEndpoint = '/v1/images/generations',
) {
  const client = api();
  const file = await client.uploadFile('input.jsonl', jsonl(input));
  const created = await client.createBatch({ inputFileId: file.id, endpoint, metadata: {} });
  const states = await follow(client, created.id);
  const final = states.at(-1)!;
  return {
    created,
    states,
    final,
    output: (await lines(client, final.outputFileId)).map(parseBatchLine),
    errors: (await lines(client, final.errorFileId)).map(parseBatchLine),
  };
}

const raw = (path: string, init: RequestInit & { key?: string } = {}) =>
  fetch(`${sim.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${init.key ?? KEY}`, ...init.headers },
  });

beforeAll(async () => {
  sim = await startSimulator({ imagesPerMinute: 0, batchLineMs: 1 });
});
afterAll(async () => {
  await sim?.stop();
});
beforeEach(() => {
  sim.reset();
  sim.setKnobs({
    batchLineMs: 1,
    batchValidatingMs: 0,
    batchFinalizingMs: 0,
    batchExpireMs: 86_400_000,
    batchLineFailRate: 0,
    batchQueueTokens: {},
    contentPolicyPattern: undefined,
    apiKeys: undefined,
    forbiddenKeys: [],
    imagesPerMinute: 0,
  });
});

describe('a batch through the client', () => {
  it('uploads, is found again, runs to completed, and streams its answers', async () => {
    const client = api();
    const input = [generation('a'), generation('b', { size: '512x256', n: 2 }), generation('c')];
    const file = await client.uploadFile('catalog-7.jsonl', jsonl(input));
    expect(file.bytes).toBe(jsonl(input).length);
    await client.uploadFile('other.jsonl', jsonl([generation('z')]));
    expect(await client.findFile('catalog-7.jsonl')).toEqual(file);
    expect(await client.findFile('never-uploaded.jsonl')).toBeUndefined();

    sim.setKnobs({ batchLineMs: 60, batchFinalizingMs: 50 });
    const metadata = { rendermill_batch: 'rb-7', attempt: '1' };
    const created = await client.createBatch({
      inputFileId: file.id,
      endpoint: '/v1/images/generations',
      metadata,
    });
    expect(created).toMatchObject({ status: 'validating', inputFileId: file.id, metadata });
    expect((await client.findBatch(metadata))?.id).toBe(created.id);
    expect(await client.findBatch({ rendermill_batch: 'rb-8' })).toBeUndefined();

    const states = await follow(client, created.id);
    const statuses = [...new Set(states.map((state) => state.status))];
    expect(statuses).toEqual(expect.arrayContaining(['in_progress', 'finalizing', 'completed']));
    // The counts move while the lines run, not all at once at the end.
    expect(
      states.some(
        (state) =>
          state.status === 'in_progress' &&
          state.counts.completed > 0 &&
          state.counts.completed < 3,
      ),
    ).toBe(true);
    const final = states.at(-1)!;
    expect(final.counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(final.errorFileId).toBeUndefined();
    for (const phase of ['created', 'in_progress', 'finalizing', 'completed'] as const) {
      expect(final.times[phase]).toBeGreaterThan(0);
    }

    const results = (await lines(client, final.outputFileId)).map(parseBatchLine);
    expect(results.map((result) => result.customId).sort()).toEqual(['a', 'b', 'c']);
    for (const result of results) {
      if (!result.ok) throw new Error(`line ${result.customId} failed`);
      const body = result.body as { data: { b64_json: string }[]; usage: unknown };
      const [width, height] = result.customId === 'b' ? [512, 256] : [256, 256];
      expect(body.data).toHaveLength(result.customId === 'b' ? 2 : 1);
      for (const image of body.data) {
        const meta = await sharp(Buffer.from(image.b64_json, 'base64')).metadata();
        expect(meta).toMatchObject({ format: 'png', width, height });
      }
      expect(body.usage).toMatchObject({
        input_tokens: textTokens(`prompt of ${result.customId}`),
      });
    }
  });

  it('bills every completed line once, in the realtime totals and the batch share', async () => {
    const registry = ModelRegistry.load();
    const pricing = registry.get('gpt-image-2')!.pricing as PerTokenPricing;
    const { final } = await runBatch([generation('a', { quality: 'low' }), generation('b')]);
    expect(final.status).toBe('completed');
    const output =
      outputTokensPerImage(pricing, '256x256', 'low') +
      outputTokensPerImage(pricing, '256x256', 'medium');
    const input = textTokens('prompt of a') + textTokens('prompt of b');
    const stats = sim.stats();
    expect(stats.batch).toEqual({
      linesCompleted: 2,
      linesFailed: 0,
      linesExpired: 0,
      linesCancelled: 0,
      billedImages: 2,
      billedTokens: { input, output },
    });
    expect(stats).toMatchObject({
      billedImages: 2,
      billedImagesByPrompt: { 'prompt of a': 1, 'prompt of b': 1 },
      billedImagesByModel: { 'gpt-image-2': 2 },
      billedTokens: { input, output },
      // Batch lines are not realtime requests: neither counted nor rate limited.
      requests: 0,
      maxImagesInWindow: {},
      byEndpoint: { files: 1, batches: 1, generations: 0 },
    });
  });

  it('runs lines beyond the realtime limits, which stay untouched', async () => {
    sim.setKnobs({ imagesPerMinute: 1, requestsPerMinute: 1 });
    const { final } = await runBatch([generation('a'), generation('b'), generation('c')]);
    expect(final.counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(sim.stats().rateLimited).toBe(0);
    sim.setKnobs({ requestsPerMinute: 0 });
  });

  it('renders edits of images given as data URLs', async () => {
    const png = await sharp({
      create: { width: 64, height: 64, channels: 3, background: '#3366cc' },
    })
      .png()
      .toBuffer();
    const { final, output } = await runBatch(
      [
        {
          custom_id: 'edit-1',
          method: 'POST',
          url: '/v1/images/edits',
          body: {
            model: 'gpt-image-2',
            prompt: 'add a hat',
            size: '256x256',
            images: [{ image_url: `data:image/png;base64,${png.toString('base64')}` }],
          },
        },
      ],
      '/v1/images/edits',
    );
    expect(final.counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect(output[0]).toMatchObject({ customId: 'edit-1', ok: true });
    expect(sim.stats().byEndpoint.edits).toBe(0);
  });
});

describe('the client', () => {
  it('uploads lines given one by one, each ended by a newline', async () => {
    const client = api();
    async function* input() {
      yield JSON.stringify(generation('a'));
      yield JSON.stringify(generation('b'));
    }
    const file = await client.uploadFile('streamed.jsonl', input());
    expect(file.bytes).toBe(jsonl([generation('a'), generation('b')]).length);
    const created = await client.createBatch({
      inputFileId: file.id,
      endpoint: '/v1/images/generations',
      metadata: {},
    });
    expect((await follow(client, created.id)).at(-1)!.counts).toEqual({
      total: 2,
      completed: 2,
      failed: 0,
    });
  });

  it('streams lines however the chunks fall: CRLF, blank lines, long lines, multi-byte text', async () => {
    const client = api();
    // Longer than any chunk, and four-byte characters throughout: chunk boundaries split some.
    const long = '🎨'.repeat(1_500_000);
    const content = `first\r\n\r\n${long}\n   \nlast`;
    const file = await client.uploadFile('lines.jsonl', Buffer.from(content));
    expect(await lines(client, file.id)).toEqual(['first', long, 'last']);
  });

  it('gives a typed, retryable error when the server cannot be reached', async () => {
    const closed = await startSimulator();
    const url = closed.url;
    await closed.stop();
    const client = new OpenAIBatchApi({ baseUrl: url, apiKey: KEY });
    const error = await client.getBatch('batch_x').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as ProviderUnavailableError).retryable).toBe(true);
  });

  it('answers an unknown batch or file as a refusal, not a missing model', async () => {
    const client = api();
    await expect(client.getBatch('batch_unknown')).rejects.toMatchObject({ code: 'not_found' });
    const consume = async () => {
      for await (const line of client.fileLines('file-unknown')) void line;
    };
    await expect(consume()).rejects.toBeInstanceOf(ProviderRejectedError);
  });
});

describe('failing lines', () => {
  it('puts lines the API refuses in the error file with their 400, billing only the rest', async () => {
    sim.setKnobs({ contentPolicyPattern: 'forbidden' });
    const { final, output, errors } = await runBatch([
      generation('ok'),
      generation('blocked', { prompt: 'a forbidden thing' }),
      generation('bad-size', { size: '100x100' }),
    ]);
    expect(final).toMatchObject({
      status: 'completed',
      counts: { total: 3, completed: 1, failed: 2 },
    });
    expect(final.errorFileId).toBeDefined();
    expect(output.map((result) => result.customId)).toEqual(['ok']);
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          customId: 'blocked',
          ok: false,
          statusCode: 400,
          code: 'moderation_blocked',
        }),
        expect.objectContaining({ customId: 'bad-size', ok: false, statusCode: 400 }),
      ]),
    );
    expect(sim.stats()).toMatchObject({
      billedImages: 1,
      batch: { linesCompleted: 1, linesFailed: 2, billedImages: 1 },
    });
  });

  it('fails a share of lines with a 500 by batchLineFailRate, unbilled', async () => {
    sim.setKnobs({ batchLineFailRate: 1 });
    const { final, output, errors } = await runBatch([generation('a'), generation('b')]);
    expect(final).toMatchObject({ status: 'completed', counts: { completed: 0, failed: 2 } });
    expect(final.outputFileId).toBeUndefined();
    expect(output).toEqual([]);
    expect(errors).toHaveLength(2);
    for (const error of errors) {
      expect(error).toMatchObject({ ok: false, statusCode: 500, code: 'server_error' });
    }
    expect(sim.stats()).toMatchObject({ billedImages: 0, batch: { linesFailed: 2 } });
  });

  it('answers a retired model in every line with 404 model_not_found', async () => {
    sim.setKnobs({ retiredModels: ['gpt-image-2'] });
    const { errors } = await runBatch([generation('a')]);
    expect(errors).toEqual([
      expect.objectContaining({ customId: 'a', statusCode: 404, code: 'model_not_found' }),
    ]);
    sim.setKnobs({ retiredModels: [] });
  });
});

describe('validation', () => {
  const failedWith = async (input: Buffer | unknown[]) => {
    const client = api();
    const file = await client.uploadFile(
      'bad.jsonl',
      Buffer.isBuffer(input) ? input : jsonl(input),
    );
    const created = await client.createBatch({
      inputFileId: file.id,
      endpoint: '/v1/images/generations',
      metadata: {},
    });
    const final = (await follow(client, created.id)).at(-1)!;
    expect(final.status).toBe('failed');
    expect(final.times.failed).toBeGreaterThan(0);
    expect(final.outputFileId).toBeUndefined();
    return final.errors;
  };

  it('fails a file with bad lines, naming each by code and line', async () => {
    const errors = await failedWith(
      Buffer.from(
        [
          JSON.stringify(generation('a')),
          '{not json',
          JSON.stringify(generation('a')),
          JSON.stringify({ ...generation('b'), url: '/v1/images/edits' }),
          JSON.stringify({ ...generation('c'), method: 'GET' }),
        ].join('\n'),
      ),
    );
    expect(errors).toEqual([
      { code: 'invalid_json_line', message: expect.any(String), line: 2 },
      { code: 'duplicate_custom_id', message: expect.any(String), line: 3 },
      { code: 'url_mismatch', message: expect.any(String), line: 4 },
      { code: 'invalid_method', message: expect.any(String), line: 5 },
    ]);
    expect(sim.stats().billedImages).toBe(0);
  });

  it('fails a file asking for two models', async () => {
    const errors = await failedWith([generation('a'), generation('b', { model: 'dall-e-2' })]);
    expect(errors).toEqual([expect.objectContaining({ code: 'model_mismatch', line: 2 })]);
  });

  it('fails a file over batchMaxLines or batchMaxBytes, or an empty one', async () => {
    sim.setKnobs({ batchMaxLines: 2 });
    expect(await failedWith([generation('a'), generation('b'), generation('c')])).toEqual([
      expect.objectContaining({ code: 'too_many_tasks' }),
    ]);
    sim.setKnobs({ batchMaxLines: 50_000, batchMaxBytes: 100 });
    expect(await failedWith([generation('a'), generation('b')])).toEqual([
      expect.objectContaining({ code: 'file_too_large' }),
    ]);
    sim.setKnobs({ batchMaxBytes: 200 * 1024 * 1024 });
    expect(await failedWith(Buffer.from('\n\n'))).toEqual([
      expect.objectContaining({ code: 'empty_file' }),
    ]);
  });

  it('refuses a batch of another endpoint, window or file purpose with a 400', async () => {
    const client = api();
    const file = await client.uploadFile('input.jsonl', jsonl([generation('a')]));
    const create = (body: Body) =>
      raw('/batches', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          input_file_id: file.id,
          endpoint: '/v1/images/generations',
          completion_window: '24h',
          ...body,
        }),
      });
    expect((await create({ endpoint: '/v1/chat/completions' })).status).toBe(400);
    expect((await create({ completion_window: '1h' })).status).toBe(400);
    expect((await create({ input_file_id: 'file-unknown' })).status).toBe(400);
    const accepted = await create({});
    expect(accepted.status).toBe(200);
    // Ended before the next test resets the simulator, so no line of it bills across.
    await follow(client, ((await accepted.json()) as { id: string }).id);
    const upload = new FormData();
    upload.set('purpose', 'fine-tune');
    upload.set('file', new Blob(['{}\n']), 'x.jsonl');
    expect((await raw('/files', { method: 'POST', body: upload })).status).toBe(400);
  });
});

describe('expiry and cancel', () => {
  it('expires a batch still running after batchExpireMs, the lines not reached in the error file', async () => {
    sim.setKnobs({ batchLineMs: 100, batchExpireMs: 600 });
    const input = Array.from({ length: 30 }, (_, index) => generation(`line-${index}`));
    const { final, output, errors } = await runBatch(input);
    expect(final.status).toBe('expired');
    expect(final.times.expired).toBeGreaterThan(0);
    expect(output.length).toBeGreaterThan(0);
    expect(output.length).toBeLessThan(30);
    expect(output.every((result) => result.ok)).toBe(true);
    expect(errors).toHaveLength(30 - output.length);
    for (const error of errors) {
      expect(error).toMatchObject({ ok: false, code: 'batch_expired' });
    }
    const ids = [...output, ...errors].map((result) => result.customId).sort();
    expect(ids).toEqual(input.map((line) => line.custom_id).sort());
    expect(sim.stats().batch).toMatchObject({
      linesCompleted: output.length,
      linesExpired: 30 - output.length,
    });
  });

  it('cancels: cancelling, then cancelled with the completed lines only', async () => {
    const client = api();
    sim.setKnobs({ batchLineMs: 30, batchFinalizingMs: 50 });
    const input = Array.from({ length: 40 }, (_, index) => generation(`line-${index}`));
    const file = await client.uploadFile('input.jsonl', jsonl(input));
    const created = await client.createBatch({
      inputFileId: file.id,
      endpoint: '/v1/images/generations',
      metadata: {},
    });
    let state = await client.getBatch(created.id);
    while (state.counts.completed < 2) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      state = await client.getBatch(created.id);
    }
    const cancelling = await client.cancelBatch(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.times.cancelling).toBeGreaterThan(0);
    const final = (await follow(client, created.id)).at(-1)!;
    expect(final.status).toBe('cancelled');
    expect(final.times.cancelled).toBeGreaterThan(0);
    const output = (await lines(client, final.outputFileId)).map(parseBatchLine);
    expect(output).toHaveLength(final.counts.completed);
    expect(final.counts.completed).toBeLessThan(40);
    expect(final.errorFileId).toBeUndefined();
    expect(sim.stats().batch).toMatchObject({
      linesCompleted: final.counts.completed,
      linesCancelled: 40 - final.counts.completed,
    });

    // An ended batch cannot be cancelled, as OpenAI answers it.
    const again = await client.cancelBatch(created.id).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ProviderRejectedError);
    expect((again as Error).message).toMatch(/Cannot cancel a batch with status 'cancelled'/);
  });
});

describe('the enqueued-token limit', () => {
  it('fails a batch whose tokens with those still enqueued for the model exceed it', async () => {
    const registry = ModelRegistry.load();
    const pricing = registry.get('gpt-image-2')!.pricing as PerTokenPricing;
    const perLine =
      textTokens('prompt of line-0') + outputTokensPerImage(pricing, '256x256', 'medium');
    // Room for four lines: a running batch of three leaves one.
    sim.setKnobs({ batchQueueTokens: { 'gpt-image-2': perLine * 4 }, batchLineMs: 500 });
    const client = api();
    const create = async (count: number) => {
      const input = Array.from({ length: count }, (_, index) => generation(`line-${index}`));
      const file = await client.uploadFile('input.jsonl', jsonl(input));
      return client.createBatch({
        inputFileId: file.id,
        endpoint: '/v1/images/generations',
        metadata: {},
      });
    };
    const running = await create(3);
    const refused = (await follow(client, (await create(2)).id)).at(-1)!;
    expect(refused.status).toBe('failed');
    expect(refused.errors[0]).toMatchObject({ code: 'token_limit_exceeded' });
    const fits = await create(1);
    expect((await follow(client, fits.id)).at(-1)!.status).toBe('completed');
    expect((await follow(client, running.id)).at(-1)!.status).toBe('completed');
    // Once the first has ended its tokens no longer count.
    expect((await follow(client, (await create(2)).id)).at(-1)!.status).toBe('completed');
  });
});

describe('lists', () => {
  it('pages batches newest first, and files by purpose and order', async () => {
    const client = api();
    const file = await client.uploadFile('input.jsonl', jsonl([generation('a')]));
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      const batch = await client.createBatch({
        inputFileId: file.id,
        endpoint: '/v1/images/generations',
        metadata: { index: String(index) },
      });
      ids.push(batch.id);
    }
    for (const id of ids) await follow(client, id);
    type Page = { data: { id: string; filename?: string }[]; first_id: string; last_id: string };
    const page = async (query: string) => (await (await raw(`/batches?${query}`)).json()) as Page;
    const first = await page('limit=2');
    expect(first).toMatchObject({ object: 'list', has_more: true });
    expect(first.data.map((batch) => batch.id)).toEqual([ids[4], ids[3]]);
    expect(first.first_id).toBe(ids[4]);
    expect(first.last_id).toBe(ids[3]);
    const last = await page(`limit=2&after=${ids[1]}`);
    expect(last).toMatchObject({ has_more: false, data: [{ id: ids[0] }] });

    // The client's scan walks the pages and stops where told.
    expect((await client.findBatch({ index: '0' }))?.id).toBe(ids[0]);
    expect(await client.findBatch({ index: '0' }, 3)).toBeUndefined();

    await client.uploadFile('second.jsonl', jsonl([generation('b')]));
    const files = async (query: string) => (await (await raw(`/files?${query}`)).json()) as Page;
    const batchFiles = await files('purpose=batch&order=asc&limit=1');
    expect(batchFiles).toMatchObject({ has_more: true, data: [{ filename: 'input.jsonl' }] });
    const rest = await files(`purpose=batch&order=asc&after=${batchFiles.last_id}`);
    expect(rest).toMatchObject({ has_more: false, data: [{ filename: 'second.jsonl' }] });

    const deleted = await raw(`/files/${file.id}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ id: file.id, object: 'file', deleted: true });
    expect((await raw(`/files/${file.id}`)).status).toBe(404);
  });

  it('forgets files and batches at a reset', async () => {
    // Still validating at the reset, so no line of it renders afterwards.
    sim.setKnobs({ batchValidatingMs: 60_000 });
    const client = api();
    const file = await client.uploadFile('input.jsonl', jsonl([generation('a')]));
    const batch = await client.createBatch({
      inputFileId: file.id,
      endpoint: '/v1/images/generations',
      metadata: {},
    });
    sim.reset();
    expect(await client.findFile('input.jsonl')).toBeUndefined();
    expect(await client.getBatch(batch.id).catch((error: unknown) => error)).toBeInstanceOf(
      ProviderRejectedError,
    );
  });
});

describe('auth', () => {
  it('refuses a wrong key on every endpoint with 401, a forbidden one with 403', async () => {
    sim.setKnobs({ apiKeys: [KEY, 'sk-forbidden'], forbiddenKeys: ['sk-forbidden'] });
    const wrong = api('sk-wrong');
    await expect(wrong.uploadFile('x.jsonl', jsonl([generation('a')]))).rejects.toBeInstanceOf(
      ProviderAuthError,
    );
    await expect(wrong.findFile('x.jsonl')).rejects.toBeInstanceOf(ProviderAuthError);
    await expect(wrong.findBatch({ a: 'b' })).rejects.toBeInstanceOf(ProviderAuthError);
    await expect(wrong.getBatch('batch_x')).rejects.toBeInstanceOf(ProviderAuthError);
    await expect(wrong.cancelBatch('batch_x')).rejects.toBeInstanceOf(ProviderAuthError);
    await expect(
      wrong.createBatch({
        inputFileId: 'file-x',
        endpoint: '/v1/images/generations',
        metadata: {},
      }),
    ).rejects.toBeInstanceOf(ProviderAuthError);
    const consume = async () => {
      for await (const line of wrong.fileLines('file-x')) void line;
    };
    await expect(consume()).rejects.toBeInstanceOf(ProviderAuthError);
    for (const [method, path] of [
      ['GET', '/files/file-x'],
      ['GET', '/files/file-x/content'],
      ['DELETE', '/files/file-x'],
      ['GET', '/batches'],
    ]) {
      expect((await raw(path!, { method, key: 'sk-wrong' })).status).toBe(401);
      expect((await raw(path!, { method, key: 'sk-forbidden' })).status).toBe(403);
    }
    await expect(api('sk-forbidden').getBatch('batch_x')).rejects.toBeInstanceOf(ProviderAuthError);
    expect(sim.stats().byEndpoint).toMatchObject({ files: 0, batches: 0 });
  });
});
