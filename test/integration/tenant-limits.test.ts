import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startHarness, type Harness } from '../support/harness.js';
import { multipartBody } from '../support/multipart.js';

/**
 * Hostile input refused at the door, with a 4xx naming what is wrong and nothing queued:
 * control characters in prompts, a private webhook_url given to the estimate, a catalog with
 * thousands of columns (its error stays small), and an edit uploading more than a request may
 * (RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST, here 1 MB). Real redis-server, s3rver and simulator.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false, env: { RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST: '1' } });
});
afterAll(async () => {
  await h?.stop();
});

const ITEM = {
  id: 'a',
  prompt: 'a red mug',
  model: 'gpt-image-2',
  size: '256x256',
  quality: 'low',
};
const renderJobs = async () => {
  const counts = await h.services.queue.queue('render').getJobCounts();
  return Object.values(counts).reduce((a, b) => a + b, 0);
};
const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
  h.api.inject({
    method: 'POST',
    url,
    headers: { ...auth(), ...headers },
    payload: payload as string,
  });

describe('control characters in a prompt', () => {
  it.each([['\u0000'], ['\u001b[2J'], ['\u0008'], ['\u007f']])(
    'refuses %j at submission, naming items[0].prompt, and queues nothing',
    async (control) => {
      const before = await renderJobs();
      const response = await post('/v1/batches', {
        items: [{ ...ITEM, prompt: `a red${control} mug` }],
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        error: { field: 'items[0].prompt', message: expect.stringMatching(/control character/) },
      });
      expect(await renderJobs()).toBe(before);
    },
  );

  it('is refused by the Images API too, in OpenAI’s shape', async () => {
    const response = await post('/v1/images/generations', {
      prompt: 'a red\u0000 mug',
      model: 'gpt-image-2',
      size: '256x256',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      error: { param: 'prompt', message: expect.stringMatching(/control character U\+0000/) },
    });
  });
});

describe('POST /v1/batches/estimate checks webhook_url as submission does', () => {
  it.each([
    ['http://127.0.0.1:9/hook', /loopback, private/],
    ['http://localhost/hook', /this machine/],
    ['ftp://example.com/hook', /URL/],
    ['http://user:pw@example.com/hook', /user name or password/],
  ])('refuses %s with a 400 naming webhook_url', async (url, message) => {
    const response = await post('/v1/batches/estimate', { items: [ITEM], webhook_url: url });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      error: { field: 'webhook_url', message: expect.stringMatching(message) },
    });
  });

  it('and for a catalog, whose webhook_url is a query parameter', async () => {
    const response = await post(
      '/v1/batches/estimate?template=A%20{{title}}&model=gpt-image-2&size=256x256&quality=low&webhook_url=http://10.0.0.1/hook',
      'sku,title\n1,mug\n',
      { 'content-type': 'text/csv' },
    );
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: { field: 'webhook_url' } });
  });

  it('estimates a batch without a webhook_url as before', async () => {
    const response = await post('/v1/batches/estimate', { items: [ITEM] });
    expect(response.statusCode, response.body).toBe(200);
  });
});

describe('a catalog with thousands of columns', () => {
  it('is refused with an error that names a few columns and counts the rest', async () => {
    const columns = Array.from({ length: 20_000 }, (_, i) => `column_${i}`);
    const row = columns.map(() => 'x').join(',');
    const before = await renderJobs();
    const response = await post(
      '/v1/batches?template=A%20{{title}}&model=gpt-image-2&size=256x256&quality=low',
      `${columns.join(',')}\n${row}\n`,
      { 'content-type': 'text/csv' },
    );
    expect(response.statusCode).toBe(400);
    const { error } = response.json<{ error: { field: string; message: string } }>();
    expect(error.field).toBe('template');
    expect(error.message).toMatch(/column_0, column_1, .*column_19 … and 19,980 more/);
    expect(response.body.length).toBeLessThan(5_000);
    expect(await renderJobs()).toBe(before);
  });
});

describe('uploads of one edit request, together', () => {
  const image = (seed: number) =>
    sharp({
      create: {
        width: 256,
        height: 256,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128 + seed, sigma: 60 },
      },
    })
      .png({ compressionLevel: 0 })
      .toBuffer();

  it('are refused past RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST with a 413 that says so', async () => {
    const files = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(image));
    expect(files.reduce((sum, f) => sum + f.length, 0)).toBeGreaterThan(1024 * 1024);
    const { payload, contentType } = multipartBody([
      { name: 'model', value: 'gpt-image-2' },
      { name: 'prompt', value: 'put them on a table' },
      { name: 'size', value: '256x256' },
      ...files.map((data, i) => ({
        name: 'image[]',
        filename: `p${i}.png`,
        data,
        contentType: 'image/png',
      })),
    ]);
    const before = await renderJobs();
    const response = await post('/v1/images/edits', payload, { 'content-type': contentType });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({
      error: {
        code: 'request_too_large',
        param: 'image',
        message: expect.stringMatching(/RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST/),
      },
    });
    expect(await renderJobs()).toBe(before);
  });
});
