import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type RunningSimulator } from '../../infra/simulator/server.js';
import { PaidResultError, ProviderUnavailableError } from '../../src/errors.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import {
  ANSWERS_READ_AT_ONCE,
  answerReadLoad,
  parseImagesAnswer,
} from '../../src/providers/images-answer.js';
import { OpenAIImageProvider } from '../../src/providers/openai-provider.js';

/** Reading Images API answers from their bytes, and reading only a few at once. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();

beforeAll(async () => {
  sim = await startSimulator({ imagesPerMinute: 0 });
});
afterAll(async () => {
  await sim?.stop();
});

/** What JSON.parse makes of the same bytes, in the shape parseImagesAnswer answers. */
function viaJsonParse(bytes: Buffer) {
  const answer = JSON.parse(bytes.toString('utf8')) as {
    data?: Array<{ b64_json?: string; url?: string }>;
    usage?: unknown;
  };
  return {
    data: answer.data?.map((d) => ({
      ...(d.url ? { url: d.url } : {}),
      ...(d.b64_json ? { b64: Buffer.from(d.b64_json, 'base64') } : {}),
    })),
    usage: answer.usage,
  };
}

const parse = (text: string) => parseImagesAnswer(Buffer.from(text, 'utf8'));
const bytesOf = (b64: string) => Buffer.from(b64, 'base64');

