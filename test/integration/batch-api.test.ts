import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduledBatchId, submitBatch } from '../../src/batches/submit-batch.js';
import { submitDepsFor } from '../../src/runtime/wiring.js';
import { auth, startHarness, waitForBatch, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000, latencyMs: 20 },
    env: { RENDERMILL_MAX_JSON_BODY_MB: '1', RENDERMILL_MAX_CATALOG_MB: '1' },
  });
});
afterAll(async () => {
  await h?.stop();
});

const CSV = 'text/csv';
const JSONL = 'application/x-ndjson';

function post(
  url: string,
  payload: string | object,
  options: { type?: string; key?: string; tenant?: 'acme' | 'globex' } = {},
) {
  return h.api.inject({
    method: 'POST',
    url,
    headers: {
      ...auth(options.tenant),
      ...(options.type ? { 'content-type': options.type } : {}),
      ...(options.key ? { 'idempotency-key': options.key } : {}),
    },
    payload,
  });
}

const get = (url: string, tenant: 'acme' | 'globex' = 'acme') =>
  h.api.inject({ method: 'GET', url, headers: auth(tenant) });

const query = (options: Record<string, string | number>) =>
  new URLSearchParams(
    Object.entries(options).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString();

/** Every batch's item list in Redis: what a refused submission must not leave behind. */
async function batchKeys(): Promise<string[]> {
  return (await h.services.redis.keys('rm:{batches}:batch:*:items')).sort();
}

const catalog = (rows: string[]) => ['sku,title,colour', ...rows].join('\n') + '\n';
const defaults = { model: 'dall-e-2', size: '256x256' };

describe('catalogs on POST /v1/batches', () => {
  it('takes a CSV with a template and renders one item per row, ids from the sku column', async () => {
    const body = catalog(['MUG-1,Mug,red', 'MUG-2,"Mug, large",blue', 'MUG-3,Cup,green']);
    const url = `/v1/batches?${query({ ...defaults, template: 'A {{colour}} {{title}} on white' })}`;
    const response = await post(url, body, { type: CSV });
    expect(response.statusCode, response.body).toBe(202);
    const batch = response.json();
    expect(batch.counts.total).toBe(3);
    expect(batch.metadata).toEqual({ input_format: 'csv' });
    await waitForBatch(h, batch.id);
    const items = await h.services.store.items(batch.id);
    expect(items.map((item) => [item.id, item.spec.prompt, item.status])).toEqual([
      ['MUG-1', 'A red Mug on white', 'succeeded'],
      ['MUG-2', 'A blue Mug, large on white', 'succeeded'],
      ['MUG-3', 'A green Cup on white', 'succeeded'],
    ]);
  });

  it('refuses a CSV with bad rows by default, naming each line, and leaves nothing behind', async () => {
    const before = await batchKeys();
    const body = catalog([
      'A,Mug,red',
      'B,Mug,red,extra', // line 3: a column too many
      'C,Mug,blue',
      'A,Mug,green', // line 5: the id A again
    ]);
    const url = `/v1/batches?${query({ ...defaults, template: '{{colour}} {{title}}' })}`;
    const response = await post(url, body, { type: CSV });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe('invalid_rows');
    expect(error.message).toBe(
      'line 3: has 4 fields but the header has 3 (and 1 more problem(s), see details)',
    );
    expect(error.details).toEqual([
      expect.objectContaining({ line: 3 }),
      expect.objectContaining({ line: 5, field: 'id', message: 'id "A" is also used by line 2' }),
    ]);
    expect(await batchKeys()).toEqual(before);
  });

  it('skips bad rows and accepts the rest when asked to (on_invalid=skip)', async () => {
    const body = catalog(['A,Mug,red', 'B,Mug,red,extra', 'C,Mug,blue', 'D,,']);
    const url = `/v1/batches?${query({ ...defaults, size: '300x300', template: '{{colour}} {{title}}', on_invalid: 'skip' })}`;
    // The size is wrong for every row: nothing is left, so the batch is refused after all.
    const none = await post(url, body, { type: CSV });
    expect(none.statusCode).toBe(400);
    expect(none.json().error.message).toMatch(/no row could become an item \(4 rejected\)/);

    const good = `/v1/batches?${query({ ...defaults, template: '{{colour}} {{title}}', on_invalid: 'skip', budget_usd: 1 })}`;
    const response = await post(good, body, { type: CSV });
    expect(response.statusCode, response.body).toBe(202);
    const batch = response.json();
    expect(batch.counts.total).toBe(2);
    // Line 3 has a column too many; line 5 fills the template with nothing: an empty prompt.
    expect(batch.rejected.count).toBe(2);
    expect(batch.rejected.rows).toEqual([
      expect.objectContaining({ line: 3 }),
      expect.objectContaining({ line: 5, field: 'prompt' }),
    ]);
    expect(batch.budget_usd).toBe(1);
  });

  it('reads a CSV whose lines end in a mix of CRLF and LF, as spreadsheets and hand edits leave them', async () => {
    const body = 'sku,title,colour\r\nA,Mug,red\nB,Cup,blue\r\nC,Bowl,green\n';
    const url = `/v1/batches/estimate?${query({ ...defaults, template: '{{colour}} {{title}}' })}`;
    const response = await post(url, body, { type: CSV });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ items: 3, rejected: { count: 0 } });
  });

  it('skips badly shaped JSON items too when asked, and refuses catalog options in a JSON batch’s query', async () => {
    const body = {
      ...defaults,
      items: [
        { id: 'good', prompt: 'a good mug' },
        { id: '', prompt: 'no id' },
        { id: 'odd', prompt: 'a mug', colour: 'red' },
      ],
    };
    const refused = await post('/v1/batches', body);
    expect(refused.statusCode).toBe(400);
    const fields = refused.json().error.details.map((d: { field: string }) => d.field);
    expect(new Set(fields)).toEqual(new Set(['items[1].id', 'items[2]']));
    const skipped = await post('/v1/batches?on_invalid=skip', body);
    expect(skipped.statusCode, skipped.body).toBe(202);
    expect(skipped.json().counts.total).toBe(1);
    expect(skipped.json().rejected.count).toBe(2);

    // A budget in the query of a JSON batch would otherwise be ignored: the batch would have none.
    const misplaced = await post('/v1/batches?budget_usd=0.01', body);
    expect(misplaced.statusCode).toBe(400);
    expect(misplaced.json().error).toMatchObject({
      field: 'budget_usd',
      message: expect.stringMatching(/in a JSON batch, put budget_usd in the body/),
    });
  });

  it('refuses a template naming a column the catalog lacks, listing its columns', async () => {
    const url = `/v1/batches?${query({ ...defaults, template: 'a {{material}} {{title}}' })}`;
    const response = await post(url, catalog(['A,Mug,red']), { type: CSV });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.field).toBe('template');
    expect(error.message).toBe(
      'template: uses {{material}} but the catalog has no such column; its columns: sku, title, colour',
    );
  });

  it('takes JSON Lines, with a prompt of its own when there is no template', async () => {
    const body = [
      JSON.stringify({ id: 'j1', prompt: 'a teapot' }),
      '',
      JSON.stringify({ id: 'j2', prompt: 'a kettle' }),
      '{"id": "j3", "prompt": ',
    ].join('\n');
    const refused = await post(`/v1/batches?${query(defaults)}`, body, { type: JSONL });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.message).toMatch(/^line 4: not valid JSON/);
    const url = `/v1/batches?${query({ ...defaults, on_invalid: 'skip' })}`;
    const response = await post(url, body, { type: JSONL });
    expect(response.statusCode, response.body).toBe(202);
    expect(response.json().counts.total).toBe(2);
    expect(response.json().rejected).toEqual({
      count: 1,
      rows: [expect.objectContaining({ line: 4 })],
    });
  });

  it('streams a large catalog through in chunks: 5,000 rows, one bad at the very end refuses all', async () => {
    const rows = Array.from({ length: 5_000 }, (_, i) => `S${i},Mug ${i},red`);
    const before = await batchKeys();
    const bad = await post(
      `/v1/batches?${query({ ...defaults, template: '{{title}}' })}`,
      catalog([...rows, 'LAST,Mug,red,extra']),
      { type: CSV },
    );
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details).toEqual([expect.objectContaining({ line: 5_002 })]);
    // The first chunks had been staged before the bad line arrived: they are gone.
    expect(await batchKeys()).toEqual(before);

    const estimate = await post(
      `/v1/batches/estimate?${query({ ...defaults, template: '{{title}}' })}`,
      catalog(rows),
      { type: CSV },
    );
    expect(estimate.statusCode, estimate.body).toBe(200);
    expect(estimate.json()).toMatchObject({
      items: 5_000,
      images_to_render: 5_000,
      max_usd: 80, // 5,000 × $0.016
      images_per_minute: 60_000,
      eta_seconds: 5, // 5,000 images at 60,000 a minute
    });
    expect(await batchKeys()).toEqual(before);
  });

  it('refuses a catalog over the size limit with 413 and a JSON body over its own with 413', async () => {
    const big = catalog(Array.from({ length: 40_000 }, (_, i) => `S${i},Mug number ${i},red`));
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const response = await post(
      `/v1/batches?${query({ ...defaults, template: '{{title}}' })}`,
      big,
      {
        type: CSV,
      },
    );
    expect(response.statusCode).toBe(413);
    expect(response.json().error).toMatchObject({ code: 'body_too_large' });
    const json = await post('/v1/batches', {
      ...defaults,
      items: Array.from({ length: 9_000 }, (_, i) => ({ id: `i${i}`, prompt: 'x'.repeat(150) })),
    });
    expect(json.statusCode).toBe(413);
  });

  it('refuses a webhook to a loopback or private address, creating nothing', async () => {
    const before = await batchKeys();
    for (const webhook_url of ['http://127.0.0.1:9000/hook', 'http://169.254.169.254/latest']) {
      const response = await post('/v1/batches', {
        ...defaults,
        webhook_url,
        items: [{ id: 'w', prompt: 'a mug' }],
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().error).toMatchObject({
        code: 'invalid_webhook_url',
        field: 'webhook_url',
      });
    }
    const csv = await post(
      `/v1/batches?${query({ ...defaults, template: '{{title}}', webhook_url: 'http://localhost/x' })}`,
      catalog(['A,Mug,red']),
      { type: CSV },
    );
    expect(csv.statusCode).toBe(400);
    expect(await batchKeys()).toEqual(before);
  });

  it('refuses a content type it cannot read with 415, naming the ones it can', async () => {
    const response = await post('/v1/batches', '<batch/>', { type: 'application/xml' });
    expect(response.statusCode).toBe(415);
    expect(response.json().error.message).toMatch(
      /application\/json.*text\/csv.*application\/x-ndjson/,
    );
  });
});

