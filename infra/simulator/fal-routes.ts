import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import type { ModelSpec } from '../../src/models/registry-schema.js';
import {
  checkApiKey,
  checkContentPolicy,
  checkQuota,
  dropsConnection,
  failAtRandom,
  failIfAsked,
  simulateLatency,
  takeFromLimits,
  type PipelineContext,
} from './image-request-pipeline.js';
import { rateLimitHeaders } from './rate-headers.js';
import { renderImage } from './render-image.js';
import type { ImageRequest } from './request-checks.js';
import { SimulatedError } from './simulated-error.js';

/**
 * fal's named sizes for FLUX models (https://fal.ai/models/fal-ai/flux/schnell/api); the
 * default is landscape_4_3.
 */
const NAMED_SIZES: Record<string, [number, number]> = {
  square_hd: [1024, 1024],
  square: [512, 512],
  portrait_4_3: [768, 1024],
  portrait_16_9: [576, 1024],
  landscape_4_3: [1024, 768],
  landscape_16_9: [1024, 576],
};
const DEFAULT_SIZE = 'landscape_4_3';
/** The largest side fal's ImageSize schema takes. */
const MAX_SIDE = 14_142;
/** FLUX [schnell] takes 1–12 inference steps. */
const MAX_STEPS = 12;
/** fal keeps a completed request's result for an hour (https://fal.ai/docs/inference-api/queue/result). */
const RESULT_RETENTION_MS = 3_600_000;
/** What fal answers when the account's balance is gone (a 403, not a 429). */
const EXHAUSTED_BALANCE =
  'User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.';

type FalFormat = 'jpeg' | 'png';

/** A submission that passed validation: what its run renders. */
interface FalInput {
  model: ModelSpec;
  prompt: string;
  width: number;
  height: number;
  numImages: number;
  format: FalFormat;
}

/** What GET response_url answers once the request has ended. */
interface FalResult {
  status: number;
  body: Record<string, unknown>;
  /** Why the request failed, for the status answer's `error` / `error_type`. */
  error?: { message: string; type: string };
}

/** One queued request, from submission until its result is dropped. */
interface FalRequest {
  id: string;
  /** `owner/app`: the request's status, result and cancel URLs leave out the endpoint path. */
  app: string;
  input: FalInput;
  submittedAt: number;
  /** When it leaves the queue for a runner (half its run, as the status answer tells). */
  startsAt: number;
  /** Stops its run when it is cancelled or the simulator closes. */
  abort: AbortController;
  /** Set once the request has ended, successfully or not (also by a cancellation). */
  result?: FalResult;
  endedAt?: number;
}

/** A fal error answer: fal's bodies carry `detail`, a string or a list of typed problems. */
class FalAnswer extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.detail === 'string' ? body.detail : `fal answer ${status}`);
  }
}

/** A 422 naming the input field, in fal's (pydantic's) shape. */
const unprocessable = (field: string, msg: string, type = 'value_error') =>
  new FalAnswer(422, { detail: [{ loc: ['body', field], msg, type }] });

/**
 * fal's queue API (https://fal.ai/docs/inference-api): POST /fal/{model id} queues a request
 * and answers its URLs; GET …/requests/{id}/status follows it (202 while queued or running,
 * 200 once COMPLETED); GET …/requests/{id} is its result (the images, or the model's error);
 * PUT …/requests/{id}/cancel stops it. Every submission passes the same knobs as the Images
 * API (key, failNext, quota, limits with real 429s, resets, errors); it then runs `queuedMs`
 * plus the latency knobs, `queuedFailRate` of runs failing, and is billed once when it
 * completes with images — never when it fails, is refused or is cancelled first.
 */
