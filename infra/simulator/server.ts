import { createHash, randomUUID } from 'node:crypto';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ImageBucket, formatDuration } from './image-bucket.js';
import { knobsSchema, type SimulatorKnobs } from './knobs.js';
import { renderImage } from './render-image.js';
import { SimulatedError, invalid } from './simulated-error.js';
import { checkInputs, parseSize, sizeAllowed, type ImageRequest } from './request-checks.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { outputTokensPerImage } from '../../src/models/pricing.js';

export type { SimulatorKnobs };

/**
 * A stand-in for OpenAI's Images API: the three endpoints, real images of the requested size,
 * an images-per-minute limit enforced with real 429s, fault knobs and exact counters. Tests
 * and benchmarks drive it; `rendermill render` and `start` use it when no key is configured.
 */

/** Input tokens the simulator reports per input image of an edit or variation. */
export const IMAGE_INPUT_TOKENS = 388;
/** Text tokens reported for a prompt: one per four characters, as OpenAI's rule of thumb. */
export const textTokens = (prompt: string) => Math.ceil(prompt.length / 4);

export interface SimulatorStats {
  requests: number;
  byEndpoint: { generations: number; edits: number; variations: number };
  byStatus: Record<string, number>;
  rateLimited: number;
  billedImages: number;
  billedImagesByPrompt: Record<string, number>;
  billedImagesByModel: Record<string, number>;
  billedTokens: { input: number; output: number };
  inFlight: number;
  maxInFlight: number;
  /** Epoch ms of the first image request since the last reset (null before any): lets a benchmark time the provider's side. */
  firstRequestAt: number | null;
  /** Epoch ms of the last answer (any status) to an image request since the last reset. */
  lastResponseAt: number | null;
  /** Epoch ms of the first rate-limit 429 since the last reset: at start-up or mid-run tells a burst from pacing drift. */
  firstRateLimitedAt: number | null;
}

export interface RunningSimulator {
  /** Base URL for an OpenAI client, e.g. http://127.0.0.1:PORT/v1. */
  url: string;
  origin: string;
  port: number;
  setKnobs(knobs: Partial<SimulatorKnobs>): void;
  knobs(): SimulatorKnobs;
  stats(): SimulatorStats;
  /** Zeroes the counters and refills the rate-limit bucket. */
  reset(): void;
  stop(): Promise<void>;
}

type Endpoint = keyof SimulatorStats['byEndpoint'];

