import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpFetch } from '../../src/net/http-fetch.js';
import { closedPort } from '../support/closed-port.js';

/** The provider SDKs' fetch over node:http (src/net/http-fetch.ts), against a real HTTP server. */
let server: Server;
let base: string;
let handler: (request: IncomingMessage, body: Buffer, response: ServerResponse) => void;
const connections = new Set<Socket>();
let connectionsOpened = 0;

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handler(request, Buffer.concat(chunks), response));
  });
  server.on('connection', (socket) => {
    connectionsOpened++;
    connections.add(socket);
    socket.on('close', () => connections.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const socket of connections) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  connectionsOpened = 0;
});

describe('createHttpFetch', () => {
  it('sends the method, headers and body, and answers a standard Response over one kept-alive connection', async () => {
    const seen: { method?: string; auth?: string; encoding?: string; body: string }[] = [];
    handler = (request, body, response) => {
      seen.push({
        method: request.method,
        auth: request.headers.authorization,
        encoding: request.headers['accept-encoding'],
        body: body.toString(),
      });
      response.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_1' });
      response.end(JSON.stringify({ echoed: JSON.parse(body.toString()) }));
    };
    const httpFetch = createHttpFetch();
    for (const n of [1, 2]) {
      const response = await httpFetch(`${base}/v1/images/generations`, {
        method: 'POST',
        headers: new Headers({
          authorization: 'Bearer sk-test',
          'content-type': 'application/json',
        }),
        body: JSON.stringify({ n }),
      });
      expect(response).toBeInstanceOf(Response);
      expect(response.status).toBe(200);
      expect(response.ok).toBe(true);
      expect(response.url).toBe(`${base}/v1/images/generations`);
      expect(response.headers.get('x-request-id')).toBe('req_1');
      expect(await response.json()).toEqual({ echoed: { n } });
    }
    expect(seen).toEqual([
      { method: 'POST', auth: 'Bearer sk-test', encoding: undefined, body: '{"n":1}' },
      { method: 'POST', auth: 'Bearer sk-test', encoding: undefined, body: '{"n":2}' },
    ]);
    expect(connectionsOpened).toBe(1);
  });

  it('inflates an answer that comes compressed though it was not asked to be', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(400, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      response.end(gzipSync(JSON.stringify({ error: { code: 'moderation_blocked' } })));
    };
    const response = await createHttpFetch()(`${base}/x`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'moderation_blocked' } });
  });

  it('leaves an answer nobody reads in the socket, not in memory', async () => {
    const size = 64 * 1024 * 1024;
    let written = 0;
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1024 * 1024);
      const pump = () => {
        while (written < size) {
          written += chunk.length;
          if (!response.write(chunk)) return void response.once('drain', pump);
        }
        response.end();
      };
      pump();
    };
    const response = await createHttpFetch()(`${base}/big`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // What the kernel's socket buffers and a stream's high-water mark hold: a few MB at most.
    expect(written).toBeLessThan(size / 4);
    await response.body!.cancel();
  });

  it('fails as the global fetch does: TypeError with the network error as its cause', async () => {
    const error = await createHttpFetch()(`http://127.0.0.1:${await closedPort()}/x`).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe('fetch failed');
    expect(((error as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('gives up on abort, before the answer and while its body is read', async () => {
    handler = (request, _body, response) => {
      if (request.url === '/no-answer') return; // never answers
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"data": [');
      // and never ends
    };
    const early = new AbortController();
    const hanging = createHttpFetch()(`${base}/no-answer`, { signal: early.signal });
    const late = new AbortController();
    const response = await createHttpFetch()(`${base}/slow`, { signal: late.signal });
    early.abort();
    await expect(hanging).rejects.toMatchObject({ name: 'AbortError' });

    const reader = response.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    late.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('fails a read of the body that gets nothing for bodyIdleMs, and closes its connection', async () => {
    let closed = false;
    handler = (request, _body, response) => {
      request.socket.once('close', () => (closed = true));
      response.writeHead(500, { 'content-type': 'application/json' });
      response.write('{"error": '); // and stalls
    };
    const response = await createHttpFetch({ bodyIdleMs: 100 })(`${base}/stall`);
    expect(response.status).toBe(500);
    await expect(response.text()).rejects.toThrow();
    await expect.poll(() => closed).toBe(true);
  });

  it('fails the body’s read when the connection closes before the body ends', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      response.write('{"data": [', () => response.socket?.destroy());
    };
    const response = await createHttpFetch()(`${base}/cut`);
    await expect(response.text()).rejects.toThrow();
  });

  it('hands what it does not cover to the fallback: Request objects, multipart bodies', async () => {
    const handed: unknown[] = [];
    const fallback = ((input: unknown) => {
      handed.push(input);
      return Promise.resolve(new Response('fallback'));
    }) as typeof fetch;
    const httpFetch = createHttpFetch({ fallback });
    const form = new FormData();
    form.append('prompt', 'a mug');
    expect(await (await httpFetch(`${base}/edit`, { method: 'POST', body: form })).text()).toBe(
      'fallback',
    );
    expect(await (await httpFetch(new Request(`${base}/req`))).text()).toBe('fallback');
    expect(handed).toHaveLength(2);
  });

  it('refuses to follow a redirect', async () => {
    handler = (_request, _body, response) => {
      response.writeHead(307, { location: 'http://elsewhere.example/' });
      response.end();
    };
    const error = await createHttpFetch()(`${base}/moved`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect(String((error as Error).cause)).toMatch(/redirected \(307\)/);
  });

  it('for downloads, hands a redirected request to the fallback, which follows it', async () => {
    handler = (request, _body, response) => {
      if (request.url === '/image.png') return void response.writeHead(200).end('png bytes');
      response.writeHead(302, { location: `${base}/image.png` }).end();
    };
    const handed: string[] = [];
    const download = createHttpFetch({
      redirects: 'fallback',
      fallback: (input, init) => {
        handed.push(String(input));
        return fetch(input, init);
      },
    });
    expect(await (await download(`${base}/image.png`)).text()).toBe('png bytes');
    expect(handed).toEqual([]); // answered over node:http
    expect(await (await download(`${base}/signed/abc`)).text()).toBe('png bytes');
    expect(handed).toEqual([`${base}/signed/abc`]);
  });
});