describe('parseImagesAnswer', () => {
  it('reads what JSON.parse reads from real answers: b64 images, usage, urls', async () => {
    const answer = async (body: object) => {
      const response = await fetch(`${sim.url}/images/generations`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(200);
      return Buffer.from(await response.arrayBuffer());
    };
    const b64 = await answer({ model: 'gpt-image-2', prompt: 'a mug', n: 3, size: '256x256' });
    const parsed = parseImagesAnswer(b64);
    expect(parsed.data).toHaveLength(3);
    expect(parsed.usage).toMatchObject({ output_tokens: expect.any(Number) });
    expect(parsed).toEqual(viaJsonParse(b64));
    expect(parsed.data![0]!.b64!.subarray(1, 4).toString('latin1')).toBe('PNG');

    const url = await answer({
      model: 'dall-e-2',
      prompt: 'a mug',
      n: 2,
      size: '256x256',
      response_format: 'url',
    });
    expect(parseImagesAnswer(url)).toEqual(viaJsonParse(url));
    expect(parseImagesAnswer(url).data![0]!.url).toMatch(/^http/);
  });

  it('takes `\\/` escapes, whitespace, usage before data and several images', () => {
    const one = Buffer.from('first image ??>>').toString('base64');
    const two = Buffer.from('second ~~~???>>>').toString('base64');
    expect(one + two).toContain('/');
    const escaped = (b64: string) => b64.replaceAll('/', '\\/');
    const text =
      `{ "usage" : {"input_tokens": 5, "output_tokens": 7},\n  "created": 1,\r\n` +
      `  "data" : [ {\t"b64_json"\n :\t "${escaped(one)}" , "revised_prompt": "b64_json" },` +
      ` {"revised_prompt":"say \\"b64_json\\": \\"x\\"", "b64_json":"${escaped(two)}"} ] }`;
    expect(parse(text)).toEqual({
      data: [{ b64: bytesOf(one) }, { b64: bytesOf(two) }],
      usage: { input_tokens: 5, output_tokens: 7 },
    });
    expect(parse(text)).toEqual(viaJsonParse(Buffer.from(text)));
  });

  it('takes any JSON escape, a byte-order mark, and usage after data', () => {
    const b64 = Buffer.from('any bytes at all').toString('base64');
    const unicode = [...b64].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    const text = `\uFEFF{"data":[{"b64_json":"${unicode.join('')}"}],"usage":{"input_tokens":1}}`;
    expect(parse(text)).toEqual({ data: [{ b64: bytesOf(b64) }], usage: { input_tokens: 1 } });
  });

  it('decodes every length, padded or not, URL-safe or odd, small or large, as Buffer.from does', () => {
    const decoded = (b64: string) => parse(`{"data":[{"b64_json":"${b64}"}]}`).data![0]!.b64;
    const cases: string[] = [];
    for (let length = 1; length < 40; length++) {
      const b64 = randomBytes(length).toString('base64');
      cases.push(b64, b64.replace(/=+$/, ''), b64.replaceAll('+', '-').replaceAll('/', '_'));
    }
    cases.push('QUJD=REVG', 'QUJD REVG', 'QUJD\\u0000', 'Q', 'QUJDR', '====', 'QQ=', '¿QUJD?');
    // Large payloads are decoded in 32 KB steps: lengths around a step's end, and a text that
    // is not clean base64 right where a step ends or inside the last one.
    for (const bytes of [24_576, 24_577, 49_152, 49_151, 900_000]) {
      cases.push(randomBytes(bytes).toString('base64'));
    }
    const long = randomBytes(60_000).toString('base64');
    for (const at of [32_767, 32_768, 32_769, long.length - 3]) {
      cases.push(
        `${long.slice(0, at)} ${long.slice(at + 1)}`,
        `${long.slice(0, at)}=${long.slice(at + 1)}`,
      );
    }
    cases.push(`${long}QQ==QUJD`, `${long.slice(0, 40_000)}\\u0041${long.slice(40_006)}`);
    for (const b64 of cases) {
      const expected = Buffer.from(JSON.parse(`"${b64}"`) as string, 'base64');
      expect(decoded(b64) ?? Buffer.alloc(0), b64.slice(0, 20)).toEqual(expected);
    }
  });

  it('reads url answers, empty or missing payloads and answers without data as JSON does', () => {
    expect(parse('{"data":[{"url":"https://x/a.png","revised_prompt":"r"}]}')).toEqual({
      data: [{ url: 'https://x/a.png' }],
      usage: undefined,
    });
    expect(parse('{"data":[{"b64_json":""},{"b64_json":null},{}]}')).toEqual({
      data: [{}, {}, {}],
      usage: undefined,
    });
    expect(parse('{"created":1}')).toEqual({ data: undefined, usage: undefined });
    expect(parse('"just a string"')).toEqual({ data: undefined, usage: undefined });
    expect(() => parse('{"data":[{"b64_json":"AAAA"}')).toThrow(SyntaxError);
    expect(() => parse('{"data":[{"b64_json":"AAAA')).toThrow(SyntaxError);
  });
});

/**
 * A provider whose answers the test releases: each request gets its headers at once and its
 * body (one 256 KB base64 image, far more than a socket buffers) only when `release` is called.
 */
async function startHeldProvider(png: Buffer) {
  const held: ServerResponse[] = [];
  let waiter: (() => void) | undefined;
  const body = JSON.stringify({
    data: [{ b64_json: png.toString('base64') }],
    usage: { input_tokens: 1, output_tokens: 2 },
  });
  const server: Server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      });
      response.flushHeaders();
      held.push(response);
      waiter?.();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    async waitForHeld(count: number) {
      while (held.length < count) await new Promise<void>((resolve) => (waiter = resolve));
    },
    releaseAll() {
      for (const response of held.splice(0)) response.end(body);
    },
    /** Sends half of every held body and never the rest. */
    stallAll() {
      for (const response of held.splice(0)) response.write(body.slice(0, body.length / 2));
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A PNG signature and 192 KB of noise: an image to the sniffer, big enough to fill buffers. */
function fakePng() {
  const png = Buffer.alloc(192 * 1024);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(png);
  for (let i = 8; i < png.length; i++) png[i] = (i * 7919) & 0xff;
  return png;
}

describe('reading answers a few at a time', () => {
  const generate = (baseURL: string, timeoutMs = 10_000) =>
    new OpenAIImageProvider({ baseURL, apiKey: 'sk-test', registry, timeoutMs }).render({
      spec: { operation: 'generate', model: 'gpt-image-2', prompt: 'p', size: '256x256', n: 1 },
      images: [],
    });

  it('reads at most ANSWERS_READ_AT_ONCE answers at once, and every answer in the end', async () => {
    const png = fakePng();
    const provider = await startHeldProvider(png);
    try {
      const requests = 3 * ANSWERS_READ_AT_ONCE;
      const results = Array.from({ length: requests }, () => generate(provider.url));
      await provider.waitForHeld(requests);
      // Every answer has its headers: the first few hold every turn, reading bodies that
      // have not come, and the rest wait for a turn without reading.
      await expect.poll(() => answerReadLoad().waiting).toBe(requests - ANSWERS_READ_AT_ONCE);
      expect(answerReadLoad().reading).toBe(ANSWERS_READ_AT_ONCE);
      provider.releaseAll();
      const rendered = await Promise.all(results);
      for (const result of rendered) {
        expect(result.images[0]!.data.equals(png)).toBe(true);
        expect(result.usage).toEqual({ input_tokens: 1, output_tokens: 2 });
      }
      expect(answerReadLoad()).toEqual({ reading: 0, waiting: 0 });
    } finally {
      await provider.stop();
    }
  });

  it('gives up on an answer that stops arriving, as maybe billed, and frees its turn', async () => {
    const provider = await startHeldProvider(fakePng());
    try {
      const result = generate(provider.url, 300);
      const outcome = result.then(
        () => undefined,
        (error: unknown) => error,
      );
      await provider.waitForHeld(1);
      provider.stallAll();
      const error = await outcome;
      expect(error).toBeInstanceOf(ProviderUnavailableError);
      expect(error).not.toBeInstanceOf(PaidResultError);
      expect((error as ProviderUnavailableError).maybeBilled).toBe(true);
      expect(answerReadLoad()).toEqual({ reading: 0, waiting: 0 });
    } finally {
      await provider.stop();
    }
  });
});