export function registerFalRoutes(app: FastifyInstance, context: PipelineContext): void {
  const requests = new Map<string, FalRequest>();
  app.addHook('onClose', async () => {
    for (const request of requests.values()) request.abort.abort();
    requests.clear();
  });

  app.post('/fal/*', async (request, reply) => {
    const modelId = (request.params as { '*': string })['*'].replace(/\/+$/, '');
    return submit(context, requests, modelId, request, reply);
  });

  type Params = { owner: string; app: string; id: string };
  app.get<{ Params: Params }>('/fal/:owner/:app/requests/:id/status', async (request, reply) =>
    answerFal(reply, () => {
      checkApiKey(context.state.knobs, request, 'Key');
      const queued = find(requests, request.params);
      const withLogs = (request.query as { logs?: string }).logs === '1';
      return statusAnswer(context, queued, withLogs);
    }),
  );
  app.get<{ Params: Params }>('/fal/:owner/:app/requests/:id', async (request, reply) =>
    answerFal(reply, () => {
      checkApiKey(context.state.knobs, request, 'Key');
      const queued = find(requests, request.params);
      if (!queued.result) {
        throw new FalAnswer(400, { detail: 'Request is still in progress' });
      }
      return { status: queued.result.status, body: queued.result.body };
    }),
  );
  app.put<{ Params: Params }>('/fal/:owner/:app/requests/:id/cancel', async (request, reply) =>
    answerFal(reply, () => {
      checkApiKey(context.state.knobs, request, 'Key');
      const queued = find(requests, request.params);
      if (queued.result) return { status: 400, body: { status: 'ALREADY_COMPLETED' } };
      // Ended here and now, so the run that was to render it renders and bills nothing.
      queued.abort.abort();
      queued.result = {
        status: 400,
        body: { detail: 'Request was cancelled' },
        error: { message: 'Request was cancelled', type: 'request_cancelled' },
      };
      queued.endedAt = Date.now();
      return { status: 202, body: { status: 'CANCELLATION_REQUESTED' } };
    }),
  );
}

/** Answers what `answer` returns, or the fal error it throws (SimulatedErrors translated). */
async function answerFal(
  reply: FastifyReply,
  answer: () => { status: number; body: Record<string, unknown> },
) {
  try {
    const { status, body } = answer();
    return reply.code(status).send(body);
  } catch (error) {
    const fal = asFalAnswer(error);
    return reply.code(fal.status).headers(fal.headers).send(fal.body);
  }
}

/** The request these params name, or fal's 404 (unknown, or its result dropped after an hour). */
function find(
  requests: Map<string, FalRequest>,
  params: { owner: string; app: string; id: string },
) {
  const queued = requests.get(params.id);
  if (!queued || queued.app !== `${params.owner}/${params.app}`) {
    throw new FalAnswer(404, { detail: `Request ${params.id} not found` });
  }
  return queued;
}

/** The pipeline's checks throw OpenAI-shaped errors; fal answers the same failures with `detail`. */
function asFalAnswer(error: unknown): FalAnswer {
  if (error instanceof FalAnswer) return error;
  if (!(error instanceof SimulatedError)) throw error;
  // fal refuses an account without balance with a 403, not OpenAI's insufficient_quota 429.
  if (error.code === 'insufficient_quota') {
    return new FalAnswer(403, { detail: EXHAUSTED_BALANCE });
  }
  return new FalAnswer(error.status, { detail: error.message }, error.headers);
}

async function submit(
  context: PipelineContext,
  requests: Map<string, FalRequest>,
  modelId: string,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const { state } = context;
  state.requestStarted('queue');
  let model: ModelSpec | undefined;
  try {
    checkApiKey(state.knobs, request, 'Key');
    failIfAsked(state);
    checkQuota(state.knobs);
    model = modelByFalId(context.registry, modelId, state.knobs.retiredModels);
    const input = validateInput(model, request.body);
    const seen = takeFromLimits(state, { model, size: `${input.width}x${input.height}` }, {
      model: model.id,
      n: input.numImages,
      images: [],
    } as ImageRequest);
    // Dropped before it is queued: nothing runs, nothing is billed.
    if (dropsConnection(state)) {
      request.raw.socket.destroy();
      return reply.hijack();
    }
    failAtRandom(state);
    dropExpired(requests);
    const queued = enqueue(context, requests, modelId, input);
    state.answered(200);
    return reply
      .headers(rateLimitHeaders(seen, state.knobs.rateHeaders))
      .send({ ...requestUrls(context, queued), queue_position: 0 });
  } catch (error) {
    const fal = asFalAnswer(error);
    state.answered(fal.status);
    // As the Images API: a 429 carries its own headers, other errors the limits as they are.
    const headers =
      fal.status === 429
        ? fal.headers
        : rateLimitHeaders(state.limits.view(model?.id ?? ''), state.knobs.rateHeaders);
    return reply.code(fal.status).headers(headers).send(fal.body);
  } finally {
    state.requestFinished();
  }
}