/** A seeded PRNG (mulberry32): fault rates are reproducible for a given seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function emptyStats(): SimulatorStats {
  return {
    requests: 0,
    byEndpoint: { generations: 0, edits: 0, variations: 0 },
    byStatus: {},
    rateLimited: 0,
    billedImages: 0,
    billedImagesByPrompt: {},
    billedImagesByModel: {},
    billedTokens: { input: 0, output: 0 },
    inFlight: 0,
    maxInFlight: 0,
    firstRequestAt: null,
    lastResponseAt: null,
    firstRateLimitedAt: null,
  };
}

export async function startSimulator(
  options: Partial<SimulatorKnobs> & { port?: number; host?: string } = {},
): Promise<RunningSimulator> {
  const { port = 0, host = '127.0.0.1', ...initialKnobs } = options;
  const registry = ModelRegistry.load();
  let knobs = knobsSchema.parse(initialKnobs);
  let random = prng(knobs.seed);
  let stats = emptyStats();
  const bucket = new ImageBucket(knobs.imagesPerMinute);
  const files = new Map<string, { data: Buffer; type: string; expires: number }>();

  const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
  await app.register(multipart, { limits: { fileSize: 64 * 1024 * 1024, files: 17 } });

  const setKnobs = (changes: Partial<SimulatorKnobs>) => {
    const next = knobsSchema.parse({ ...knobs, ...changes });
    if (next.seed !== knobs.seed) random = prng(next.seed);
    bucket.setLimit(next.imagesPerMinute);
    knobs = next;
  };

  const rateHeaders = (remaining: number): Record<string, string> => {
    if (knobs.imagesPerMinute === 0) return {};
    const reset = formatDuration(bucket.msUntilFull());
    const limit = String(knobs.imagesPerMinute);
    return {
      'x-ratelimit-limit-requests': limit,
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': reset,
      'x-ratelimit-limit-images': limit,
      'x-ratelimit-remaining-images': String(remaining),
      'x-ratelimit-reset-images': reset,
    };
  };

  const rateLimited = (waitMs: number, n: number): SimulatedError => {
    const headers: Record<string, string> = rateHeaders(0);
    const finite = Number.isFinite(waitMs) ? waitMs : 60_000;
    const choice = knobs.retryHeaders;
    if (choice !== 'x-ratelimit-reset-requests' && choice !== 'all') {
      delete headers['x-ratelimit-reset-requests'];
      delete headers['x-ratelimit-reset-images'];
    } else headers['x-ratelimit-reset-requests'] = formatDuration(finite);
    if (choice === 'all' || choice === 'retry-after-ms') headers['retry-after-ms'] = String(finite);
    if (choice === 'all' || choice === 'retry-after')
      headers['retry-after'] = String(Math.ceil(finite / 1000));
    const message = Number.isFinite(waitMs)
      ? `Rate limit reached for images per minute: limit ${knobs.imagesPerMinute}. Please try again in ${formatDuration(finite)}.`
      : `Request for ${n} images exceeds the ${bucket.capacity} images this limit allows at once.`;
    return new SimulatedError(429, 'requests', 'rate_limit_exceeded', message, null, headers);
  };

  /** The checks every image request goes through, in the order the knobs document. */
  async function handle(
    endpoint: Endpoint,
    request: FastifyRequest,
    reply: FastifyReply,
    body: ImageRequest,
  ) {
    stats.requests += 1;
    stats.firstRequestAt ??= Date.now();
    stats.byEndpoint[endpoint] += 1;
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      const key = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      if (!key || (knobs.apiKeys && !knobs.apiKeys.includes(key))) {
        throw new SimulatedError(
          401,
          'invalid_request_error',
          'invalid_api_key',
          'Incorrect API key provided.',
        );
      }
      if (knobs.forbiddenKeys.includes(key)) {
        throw new SimulatedError(
          403,
          'invalid_request_error',
          'permission_denied',
          'You do not have access to this resource.',
        );
      }
      if (knobs.failNext && knobs.failNext.count > 0) {
        const fail = knobs.failNext;
        knobs = {
          ...knobs,
          failNext: fail.count > 1 ? { ...fail, count: fail.count - 1 } : undefined,
        };
        throw new SimulatedError(
          fail.status,
          fail.type ?? (fail.status >= 500 ? 'server_error' : 'invalid_request_error'),
          fail.code ?? null,
          fail.message ?? `Simulated error ${fail.status}.`,
        );
      }
      if (knobs.insufficientQuota) {
        throw new SimulatedError(
          429,
          'insufficient_quota',
          'insufficient_quota',
          'You exceeded your current quota, please check your plan and billing details.',
        );
      }
      const model = registry.get(body.model);
      if (!model || knobs.retiredModels.includes(body.model)) {
        throw new SimulatedError(
          404,
          'invalid_request_error',
          'model_not_found',
          `The model \`${body.model}\` does not exist or you do not have access to it.`,
          'model',
        );
      }
      const operation =
        endpoint === 'generations' ? 'generate' : endpoint === 'edits' ? 'edit' : 'variation';
      if (!model.operations.includes(operation)) {
        throw invalid(`${model.id} does not support ${endpoint}.`, 'model');
      }
      const size = body.size ?? '1024x1024';
      const dims = parseSize(size);
      if (!dims || !sizeAllowed(model, size))
        throw invalid(`Invalid size '${size}' for ${model.id}.`, 'size');
      if (!Number.isInteger(body.n) || body.n < model.n.min || body.n > model.n.max) {
        throw invalid(`n must be between ${model.n.min} and ${model.n.max} for ${model.id}.`, 'n');
      }
      if (operation !== 'variation' && !body.prompt) throw invalid('prompt is required.', 'prompt');
      if ((body.prompt?.length ?? 0) > model.prompt_max_chars) {
        throw invalid(`prompt is longer than ${model.prompt_max_chars} characters.`, 'prompt');
      }
      if (operation !== 'generate') await checkInputs(model, body);

      if (
        knobs.contentPolicyPattern &&
        new RegExp(knobs.contentPolicyPattern, 'i').test(body.prompt ?? '')
      ) {
        const gptImage = model.pricing.kind === 'per_token';
        throw new SimulatedError(
          400,
          gptImage ? 'image_generation_user_error' : 'invalid_request_error',
          gptImage ? 'moderation_blocked' : 'content_policy_violation',
          'Your request was rejected as a result of our safety system.',
        );
      }

      const taken = bucket.take(body.n);
      if (!taken.ok) {
        stats.rateLimited += 1;
        stats.firstRateLimitedAt ??= Date.now();
        throw rateLimited(taken.waitMs, body.n);
      }
      if (random() < knobs.resetRate) {
        request.raw.socket.destroy();
        return reply.hijack();
      }
      if (random() < knobs.errorRate) {
        const status = [500, 502, 503][Math.floor(random() * 3)]!;
        throw new SimulatedError(
          status,
          'server_error',
          null,
          'The server had an error while processing your request.',
        );
      }
      const delay =
        knobs.latencyMs +
        random() * knobs.latencyJitterMs +
        (random() < knobs.slowRate ? knobs.slowMs : 0);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));

      const gptImage = model.pricing.kind === 'per_token';
      const format = gptImage
        ? ((body.output_format as 'png' | 'jpeg' | 'webp' | undefined) ?? 'png')
        : 'png';
      const asUrl = !gptImage && (body.response_format ?? 'url') === 'url';
      const inputDigest = createHash('sha256')
        .update(body.images[0] ?? '')
        .digest('hex');
      const data = [];
      for (let index = 0; index < body.n; index++) {
        const label = body.prompt ?? `variation of ${inputDigest.slice(0, 8)}`;
        const bytes = await renderImage(
          `${body.model}|${body.prompt ?? ''}|${inputDigest}|${size}#${index}`,
          `${label} #${index}`,
          dims[0],
          dims[1],
          format,
          body.background === 'transparent',
          body.images[0],
        );
        if (asUrl) {
          const id = randomUUID();
          files.set(id, {
            data: bytes,
            type: `image/${format}`,
            expires: Date.now() + knobs.urlTtlMs,
          });
          data.push({ url: `${origin}/files/${id}.${format}` });
        } else data.push({ b64_json: bytes.toString('base64') });
      }

      data.splice(0, knobs.dropImages);
      const prompt = body.prompt ?? '';
      stats.billedImages += body.n;
      stats.billedImagesByPrompt[prompt] = (stats.billedImagesByPrompt[prompt] ?? 0) + body.n;
      stats.billedImagesByModel[model.id] = (stats.billedImagesByModel[model.id] ?? 0) + body.n;
      const response: Record<string, unknown> = { created: Math.floor(Date.now() / 1000), data };
      if (model.pricing.kind === 'per_token') {
        const quality = body.quality && body.quality !== 'auto' ? body.quality : 'medium';
        const output = body.n * outputTokensPerImage(model.pricing, size, quality);
        const text = textTokens(prompt);
        const image = IMAGE_INPUT_TOKENS * (body.images.length + (body.mask ? 1 : 0));
        stats.billedTokens.input += text + image;
        stats.billedTokens.output += output;
        response.usage = {
          input_tokens: text + image,
          output_tokens: output,
          total_tokens: text + image + output,
          input_tokens_details: { text_tokens: text, image_tokens: image },
        };
      }
      count(200);
      return reply.headers(rateHeaders(taken.remaining)).send(response);
    } catch (error) {
      if (!(error instanceof SimulatedError)) throw error;
      count(error.status);
      return reply
        .code(error.status)
        .headers(error.status === 429 ? error.headers : rateHeaders(bucket.remaining()))
        .send({
          error: { message: error.message, type: error.type, param: error.param, code: error.code },
        });
    } finally {
      stats.inFlight -= 1;
      stats.lastResponseAt = Date.now();
    }
  }

  const count = (status: number) => {
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  };

  /** Multipart bodies of /edits and /variations: files under image / image[] / mask, numbers as text. */
  async function readMultipart(request: FastifyRequest): Promise<ImageRequest> {
    if (!request.isMultipart())
      throw invalid('Expected multipart/form-data.', null as unknown as string);
    const fields: Record<string, string> = {};
    const images: Buffer[] = [];
    let mask: Buffer | undefined;
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        const data = await part.toBuffer();
        if (part.fieldname === 'mask') mask = data;
        else if (part.fieldname === 'image' || part.fieldname === 'image[]') images.push(data);
      } else fields[part.fieldname] = String(part.value);
    }
    return {
      model: fields.model ?? 'dall-e-2',
      prompt: fields.prompt,
      n: fields.n === undefined ? 1 : Number(fields.n),
      size: fields.size,
      quality: fields.quality,
      background: fields.background,
      output_format: fields.output_format,
      response_format: fields.response_format,
      images,
      mask,
    };
  }

  app.post('/v1/images/generations', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    return handle('generations', request, reply, {
      model: typeof body.model === 'string' ? body.model : 'dall-e-2',
      prompt: typeof body.prompt === 'string' ? body.prompt : undefined,
      n: body.n === undefined || body.n === null ? 1 : Number(body.n),
      size: typeof body.size === 'string' ? body.size : undefined,
      quality: typeof body.quality === 'string' ? body.quality : undefined,
      background: typeof body.background === 'string' ? body.background : undefined,
      output_format: typeof body.output_format === 'string' ? body.output_format : undefined,
      response_format: typeof body.response_format === 'string' ? body.response_format : undefined,
      images: [],
    });
  });
  app.post('/v1/images/edits', async (request, reply) =>
    handle('edits', request, reply, await readMultipart(request)),
  );
  app.post('/v1/images/variations', async (request, reply) =>
    handle('variations', request, reply, await readMultipart(request)),
  );

  app.get<{ Params: { file: string } }>('/files/:file', async (request, reply) => {
    const id = request.params.file.replace(/\.\w+$/, '');
    const file = files.get(id);
    if (!file || file.expires < Date.now()) {
      files.delete(id);
      return reply
        .code(404)
        .send({ error: { message: 'expired or unknown image', code: 'not_found' } });
    }
    return reply.type(file.type).send(file.data);
  });

  app.get('/_sim/health', async () => ({ ok: true }));
  app.get('/_sim/stats', async () => stats);
  app.post('/_sim/reset', async () => {
    stats = emptyStats();
    bucket.reset();
    return { ok: true };
  });
  app.post('/_sim/knobs', async (request, reply) => {
    const parsed = knobsSchema.partial().safeParse(request.body ?? {});
    if (!parsed.success)
      return reply.code(400).send({ error: { message: z.prettifyError(parsed.error) } });
    setKnobs(parsed.data);
    return knobs;
  });

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, file] of files) if (file.expires < now) files.delete(id);
  }, 10_000);
  sweep.unref();

  await app.listen({ port, host });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const origin = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${boundPort}`;

  return {
    url: `${origin}/v1`,
    origin,
    port: boundPort,
    setKnobs,
    knobs: () => knobs,
    stats: () => structuredClone(stats),
    reset: () => {
      stats = emptyStats();
      bucket.reset();
    },
    stop: async () => {
      clearInterval(sweep);
      files.clear();
      // Requests still being answered (a slow one whose client gave up) are cut, not waited
      // for: a stopping provider owes nobody an answer.
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
}