describe('OpenAI Batch API files', () => {
  const line = (id: string, body: object, url = '/v1/images/generations') =>
    JSON.stringify({ custom_id: id, method: 'POST', url, body });

  it('takes an OpenAI Batch JSONL as-is and gives OpenAI-style output and error files', async () => {
    const body = [
      line('req-1', {
        model: 'dall-e-2',
        prompt: 'a red mug',
        size: '256x256',
        response_format: 'b64_json',
      }),
      line('req-2', { model: 'dall-e-2', prompt: 'a blue mug', size: '256x256', n: 2 }),
      line('req-3', { model: 'dall-e-2', prompt: 'a green mug', size: '256x256' }),
    ].join('\n');
    // Budget for two images only: req-3 or req-2 cannot be afforded.
    const response = await post(`/v1/batches?${query({ budget_usd: 0.04 })}`, body, {
      type: JSONL,
    });
    expect(response.statusCode, response.body).toBe(202);
    const batch = response.json();
    expect(batch.metadata).toEqual({ input_format: 'openai-batch' });
    const early = await get(`/v1/batches/${batch.id}/output.jsonl`);
    if (early.statusCode !== 200) expect(early.json().error.code).toBe('batch_not_ended');
    await waitForBatch(h, batch.id);

    const output = await get(`/v1/batches/${batch.id}/output.jsonl`);
    expect(output.statusCode).toBe(200);
    expect(output.headers['content-type']).toMatch(/application\/x-ndjson/);
    const rendered = output.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const errors = (await get(`/v1/batches/${batch.id}/errors.jsonl`)).body
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(rendered.length + errors.length).toBe(3);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const result of rendered) {
      expect(result).toMatchObject({
        custom_id: expect.stringMatching(/^req-/),
        response: { status_code: 200, body: { data: expect.any(Array) } },
        error: null,
      });
      const image = await fetch(result.response.body.data[0].url);
      expect(image.status).toBe(200);
      expect(
        Buffer.from(await image.arrayBuffer())
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    }
    for (const failure of errors) {
      expect(failure).toMatchObject({
        custom_id: expect.stringMatching(/^req-/),
        response: {
          status_code: 429,
          body: { error: { type: 'insufficient_quota', code: 'budget_exceeded' } },
        },
      });
    }
  });

  it('names the line of an OpenAI Batch request rendermill cannot run', async () => {
    const body = [
      line('ok', { model: 'dall-e-2', prompt: 'a mug', size: '256x256' }),
      line('chat', { model: 'gpt-5', messages: [] }, '/v1/chat/completions'),
      line('odd', { model: 'dall-e-2', prompt: 'a mug', size: '256x256', temperature: 1 }),
    ].join('\n');
    const response = await post('/v1/batches', body, { type: JSONL });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details).toEqual([
      expect.objectContaining({ line: 2, field: 'url' }),
      expect.objectContaining({ line: 3, field: 'body.temperature', message: 'is not supported' }),
    ]);
  });
});