/** The registry model whose fal id is `falId`; fal answers an unknown app with a 404. */
function modelByFalId(registry: ModelRegistry, falId: string, retired: readonly string[]) {
  for (const id of registry.ids()) {
    const model = registry.get(id)!;
    if (model.remote_ids?.fal === falId && !retired.includes(model.id)) return model;
  }
  throw new FalAnswer(404, { detail: `Application '${falId}' not found` });
}

/** FLUX [schnell]'s input schema as fal documents it; fields it does not know are ignored. */
function validateInput(model: ModelSpec, raw: unknown): FalInput {
  const body = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const prompt = body.prompt;
  if (typeof prompt !== 'string' || prompt === '') {
    throw unprocessable('prompt', 'Field required', 'missing');
  }
  if (prompt.length > model.prompt_max_chars) {
    throw unprocessable(
      'prompt',
      `String should have at most ${model.prompt_max_chars} characters`,
    );
  }
  const [width, height] = imageSize(body.image_size ?? DEFAULT_SIZE);
  const maxImages = model.images_per_call ?? model.n.max;
  const numImages = body.num_images ?? 1;
  if (
    !Number.isInteger(numImages) ||
    (numImages as number) < 1 ||
    (numImages as number) > maxImages
  ) {
    throw unprocessable('num_images', `Input should be between 1 and ${maxImages}`);
  }
  const format = body.output_format ?? 'jpeg';
  if (format !== 'jpeg' && format !== 'png') {
    throw unprocessable('output_format', "Input should be 'jpeg' or 'png'", 'enum');
  }
  const steps = body.num_inference_steps;
  if (
    steps !== undefined &&
    (!Number.isInteger(steps) || (steps as number) < 1 || (steps as number) > MAX_STEPS)
  ) {
    throw unprocessable('num_inference_steps', `Input should be between 1 and ${MAX_STEPS}`);
  }
  const checker = body.enable_safety_checker;
  if (checker !== undefined && typeof checker !== 'boolean') {
    throw unprocessable('enable_safety_checker', 'Input should be a valid boolean', 'bool_type');
  }
  return { model, prompt, width, height, numImages: numImages as number, format };
}

