import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, submit, auth, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  // No workers: these tests are about what the API accepts and refuses.
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.stop();
});

const item = { id: 'sku-1', prompt: 'a ceramic mug' };

describe('POST /v1/batches', () => {
  it('accepts a valid batch with 202 and queues one job per item', async () => {
    const response = await submit(h, {
      model: 'dall-e-2',
      size: '256x256',
      budget_usd: 10,
      items: [item, { ...item, id: 'sku-2', size: '512x512', n: 2 }],
    });
    expect(response.statusCode).toBe(202);
    const body = response.json();
    expect(body).toMatchObject({
      status: 'queued',
      counts: { total: 2, queued: 2 },
      spend_usd: 0,
      budget_usd: 10,
    });
    expect(response.headers.location).toBe(`/v1/batches/${body.id}`);
    const waiting = await h.services.queue.queue('render').getJobCounts('waiting');
    expect(waiting.waiting).toBeGreaterThanOrEqual(2);
    const got = await h.api.inject({
      method: 'GET',
      url: `/v1/batches/${body.id}`,
      headers: auth(),
    });
    expect(got.json()).toMatchObject({ id: body.id, status: 'queued', counts: { total: 2 } });
  });

  it.each([
    [{ model: 'dall-e-9', items: [item] }, 'model', /unknown model "dall-e-9"/],
    [{ items: [{ ...item, model: 'dall-e-9' }] }, 'items[0].model', /unknown model "dall-e-9"/],
    [
      { model: 'dall-e-2', size: '300x300', items: [item] },
      'size',
      /allowed: 256x256, 512x512, 1024x1024/,
    ],
    [
      { model: 'dall-e-2', items: [{ ...item, prompt: 'x'.repeat(1001) }] },
      'items[0].prompt',
      /at most 1000/,
    ],
    [{ model: 'dall-e-2', items: [{ ...item, n: 11 }] }, 'items[0].n', /between 1 and 10/],
    [{ model: 'dall-e-3', items: [{ ...item, n: 2 }] }, 'items[0].n', /between 1 and 1/],
    [{ items: [] }, 'items', /a batch needs at least one item/],
    [{ items: [item, item] }, 'items[1].id', /also used by items\[0\]/],
    [{ items: [{ id: 'x', prompt: 1 }] }, 'items[0].prompt', /string/],
    [{ items: [item], colour: 'red' }, '', /colour/],
  ])('refuses %j naming the field', async (body, field, message) => {
    const response = await submit(h, body);
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.field ?? '').toBe(field);
    expect(error.message).toMatch(message);
  });

  it('reports every bad item, not just the first', async () => {
    const response = await submit(h, {
      model: 'dall-e-2',
      items: [
        { id: 'a', prompt: 'ok' },
        { id: 'b', prompt: 'x', size: '64x64' },
        { id: 'c', prompt: 'x', n: 0 },
      ],
    });
    const { error } = response.json();
    expect(error.code).toBe('invalid_item');
    expect(error.details.map((d: { field: string }) => d.field)).toEqual([
      'items[1].size',
      'items[2].n',
    ]);
    expect(error.message).toMatch(/and 1 more problem/);
  });

  it('refuses malformed JSON and other content types', async () => {
    const malformed = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { ...auth(), 'content-type': 'application/json' },
      payload: '{"items": [',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('invalid_json');

    const text = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { ...auth(), 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(text.statusCode).toBe(415);
  });
});

describe('authentication and tenants', () => {
  it('needs a valid key', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong-key-0123456789' },
      { authorization: 'Basic abc' },
    ]) {
      const response = await h.api.inject({
        method: 'POST',
        url: '/v1/batches',
        headers,
        payload: { items: [item] },
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('unauthorized');
    }
  });

  it('hides one tenant’s batches from another', async () => {
    const created = (await submit(h, { model: 'dall-e-2', items: [item] }, 'acme')).json();
    for (const url of [`/v1/batches/${created.id}`, `/v1/batches/${created.id}/manifest`]) {
      const theirs = await h.api.inject({ method: 'GET', url, headers: auth('globex') });
      expect(theirs.statusCode).toBe(404);
      const ours = await h.api.inject({ method: 'GET', url, headers: auth('acme') });
      expect(ours.statusCode).toBe(200);
    }
  });

  it('answers unknown routes and batches with 404 in the error shape', async () => {
    const response = await h.api.inject({
      method: 'GET',
      url: '/v1/batches/batch_nope',
      headers: auth(),
    });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: { code: 'not_found', message: 'no batch batch_nope' },
    });
  });
});

describe('authentication', () => {
  it('is decided on the route a request matches, so an encoded path cannot skip it', async () => {
    // The router decodes %76 to v: /%761/batches is /v1/batches, and needs a key like it.
    for (const [method, url] of [
      ['GET', '/%761/batches'],
      ['GET', '/%761/webhooks/secret'],
      ['POST', '/%761/webhooks/secret/rotate'],
      ['GET', '/%61dmin/queues'],
      ['GET', '/v1/%62atches'],
    ] as const) {
      const response = await h.api.inject({ method, url });
      expect(response.statusCode, `${method} ${url}`).toBe(401);
    }
    const keyed = await h.api.inject({ method: 'GET', url: '/%761/batches', headers: auth() });
    expect(keyed.statusCode).toBe(200);
  });
});