describe('listing and cancelling', () => {
  it('lists the tenant’s batches newest first, page by page, filtered by status', async () => {
    const own: string[] = [];
    for (let i = 0; i < 5; i++) {
      const response = await post(
        '/v1/batches',
        { ...defaults, items: [{ id: 'x', prompt: `list ${i}` }] },
        { tenant: 'globex' },
      );
      own.unshift(response.json().id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await get(
        `/v1/batches?${query({ limit: 2, ...(cursor ? { cursor } : {}) })}`,
        'globex',
      );
      expect(page.statusCode, page.body).toBe(200);
      const body = page.json();
      seen.push(...body.data.map((b: { id: string }) => b.id));
      cursor = body.next_cursor;
      pages += 1;
    } while (cursor);
    expect(seen).toEqual(own);
    expect(pages).toBe(3);
    await Promise.all(own.map((id) => waitForBatch(h, id)));
    const completed = await get(
      `/v1/batches?${query({ status: 'completed', limit: 100 })}`,
      'globex',
    );
    expect(completed.json().data.map((b: { id: string }) => b.id)).toEqual(own);
    const cancelled = await get(`/v1/batches?status=cancelled`, 'globex');
    expect(cancelled.json()).toEqual({ data: [], next_cursor: null });
    const foreign = await get(`/v1/batches?${query({ cursor: own[0]! })}`, 'acme');
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().error.code).toBe('invalid_cursor');
    const badLimit = await get('/v1/batches?limit=1000', 'globex');
    expect(badLimit.statusCode).toBe(400);
    expect(badLimit.json().error.field).toBe('limit');
  });

  it('cancels a batch: queued items are cancelled, started ones finish, nothing stays reserved', async () => {
    await h.sim.setKnobs({ latencyMs: 400 });
    try {
      const billedBefore = h.sim.stats().billedImages;
      const items = Array.from({ length: 40 }, (_, i) => ({
        id: `c${i}`,
        prompt: `cancel me ${i}`,
      }));
      const submitted = await post('/v1/batches', { ...defaults, budget_usd: 5, items });
      const { id } = submitted.json();
      await new Promise((resolve) => setTimeout(resolve, 150));
      const response = await post(`/v1/batches/${id}/cancel`, {});
      expect(response.statusCode, response.body).toBe(200);
      expect(['cancelling', 'cancelled']).toContain(response.json().status);
      const done = await waitForBatch(h, id);
      expect(done.status).toBe('cancelled');
      expect(done.counts.cancelled).toBeGreaterThan(20);
      expect(done.counts.succeeded + done.counts.cancelled).toBe(40);
      expect(done.reserved_micros).toBe(0);
      const billed = h.sim.stats().billedImages - billedBefore;
      expect(billed).toBe(done.counts.succeeded);
      expect(done.spent_micros).toBe(done.counts.succeeded * 16_000);
      const waiting = await h.services.queue.queue('render').getJobCounts('waiting', 'delayed');
      expect((waiting.waiting ?? 0) + (waiting.delayed ?? 0)).toBe(0);
      const again = await post(`/v1/batches/${id}/cancel`, {});
      expect(again.statusCode).toBe(409);
      expect(again.json().error.message).toBe(`batch ${id} is already cancelled`);
      const errors = (await get(`/v1/batches/${id}/errors.jsonl`)).body.trim().split('\n');
      expect(errors).toHaveLength(done.counts.cancelled);
      expect(JSON.parse(errors[0]!)).toMatchObject({
        response: null,
        error: { code: 'batch_cancelled' },
      });
    } finally {
      await h.sim.setKnobs({ latencyMs: 20 });
    }
  });

  it('answers 404 for another tenant’s batch on every route', async () => {
    const response = await post('/v1/batches', {
      ...defaults,
      items: [{ id: 'x', prompt: 'mine' }],
    });
    const { id } = response.json();
    for (const [method, url] of [
      ['GET', `/v1/batches/${id}`],
      ['GET', `/v1/batches/${id}/manifest`],
      ['GET', `/v1/batches/${id}/output.jsonl`],
      ['POST', `/v1/batches/${id}/cancel`],
    ] as const) {
      const other = await h.api.inject({
        method,
        url,
        headers: auth('globex'),
        ...(method === 'POST' ? { payload: {} } : {}),
      });
      expect(other.statusCode, `${method} ${url}`).toBe(404);
      expect(other.json().error.message).toBe(`no batch ${id}`);
    }
    await waitForBatch(h, id);
    const csv = await get(`/v1/batches/${id}/manifest?format=csv`);
    expect(csv.headers['content-type']).toMatch(/text\/csv/);
    expect(csv.body.split('\n')[0]).toMatch(/^id,status,/);
  });
});