/** `image_size`: one of fal's names, or {width, height} in whole pixels. */
function imageSize(value: unknown): [number, number] {
  if (typeof value === 'string') {
    const named = NAMED_SIZES[value];
    if (!named) {
      throw unprocessable(
        'image_size',
        `Input should be one of ${Object.keys(NAMED_SIZES).join(', ')}`,
        'enum',
      );
    }
    return named;
  }
  const size = (value && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  const sides = [size.width, size.height];
  if (
    !sides.every(
      (side) => Number.isInteger(side) && (side as number) >= 1 && (side as number) <= MAX_SIDE,
    )
  ) {
    throw unprocessable(
      'image_size',
      `width and height should be whole numbers from 1 to ${MAX_SIDE}`,
    );
  }
  return sides as [number, number];
}

/** The URLs of a request, absolute and on the simulator's origin, as fal answers them. */
function requestUrls(context: PipelineContext, queued: FalRequest) {
  const base = `${context.origin()}/fal/${queued.app}/requests/${queued.id}`;
  return {
    request_id: queued.id,
    response_url: base,
    status_url: `${base}/status`,
    cancel_url: `${base}/cancel`,
  };
}

/** Queues a request and starts its run: `queuedMs`, then the latency knobs, then the outcome. */
function enqueue(
  context: PipelineContext,
  requests: Map<string, FalRequest>,
  modelId: string,
  input: FalInput,
): FalRequest {
  const now = Date.now();
  const queuedMs = context.state.knobs.queuedMs;
  const queued: FalRequest = {
    id: randomUUID(),
    // fal-ai/flux/schnell → fal-ai/flux: the app without its endpoint path.
    app: modelId.split('/').slice(0, 2).join('/'),
    input,
    submittedAt: now,
    startsAt: now + queuedMs / 2,
    abort: new AbortController(),
  };
  requests.set(queued.id, queued);
  void run(context, queued, queuedMs).catch(() => {
    // Aborted: cancelled (its result already set) or the simulator closing. Anything else
    // (a render that threw) ends the request as a runner failure, unbilled.
    if (queued.abort.signal.aborted) return;
    const message = 'Internal server error';
    queued.result = {
      status: 500,
      body: { detail: message },
      error: { message, type: 'runner_server_error' },
    };
    queued.endedAt = Date.now();
  });
  return queued;
}

async function run(context: PipelineContext, queued: FalRequest, queuedMs: number) {
  const { state } = context;
  const { signal } = queued.abort;
  await sleep(queuedMs, undefined, { signal });
  await simulateLatency(state);
  signal.throwIfAborted();
  const result = await outcome(context, queued);
  // A cancellation that arrived while it rendered won: nothing is answered, nothing billed.
  signal.throwIfAborted();
  if (result.status === 200) {
    state.bill({
      prompt: queued.input.prompt,
      modelId: queued.input.model.id,
      images: queued.input.numImages,
    });
  }
  queued.result = result;
  queued.endedAt = Date.now();
}

/** How a run ends: the content checker, then `queuedFailRate`, else its images. */
async function outcome(context: PipelineContext, queued: FalRequest): Promise<FalResult> {
  const { state } = context;
  const { input } = queued;
  try {
    checkContentPolicy(state.knobs, input.model, { prompt: input.prompt } as ImageRequest);
  } catch (error) {
    if (!(error instanceof SimulatedError)) throw error;
    // fal's content checker refuses with a 422 typed content_policy_violation
    // (https://fal.ai/docs/documentation/model-apis/errors), not blacked-out images.
    const msg = 'The content was flagged by a content checker.';
    return {
      status: 422,
      body: {
        detail: [
          {
            loc: ['body', 'prompt'],
            msg,
            type: 'content_policy_violation',
            url: 'https://docs.fal.ai/errors#content_policy_violation',
            input: input.prompt,
          },
        ],
      },
      error: { message: msg, type: 'content_policy_violation' },
    };
  }
  if (state.random() < state.knobs.queuedFailRate) {
    const message = 'Internal server error';
    return {
      status: 500,
      body: { detail: message },
      error: { message, type: 'runner_server_error' },
    };
  }
  return { status: 200, body: await renderOutput(context, queued) };
}

/** FLUX's output: the images (served under /files until `urlTtlMs`), seed, NSFW flags, timings. */
async function renderOutput(context: PipelineContext, queued: FalRequest) {
  const { state, files } = context;
  const { input } = queued;
  const seed = Number.parseInt(queued.id.slice(0, 8), 16);
  const images: Record<string, unknown>[] = [];
  for (let index = 0; index < input.numImages; index++) {
    const data = await renderImage({
      seedText: `${input.model.id}|${input.prompt}|${input.width}x${input.height}#${index}`,
      label: `${input.prompt} #${index}`,
      width: input.width,
      height: input.height,
      format: input.format,
      transparent: false,
    });
    const type = `image/${input.format}`;
    const id = files.add({ data, type, ttlMs: state.knobs.urlTtlMs });
    images.push({
      url: `${context.origin()}/files/${id}.${input.format === 'jpeg' ? 'jpg' : 'png'}`,
      width: input.width,
      height: input.height,
      content_type: type,
    });
  }
  // A faulty gateway's `dropImages` withholds images that are still billed, as on the Images API.
  images.splice(0, state.knobs.dropImages);
  return {
    images,
    timings: { inference: (Date.now() - queued.startsAt) / 1000 },
    seed,
    has_nsfw_concepts: images.map(() => false),
    prompt: input.prompt,
  };
}

function statusAnswer(context: PipelineContext, queued: FalRequest, withLogs: boolean) {
  const urls = requestUrls(context, queued);
  const logs = withLogs ? { logs: [] as unknown[] } : {};
  if (queued.result) {
    const error = queued.result.error
      ? { error: queued.result.error.message, error_type: queued.result.error.type }
      : {};
    return { status: 200, body: { status: 'COMPLETED', ...urls, ...logs, ...error } };
  }
  const body =
    Date.now() < queued.startsAt
      ? { status: 'IN_QUEUE', queue_position: 0, ...urls }
      : { status: 'IN_PROGRESS', ...urls, ...logs };
  return { status: 202, body };
}

/** Drops requests whose result fal would no longer keep. */
function dropExpired(requests: Map<string, FalRequest>) {
  const cutoff = Date.now() - RESULT_RETENTION_MS;
  for (const [id, queued] of requests) {
    if (queued.endedAt !== undefined && queued.endedAt < cutoff) requests.delete(id);
  }
}
