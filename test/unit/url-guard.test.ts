import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { RequestValidationError } from '../../src/errors.js';
import {
  DownloadTimeoutError,
  DownloadTooLargeError,
  TooManyRedirectsError,
  guardedGet,
} from '../../src/net/guarded-get.js';
import {
  HostUnresolvedError,
  PrivateUrlError,
  RefusedAddressError,
  checkPublicUrl,
  guardedLookup,
  isRefusedAddress,
} from '../../src/net/url-guard.js';

describe('isRefusedAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'the metadata service'],
    ['192.0.0.170', 'IETF protocol assignments'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.254', 'benchmarking, the end of the /15'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['192.88.99.1', 'the former 6to4 relay anycast'],
    ['::1', 'loopback'],
    ['::ffff:169.254.169.254', 'IPv4-mapped'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped, in hex'],
    ['::ffff:0:a9fe:a9fe', 'IPv4-translated'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 of the metadata service'],
    ['64:ff9b::169.254.169.254', 'NAT64, dotted'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback'],
    ['64:ff9b::c612:1', 'NAT64 of benchmarking 198.18.0.1'],
    ['64:ff9b:1::808:808', 'local-use NAT64, refused whole'],
    ['64:ff9b:1:ffff::1', 'local-use NAT64, the end of the /48'],
    ['2002:a9fe:a9fe::', '6to4 behind 169.254.169.254'],
    ['2002:a00:1:1::1', '6to4 behind 10.0.0.1'],
    ['2002::1', '6to4 behind 0.0.0.0'],
    ['2001::1', 'Teredo'],
    ['2001:0:ffff:ffff::1', 'Teredo, the end of the /32'],
    ['2001:db8::1', 'documentation'],
    ['2001:db8:ffff::1', 'documentation, the end of the /32'],
    ['fec0::1', 'site-local'],
    ['feff::1', 'site-local, the end of the /10'],
    ['100::1', 'discard-only'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['[fd00::1]', 'unique local, bracketed'],
    ['example.com', 'not an address'],
  ])('refuses %s (%s)', (address) => {
    expect(isRefusedAddress(address)).toBe(true);
  });

  it.each([
    ['8.8.8.8', 'public'],
    ['198.17.255.255', 'just before benchmarking'],
    ['198.20.0.1', 'just past benchmarking'],
    ['192.0.1.1', 'just past 192.0.0/24'],
    ['2606:4700:4700::1111', 'public IPv6'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public'],
    ['64:ff9b::808:808', 'NAT64 of a public address'],
    ['2002:808:808::1', '6to4 behind a public address'],
    ['2001:1::1', 'past Teredo'],
    ['2001:db9::1', 'past documentation'],
    ['64:ff9b:2::1', 'past local-use NAT64'],
  ])('lets %s through (%s)', (address) => {
    expect(isRefusedAddress(address)).toBe(false);
  });
});

describe('checkPublicUrl', () => {
  const options = { allowPrivate: false, field: 'image', code: 'invalid_input_image' };

  it('refuses with the field and code it is given, and returns the parsed URL otherwise', async () => {
    const error = await checkPublicUrl('http://[64:ff9b::a9fe:a9fe]/', options).catch((e) => e);
    expect(error).toBeInstanceOf(PrivateUrlError);
    expect(error).toMatchObject({ field: 'image', code: 'invalid_input_image' });
    expect(error.message).toMatch(/^image: .*RENDERMILL_ALLOW_PRIVATE_URLS=true/);
    const parsed = await checkPublicUrl('https://8.8.8.8/x.png?a=1', options);
    expect(parsed.href).toBe('https://8.8.8.8/x.png?a=1');
  });

  it('tells a private address, a bad form and a host that does not resolve apart', async () => {
    for (const url of ['http://localhost/x', `http://${hostname()}/x`, 'http://10.1.2.3/x']) {
      await expect(checkPublicUrl(url, options)).rejects.toBeInstanceOf(PrivateUrlError);
    }
    const bad = await checkPublicUrl('file:///etc/passwd', options).catch((e) => e);
    expect(bad).toBeInstanceOf(RequestValidationError);
    expect(bad).not.toBeInstanceOf(PrivateUrlError);
    const unresolved = await checkPublicUrl('http://no-such-host.invalid/', options).catch(
      (e) => e,
    );
    expect(unresolved).toBeInstanceOf(HostUnresolvedError);
    expect(unresolved.retryable).toBe(true);
  });
});

describe('guardedLookup', () => {
  const look = (name: string, all: boolean) =>
    new Promise<unknown>((resolve, reject) =>
      guardedLookup(name, { all }, (error, address) => (error ? reject(error) : resolve(address))),
    );

  it('fails with RefusedAddressError for a name that resolves to this machine', async () => {
    for (const name of ['localhost', hostname()]) {
      await expect(look(name, false)).rejects.toBeInstanceOf(RefusedAddressError);
      await expect(look(name, true)).rejects.toBeInstanceOf(RefusedAddressError);
    }
  });
});

/** A real HTTP server on 127.0.0.1 that counts the requests it receives. */
let server: Server;
let origin: string;
let port: number;
const received: string[] = [];
const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = request.url ?? '/';
    received.push(path);
    if (path === '/x.png') return response.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
    if (path === '/to-file')
      return response.writeHead(302, { location: 'file:///etc/passwd' }).end();
    if (path === '/loop') return response.writeHead(302, { location: '/loop' }).end();
    if (path === '/to-png') return response.writeHead(301, { location: '/x.png' }).end();
    if (path === '/big') return response.writeHead(200).end(Buffer.alloc(4096));
    if (path === '/hang') return; // never answers
    response.writeHead(403).end('secret internal page');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  origin = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received.length = 0;
});

describe('guardedGet', () => {
  const get = (url: string, allowPrivate: boolean, extra: object = {}) =>
    guardedGet(url, { allowPrivate, timeoutMs: 2_000, maxBytes: 1024, ...extra });

  it('sends no request at all to a private address, by literal or by name', async () => {
    for (const url of [
      `${origin}/x.png`,
      `http://localhost:${port}/x.png`,
      `http://${hostname()}:${port}/x.png`,
      `http://[::ffff:127.0.0.1]:${port}/x.png`,
    ]) {
      await expect(get(url, false)).rejects.toBeInstanceOf(PrivateUrlError);
    }
    expect(received).toEqual([]);
  });

  it('refuses at connection time too, when only the lookup could tell (DNS rebinding)', async () => {
    // A request with no check beforehand, only the socket's own lookup: a name that passed the
    // check and was rebound to 127.0.0.1 since is caught here, before the connection.
    const refused = await new Promise<unknown>((resolve) => {
      const request = httpRequest(`http://${hostname()}:${port}/x.png`, {
        agent: false,
        lookup: guardedLookup,
      });
      request.on('error', resolve);
      request.on('response', () => resolve('answered'));
      request.end();
    });
    expect(refused).toBeInstanceOf(RefusedAddressError);
    expect(received).toEqual([]);
  });

  it('downloads when private targets are allowed, following redirects', async () => {
    const answer = await get(`${origin}/to-png`, true);
    expect(answer.status).toBe(200);
    expect(answer.body.equals(PNG)).toBe(true);
    expect(received).toEqual(['/to-png', '/x.png']);
  });

  it('checks every redirect target, and stops after a few', async () => {
    await expect(get(`${origin}/to-file`, true)).rejects.toThrow(/http or https/);
    await expect(get(`${origin}/loop`, true, { maxRedirects: 3 })).rejects.toBeInstanceOf(
      TooManyRedirectsError,
    );
    expect(received.filter((p) => p === '/loop')).toHaveLength(4);
  });

  it('answers any other status without its body, and keeps the size and time limits', async () => {
    expect(await get(`${origin}/nothing-here`, true)).toEqual({
      status: 403,
      body: Buffer.alloc(0),
    });
    await expect(get(`${origin}/big`, true)).rejects.toBeInstanceOf(DownloadTooLargeError);
    const started = Date.now();
    await expect(get(`${origin}/hang`, true, { timeoutMs: 300 })).rejects.toBeInstanceOf(
      DownloadTimeoutError,
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('RENDERMILL_ALLOW_PRIVATE_URLS', () => {
  it('is off by default, and the former RENDERMILL_WEBHOOK_ALLOW_PRIVATE still works', () => {
    expect(loadConfig({}).allowPrivateUrls).toBe(false);
    expect(loadConfig({ RENDERMILL_ALLOW_PRIVATE_URLS: 'true' }).allowPrivateUrls).toBe(true);
    expect(loadConfig({ RENDERMILL_WEBHOOK_ALLOW_PRIVATE: 'true' }).allowPrivateUrls).toBe(true);
    // The new name wins when both are set.
    const both = {
      RENDERMILL_ALLOW_PRIVATE_URLS: 'false',
      RENDERMILL_WEBHOOK_ALLOW_PRIVATE: 'true',
    };
    expect(loadConfig(both).allowPrivateUrls).toBe(false);
    expect(() => loadConfig({ RENDERMILL_ALLOW_PRIVATE_URLS: 'maybe' })).toThrow(
      /RENDERMILL_ALLOW_PRIVATE_URLS/,
    );
  });
});