describe('a schedule run’s fixed batch id', () => {
  it('submits once however often the run is attempted, finishing the queueing of the first', async () => {
    const deps = submitDepsFor(h.services);
    const batchId = scheduledBatchId('sch_fixed', new Date('2026-11-23T08:00:00Z'));
    const body = { ...defaults, items: [{ id: 'f1', prompt: 'fixed id mug one' }] };
    const first = await submitBatch(deps, 'acme', body, { scheduleId: 'sch_fixed', batchId });
    // The same run again, with another body even (the template's date moved on): no new batch.
    const again = await submitBatch(
      deps,
      'acme',
      { ...body, items: [{ id: 'f1', prompt: 'fixed id mug two' }] },
      { scheduleId: 'sch_fixed', batchId },
    );
    expect(again.id).toBe(first.id);
    await waitForBatch(h, batchId);
    const items = await h.services.store.items(batchId);
    expect(items.map((item) => item.spec.prompt)).toEqual(['fixed id mug one']);
    const listed = await get('/v1/batches?schedule_id=sch_fixed');
    expect(listed.json().data.map((b: { id: string }) => b.id)).toEqual([batchId]);
  });
});

describe('Idempotency-Key', () => {
  it('returns the same batch for a retried request and refuses the key with another body', async () => {
    const body = { ...defaults, items: [{ id: 'i1', prompt: 'idempotent mug' }] };
    const first = await post('/v1/batches', body, { key: 'order-7731' });
    const retry = await post('/v1/batches', body, { key: 'order-7731' });
    expect(first.statusCode).toBe(202);
    expect(retry.statusCode).toBe(202);
    expect(retry.json().id).toBe(first.json().id);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers.location).toBe(first.headers.location);
    const other = await post('/v1/batches', { ...body, budget_usd: 2 }, { key: 'order-7731' });
    expect(other.statusCode).toBe(422);
    expect(other.json().error).toMatchObject({ code: 'idempotency_key_reused' });
    // Keys are per tenant: another tenant's same key is a new request.
    const globex = await post('/v1/batches', body, { key: 'order-7731', tenant: 'globex' });
    expect(globex.statusCode).toBe(202);
    expect(globex.json().id).not.toBe(first.json().id);
  });

  it('replays a catalog upload too, and lets a refused request be corrected under the same key', async () => {
    const url = `/v1/batches?${query({ ...defaults, template: '{{title}}' })}`;
    const bad = await post(url, catalog(['A,Mug,red', 'B,Mug,red,extra']), {
      type: CSV,
      key: 'cat-1',
    });
    expect(bad.statusCode).toBe(400);
    const body = catalog(['A,Mug,red', 'B,Cup,red']);
    const first = await post(url, body, { type: CSV, key: 'cat-1' });
    const retry = await post(url, body, { type: CSV, key: 'cat-1' });
    expect(first.statusCode, first.body).toBe(202);
    expect(retry.json().id).toBe(first.json().id);
    const changed = await post(url, catalog(['A,Mug,red', 'B,Bowl,red']), {
      type: CSV,
      key: 'cat-1',
    });
    expect(changed.statusCode).toBe(422);
  });

  it('lets only one of two concurrent requests with one key run', async () => {
    const body = { ...defaults, items: [{ id: 'c', prompt: 'concurrent mug' }] };
    const answers = await Promise.all([
      post('/v1/batches', body, { key: 'race-1' }),
      post('/v1/batches', body, { key: 'race-1' }),
    ]);
    const codes = answers.map((a) => a.statusCode).sort();
    const ids = new Set(answers.filter((a) => a.statusCode === 202).map((a) => a.json().id));
    expect(ids.size).toBe(1);
    expect(codes.every((code) => code === 202 || code === 409)).toBe(true);
  });
});

