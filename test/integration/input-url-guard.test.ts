import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/batches/batch-view.js';
import {
  auth,
  runToManifest,
  startHarness,
  waitForBatch,
  type Harness,
} from '../support/harness.js';

/**
 * Edit and variation inputs given as URLs go through the SSRF guard: a worker must not become a
 * way to read the metadata service or an internal page. A real image server on 127.0.0.1 counts
 * what reaches it; one harness keeps the default (private URLs refused), another allows them
 * with RENDERMILL_ALLOW_PRIVATE_URLS, as a deployment reading images off its own network would.
 */

let guarded: Harness;
let allowing: Harness;
let images: Server;
let port: number;
const received: string[] = [];

beforeAll(async () => {
  const square = await sharp({
    create: { width: 256, height: 256, channels: 4, background: '#cc6633' },
  })
    .png()
    .toBuffer();
  images = createServer((request, response) => {
    received.push(request.url ?? '/');
    if (request.url?.startsWith('/x.png')) {
      return response.writeHead(200, { 'content-type': 'image/png' }).end(square);
    }
    // What an internal service would answer: the item's error must not tell it.
    response.writeHead(403).end('internal admin console');
  });
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  port = (images.address() as AddressInfo).port;
  [guarded, allowing] = await Promise.all([
    startHarness({ simulator: { imagesPerMinute: 60_000 } }),
    startHarness({
      simulator: { imagesPerMinute: 60_000 },
      env: { RENDERMILL_ALLOW_PRIVATE_URLS: 'true' },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([guarded?.stop(), allowing?.stop()]);
  images?.closeAllConnections();
  await new Promise((resolve) => images?.close(resolve));
});
beforeEach(() => {
  received.length = 0;
});

const DALLE = { model: 'dall-e-2', size: '256x256' } as const;

describe('input image URLs, with private URLs refused (the default)', () => {
  it('fails an edit whose image is on 127.0.0.1 with invalid_input_image, and sends it no request', async () => {
    const urls = {
      edit: `http://127.0.0.1:${port}/x.png`,
      internal: `http://127.0.0.1:${port}/admin?token=abc`,
      // The same machine by name, and the metadata service through NAT64.
      localhost: `http://localhost:${port}/x.png`,
      hostname: `http://${hostname()}:${port}/x.png`,
      nat64: 'http://[64:ff9b::a9fe:a9fe]/latest/meta-data/',
    };
    const manifest = await runToManifest(guarded, {
      ...DALLE,
      items: Object.entries(urls).map(([id, image]) =>
        id === 'edit'
          ? { id, operation: 'edit', prompt: 'on a beach', image }
          : { id, operation: 'variation', image },
      ),
    });
    expect(manifest.items.map((i) => [i.id, i.status])).toEqual(
      Object.keys(urls).map((id) => [id, 'failed']),
    );
    for (const item of manifest.items) {
      expect(item.error?.code, item.id).toBe('invalid_input_image');
      // The URL the tenant gave (its query left out) and the verdict: nothing about the
      // target — no status, no resolved address, no page.
      const url = new URL(urls[item.id as keyof typeof urls]);
      const shown = `${url.origin}${url.pathname}${url.search ? '?…' : ''}`;
      expect(item.error?.message).toBe(`input image ${shown}: refused: private address`);
    }
    expect(received).toEqual([]);
    expect(guarded.sim.stats().requests).toBe(0);
    expect(manifest.batch.spend_usd).toBe(0);
  });

  it('refuses an OpenAI Batch line whose image_url points inside, the same way', async () => {
    const line = JSON.stringify({
      custom_id: 'req-internal',
      method: 'POST',
      url: '/v1/images/edits',
      body: {
        ...DALLE,
        prompt: 'on a beach',
        image: { image_url: `http://localhost:${port}/x.png` },
      },
    });
    const response = await guarded.api.inject({
      method: 'POST',
      url: '/v1/batches',
      headers: { ...auth(), 'content-type': 'application/x-ndjson' },
      payload: line,
    });
    expect(response.statusCode, response.body).toBe(202);
    const batch = await waitForBatch(guarded, response.json<{ id: string }>().id);
    const manifest = (
      await guarded.api.inject({
        method: 'GET',
        url: `/v1/batches/${batch.id}/manifest`,
        headers: auth(),
      })
    ).json<Manifest>();
    expect(manifest.items[0]!.error).toMatchObject({
      code: 'invalid_input_image',
      message: expect.stringMatching(/refused: private address$/),
    });
    expect(received).toEqual([]);
  });
});

describe('input image URLs, with RENDERMILL_ALLOW_PRIVATE_URLS=true', () => {
  it('downloads the same image from 127.0.0.1 and renders the edit', async () => {
    const manifest = await runToManifest(allowing, {
      ...DALLE,
      items: [
        {
          id: 'edit',
          operation: 'edit',
          prompt: 'on a beach',
          image: `http://127.0.0.1:${port}/x.png`,
        },
        { id: 'denied', operation: 'variation', image: `http://127.0.0.1:${port}/admin` },
      ],
    });
    const byId = Object.fromEntries(manifest.items.map((i) => [i.id, i]));
    expect(byId.edit!.status).toBe('succeeded');
    expect(byId.edit!.images).toHaveLength(1);
    // Allowed, the target's answer is the item's business again.
    expect(byId.denied!.error?.message).toMatch(/answered HTTP 403/);
    expect(received.sort()).toEqual(['/admin', '/x.png']);
    expect(allowing.sim.stats().byEndpoint).toMatchObject({ edits: 1 });
  });
});
