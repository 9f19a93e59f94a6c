import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import sharp from 'sharp';

/**
 * The CPU bench's provider, run as its own process: an OpenAI-compatible Images API that
 * answers every `POST /v1/images/generations` with one pre-rendered PNG of the asked size,
 * as `b64_json` or as a `url` served under `/files/`, after `latencyMs`. The bytes and their
 * base64 are made once per size, so an answer costs the provider a buffer write, not an
 * encode: on a 2-core machine the simulator's rendering (sharp, per request) would take CPU
 * the measured processes need, and its flat-colour images are far smaller than a real one.
 *
 * Control: `POST /_bench/mode {"answer":"b64"|"url","latencyMs":n}`, `GET /_bench/stats`,
 * `POST /_bench/reset`. Prints `listening <origin>` once ready.
 */

export type AnswerForm = 'b64' | 'url';

export interface ProviderStats {
  requests: number;
  inFlight: number;
  maxInFlight: number;
  bytesServed: number;
}

/**
 * Gaussian noise around a mid grey: PNG cannot compress it away, so a 256x256 answer weighs
 * ~140 KB, as the gpt-image answers the issue measured (139 KB), and 1024x1024 ~2 MB.
 */
const NOISE_SIGMA = 12;

interface SizedImage {
  png: Buffer;
  b64: Buffer;
}

const images = new Map<string, Promise<SizedImage>>();

function imageFor(size: string): Promise<SizedImage> {
  let image = images.get(size);
  if (!image) {
    const [width, height] = size.split('x').map(Number) as [number, number];
    image = sharp({
      create: {
        width,
        height,
        channels: 3,
        background: { r: 120, g: 130, b: 140 },
        noise: { type: 'gaussian', mean: 128, sigma: NOISE_SIGMA },
      },
    })
      .png({ compressionLevel: 6 })
      .toBuffer()
      .then((png) => ({ png, b64: Buffer.from(png.toString('base64')) }));
    images.set(size, image);
  }
  return image;
}

/** gpt-image-2's output tokens at quality low, scaled by area as OpenAI bills other sizes. */
const modelsFile = JSON.parse(readFileSync(path.resolve('src/models/models.json'), 'utf8')) as {
  models: { id: string; pricing: { output_tokens?: Record<string, Record<string, number>> } }[];
};
const lowTokens1024 =
  modelsFile.models.find((m) => m.id === 'gpt-image-2')?.pricing.output_tokens?.low?.[
    '1024x1024'
  ] ?? 0;
const outputTokens = (size: string) => {
  const [w, h] = size.split('x').map(Number) as [number, number];
  return Math.ceil((lowTokens1024 * w * h) / (1024 * 1024));
};

let answer: AnswerForm = 'b64';
let latencyMs = 0;
const stats: ProviderStats = { requests: 0, inFlight: 0, maxInFlight: 0, bytesServed: 0 };

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sendJson(response: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

async function generate(request: IncomingMessage, response: ServerResponse, origin: string) {
  stats.requests++;
  stats.inFlight++;
  stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
  try {
    const body = JSON.parse((await readBody(request)).toString('utf8')) as {
      size?: string;
      prompt?: string;
      n?: number;
    };
    const size = body.size && /^\d+x\d+$/.test(body.size) ? body.size : '1024x1024';
    const n = body.n ?? 1;
    const image = await imageFor(size);
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    const datum =
      answer === 'b64'
        ? [Buffer.from('{"b64_json":"'), image.b64, Buffer.from('"}')]
        : [Buffer.from(JSON.stringify({ url: `${origin}/files/${size}.png` }))];
    const data = Array.from({ length: n }, (_, i) =>
      i === 0 ? datum : [Buffer.from(','), ...datum],
    ).flat();
    const output = outputTokens(size) * n;
    const input = Math.ceil((body.prompt ?? '').length / 4);
    const usage = {
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
      input_tokens_details: { text_tokens: input, image_tokens: 0 },
    };
    const parts = [
      Buffer.from(`{"created":${Math.floor(Date.now() / 1000)},"data":[`),
      ...data,
      Buffer.from(`],"usage":${JSON.stringify(usage)}}`),
    ];
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    stats.bytesServed += length;
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': length });
    for (const part of parts) response.write(part);
    response.end();
  } finally {
    stats.inFlight--;
  }
}

const server = createServer((request, response) => {
  const url = request.url ?? '/';
  const origin = `http://${request.headers.host}`;
  const fail = (error: unknown) => {
    if (!response.headersSent) sendJson(response, 500, { error: { message: String(error) } });
    else response.destroy();
  };
  if (request.method === 'POST' && url === '/v1/images/generations') {
    generate(request, response, origin).catch(fail);
  } else if (request.method === 'GET' && url.startsWith('/files/')) {
    const size = /^\/files\/(\d+x\d+)\.png$/.exec(url)?.[1];
    if (!size) return sendJson(response, 404, { error: { message: 'no such file' } });
    imageFor(size).then((image) => {
      stats.bytesServed += image.png.length;
      response.writeHead(200, { 'content-type': 'image/png', 'content-length': image.png.length });
      response.end(image.png);
    }, fail);
  } else if (request.method === 'POST' && url === '/_bench/mode') {
    readBody(request).then((raw) => {
      const mode = JSON.parse(raw.toString('utf8')) as { answer?: AnswerForm; latencyMs?: number };
      if (mode.answer) answer = mode.answer;
      if (mode.latencyMs !== undefined) latencyMs = mode.latencyMs;
      sendJson(response, 200, { answer, latencyMs });
    }, fail);
  } else if (request.method === 'GET' && url === '/_bench/stats') {
    sendJson(response, 200, stats);
  } else if (request.method === 'POST' && url === '/_bench/reset') {
    Object.assign(stats, { requests: 0, inFlight: 0, maxInFlight: 0, bytesServed: 0 });
    sendJson(response, 200, stats);
  } else {
    sendJson(response, 404, { error: { message: `no route ${request.method} ${url}` } });
  }
});
// A thousand requests held for seconds must not be cut by the server's own timeouts.
server.requestTimeout = 0;
server.keepAliveTimeout = 60_000;

// Render both sizes the bench asks for before reporting ready, so no row pays for them.
await Promise.all(['256x256', '1024x1024'].map(imageFor));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const sizes = [...images.keys()].join(', ');
  process.stdout.write(`pre-rendered ${sizes}\nlistening http://127.0.0.1:${address.port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