describe('the OpenAPI document', () => {
  it('is generated from the schemas that validate requests and served with a reference page', async () => {
    const doc = await h.api.inject({ method: 'GET', url: '/openapi.json' });
    expect(doc.statusCode).toBe(200);
    const spec = doc.json();
    expect(spec.openapi).toBe('3.0.3');
    const submit = spec.paths['/v1/batches'].post;
    const schema = submit.requestBody.content['application/json'].schema;
    expect(schema.properties.items.maxItems).toBe(10_000);
    expect(schema.required).toContain('items');
    expect(schema.additionalProperties).toBe(false);
    const params = submit.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(
      expect.arrayContaining(['template', 'on_invalid', 'budget_usd', 'idempotency-key']),
    );
    expect(Object.keys(submit.responses)).toEqual(
      expect.arrayContaining(['202', '400', '401', '409', '413', '415', '422']),
    );
    expect(
      submit.responses['400'].content['application/json'].schema.properties.error,
    ).toBeDefined();
    expect(Object.keys(submit.requestBody.content)).toEqual([
      'application/json',
      'text/csv',
      'application/x-ndjson',
    ]);
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/v1/batches/{id}/cancel', '/v1/batches/estimate']),
    );
    const page = await h.api.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });
});

describe('provider batch mode in the batch view, the manifest and the estimate', () => {
  let pb: Harness;
  beforeAll(async () => {
    pb = await startHarness({
      env: {
        RENDERMILL_BATCH_API: 'true',
        RENDERMILL_PROVIDER_BATCH_POLL_MS: '100',
        RENDERMILL_PROVIDER_BATCH_GATHER_MS: '300',
      },
      // Phases long enough for a look every 50 ms to find the provider batch under way.
      simulator: { batchValidatingMs: 600, batchLineMs: 30, batchFinalizingMs: 300 },
    });
  }, 60_000);
  afterAll(async () => pb?.stop());

  const pbGet = (url: string) => pb.api.inject({ method: 'GET', url, headers: auth() });
  const pbPost = (url: string, payload: object) =>
    pb.api.inject({ method: 'POST', url, headers: auth(), payload });
  const base = { model: 'gpt-image-2', size: '256x256', quality: 'low' };
  const skus = (count: number, prefix: string) =>
    Array.from({ length: count }, (_, i) => ({ id: `sku-${i}`, prompt: `${prefix} ${i}` }));

  interface PartView {
    part: number;
    route: string;
    model: string;
    provider_batch_id: string | null;
    status: string;
    lines: number;
    completed: number;
    failed: number;
    submitted_at: string | null;
    in_progress_at: string | null;
    finalizing_at: string | null;
    ended_at: string | null;
    stored_at: string | null;
    error: string | null;
  }
  interface Summary {
    status: string;
    lines: number;
    completed: number;
    failed: number;
  }

  it('shows the mode, the provider batch phase with counts while it runs, and each part with its times', async () => {
    const completeBy = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const submitted = await pbPost('/v1/batches', {
      ...base,
      mode: 'auto',
      complete_by: completeBy,
      on_expiry: 'realtime',
      items: skus(10, 'walnut tray'),
    });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const { id, mode, mode_requested } = submitted.json<{
      id: string;
      mode: string;
      mode_requested: string;
    }>();
    expect({ mode, mode_requested }).toEqual({ mode: 'provider_batch', mode_requested: 'auto' });

    const seen: Summary[] = [];
    let finished;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      const view = (await pbGet(`/v1/batches/${id}`)).json<{
        status: string;
        manifest_key: string | null;
        provider_batch: Summary | null;
      }>();
      if (view.provider_batch) seen.push(view.provider_batch);
      if (view.status === 'completed' && view.manifest_key) {
        finished = view;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(finished, 'the batch did not complete').toBeDefined();
    const phases = [...new Set(seen.map((summary) => summary.status))];
    expect(
      phases.some((phase) => ['validating', 'in_progress', 'finalizing'].includes(phase)),
    ).toBe(true);
    // Phases only move forward, and lines answered never go back.
    const order = [
      'gathering',
      'submitting',
      'waiting_for_room',
      'validating',
      'in_progress',
      'finalizing',
      'storing',
      'stored',
    ];
    const ranks = seen.map((summary) => order.indexOf(summary.status));
    expect(ranks.every((rank) => rank >= 0)).toBe(true);
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
    const answered = seen.map((summary) => summary.completed + summary.failed);
    expect(answered).toEqual([...answered].sort((a, b) => a - b));

    const view = (await pbGet(`/v1/batches/${id}`)).json<{
      mode: string;
      mode_requested: string;
      complete_by: string;
      on_expiry: string;
      provider_batch: Summary;
      provider_batches: PartView[];
    }>();
    expect(view).toMatchObject({
      mode: 'provider_batch',
      mode_requested: 'auto',
      complete_by: completeBy,
      on_expiry: 'realtime',
      provider_batch: { status: 'stored', lines: 10, completed: 10, failed: 0 },
    });
    expect(view.provider_batches).toHaveLength(1);
    const [part] = view.provider_batches;
    expect(part).toMatchObject({
      part: 1,
      route: 'primary',
      model: 'gpt-image-2',
      status: 'stored',
      lines: 10,
      completed: 10,
      failed: 0,
      error: null,
    });
    expect(part!.provider_batch_id).toMatch(/^batch_/);
    const times = [
      part!.submitted_at,
      part!.in_progress_at,
      part!.finalizing_at,
      part!.ended_at,
      part!.stored_at,
    ];
    for (const time of times) expect(time).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    // In the order the phases came.
    const epochs = times.map((time) => Date.parse(time!));
    expect(epochs).toEqual([...epochs].sort((a, b) => a - b));

    // The list shows the same progress; the manifest names each item's provider batch.
    const listed = (await pbGet('/v1/batches?limit=5')).json<{
      data: { id: string; provider_batch?: Summary }[];
    }>();
    expect(listed.data.find((batch) => batch.id === id)?.provider_batch?.status).toBe('stored');
    const manifest = (await pbGet(`/v1/batches/${id}/manifest`)).json<{
      batch: { provider_batches: PartView[] };
      items: { id: string; provider_batch: string | null }[];
    }>();
    expect(manifest.batch.provider_batches.map((p) => p.provider_batch_id)).toEqual([
      part!.provider_batch_id,
    ]);
    expect(manifest.items.map((item) => item.provider_batch)).toEqual(
      Array(10).fill(part!.provider_batch_id),
    );
    const csv = (await pbGet(`/v1/batches/${id}/manifest?format=csv`)).body.split('\n');
    const header = csv[0]!.split(',');
    const column = header.indexOf('provider_batch');
    expect(column).toBeGreaterThan(0);
    expect(csv[1]!.split(',')[column]).toBe(part!.provider_batch_id);
  }, 90_000);

  it('shows a realtime batch as realtime, without provider batches', async () => {
    const submitted = await pbPost('/v1/batches', { ...base, items: skus(1, 'oak stool') });
    expect(submitted.statusCode, submitted.body).toBe(202);
    const view = (await pbGet(`/v1/batches/${submitted.json<{ id: string }>().id}`)).json<
      Record<string, unknown>
    >();
    expect(view.mode).toBe('realtime');
    expect(view).not.toHaveProperty('provider_batches');
    expect(view).not.toHaveProperty('mode_requested');
  });

  it('estimates a provider batch at the batch price, with the 24 h window as its time', async () => {
    const items = skus(20, 'linen napkin');
    const estimate = async (options: object) => {
      const response = await pbPost('/v1/batches/estimate', { ...base, ...options, items });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<{
        mode: string;
        mode_requested?: string;
        max_usd: number;
        typical_usd: number;
        eta_seconds: number | null;
        images_per_minute: number | null;
        routes: { route: string; max_usd: number; eta_seconds: number | null }[];
      }>();
    };
    const realtime = await estimate({});
    const batched = await estimate({ mode: 'provider_batch' });
    expect(realtime.mode).toBe('realtime');
    expect(realtime.eta_seconds).not.toBe(86_400);
    expect(batched).toMatchObject({ mode: 'provider_batch', eta_seconds: 86_400 });
    expect(batched.images_per_minute).toBeNull();
    expect(batched.routes).toMatchObject([{ route: 'primary', eta_seconds: 86_400 }]);
    // Half price (registry factor 0.5), rounded up per item as the workers reserve it.
    const micros = (usd: number) => Math.round(usd * 1_000_000);
    const half = micros(realtime.max_usd) / 2;
    expect(micros(batched.max_usd)).toBeGreaterThanOrEqual(half);
    expect(micros(batched.max_usd)).toBeLessThanOrEqual(half + items.length);
    expect(micros(batched.typical_usd)).toBeLessThan(micros(realtime.typical_usd));

    const far = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const soon = new Date(Date.now() + 2 * 3_600_000).toISOString();
    expect(await estimate({ mode: 'auto', complete_by: far })).toMatchObject({
      mode: 'provider_batch',
      mode_requested: 'auto',
      max_usd: batched.max_usd,
    });
    expect(await estimate({ mode: 'auto', complete_by: soon })).toMatchObject({
      mode: 'realtime',
      mode_requested: 'auto',
      max_usd: realtime.max_usd,
    });
    const refused = await pbPost('/v1/batches/estimate', { ...base, complete_by: far, items });
    expect(refused.statusCode).toBe(400);
  });
});
