import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import type { ModelSpec } from '../../src/models/registry-schema.js';
import { answerWithImages, tokenUsage } from './image-answer.js';
import type { SimulatorKnobs } from './knobs.js';
import { rateLimitExceeded, rateLimitHeaders } from './rate-headers.js';
import type { LimitsView } from './rate-limits.js';
import {
  checkInputs,
  validateImageRequest,
  type ImageRequest,
  type ValidRequest,
} from './request-checks.js';
import type { ServedFiles } from './served-files.js';
import { SimulatedError } from './simulated-error.js';
import type { ImageEndpoint, SimulatorState } from './simulator-state.js';

/** What every image request shares: the simulator's state, the models and the served files. */
export interface PipelineContext {
  state: SimulatorState;
  registry: ModelRegistry;
  files: ServedFiles;
  /** The simulator's origin; a function because it is known only once the server listens. */
  origin: () => string;
}

/** One image request, its body already read from JSON or multipart. */
export interface ImageCall {
  endpoint: ImageEndpoint;
  request: FastifyRequest;
  reply: FastifyReply;
  body: ImageRequest;
}

/**
 * Answers an image request. The checks run in the order the README documents, the first to
 * fail answering with OpenAI's error; only a request that passes them all is rendered and
 * billed. Every step reads the knobs as they are when it runs.
 */
export async function handleImageRequest(context: PipelineContext, call: ImageCall) {
  const { state } = context;
  const { endpoint, request, reply, body } = call;
  state.requestStarted(endpoint);
  try {
    checkApiKey(state.knobs, request);
    failIfAsked(state);
    checkQuota(state.knobs);
    const valid = validateImageRequest({
      registry: context.registry,
      retiredModels: state.knobs.retiredModels,
      endpoint,
      body,
    });
    if (valid.operation !== 'generate') await checkInputs(valid.model, body);
    checkContentPolicy(state.knobs, valid.model, body);
    const seen = takeFromLimits(state, valid, body);
    if (dropsConnection(state)) {
      request.raw.socket.destroy();
      return reply.hijack();
    }
    failAtRandom(state);
    await simulateLatency(state);
    const answerContext = { state, files: context.files, origin: context.origin() };
    const response = await answerWithImages(answerContext, { ...valid, body });
    state.answered(200);
    return reply.headers(rateLimitHeaders(seen, state.knobs.rateHeaders)).send(response);
  } catch (error) {
    if (!(error instanceof SimulatedError)) throw error;
    state.answered(error.status);
    const model = typeof body.model === 'string' ? body.model : '';
    return sendOpenAIError(reply, error, state, model);
  } finally {
    state.requestFinished();
  }
}

/**
 * OpenAI's error answer: `{error: {message, type, param, code}}`. A 429 carries only its own
 * headers: the limit's (see rateLimitExceeded), none for a quota 429 that no wait cures. Other
 * errors report the limits of `model` (the shared ones if it is unknown or not yet validated)
 * as they are now.
 */
export function sendOpenAIError(
  reply: FastifyReply,
  error: SimulatedError,
  state: SimulatorState,
  model: string,
) {
  const headers =
    error.status === 429
      ? error.headers
      : rateLimitHeaders(state.limits.view(model), state.knobs.rateHeaders);
  return reply
    .code(error.status)
    .headers(headers)
    .send({
      error: { message: error.message, type: error.type, param: error.param, code: error.code },
    });
}

/**
 * A key is required (`Authorization: Bearer …`, or `Key …` for fal); with `apiKeys` set only
 * those, and `forbiddenKeys` get 403.
 */
export function checkApiKey(
  knobs: SimulatorKnobs,
  request: FastifyRequest,
  scheme: 'Bearer' | 'Key' = 'Bearer',
): void {
  const key = new RegExp(`^${scheme}\\s+(\\S+)$`, 'i').exec(
    request.headers.authorization ?? '',
  )?.[1];
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
}

/** The `failNext` knob: the error it asks for, counted down by one. */
export function failIfAsked(state: SimulatorState): void {
  const fail = state.takeFailNext();
  if (!fail) return;
  throw new SimulatedError(
    fail.status,
    fail.type ?? (fail.status >= 500 ? 'server_error' : 'invalid_request_error'),
    fail.code ?? null,
    fail.message ?? `Simulated error ${fail.status}.`,
  );
}

/** The `insufficientQuota` knob: a 429 that waiting does not cure, unlike the rate limit's. */
export function checkQuota(knobs: SimulatorKnobs): void {
  if (!knobs.insufficientQuota) return;
  throw new SimulatedError(
    429,
    'insufficient_quota',
    'insufficient_quota',
    'You exceeded your current quota, please check your plan and billing details.',
  );
}

/** The `contentPolicyPattern` knob, refused with the code OpenAI uses for the model's family. */
export function checkContentPolicy(
  knobs: SimulatorKnobs,
  model: ModelSpec,
  body: ImageRequest,
): void {
  if (!knobs.contentPolicyPattern) return;
  if (!new RegExp(knobs.contentPolicyPattern, 'i').test(body.prompt ?? '')) return;
  const gptImage = model.pricing.kind === 'per_token';
  throw new SimulatedError(
    400,
    gptImage ? 'image_generation_user_error' : 'invalid_request_error',
    gptImage ? 'moderation_blocked' : 'content_policy_violation',
    'Your request was rejected as a result of our safety system.',
  );
}

/**
 * Takes the request from its model's limits — 1 request, n images and the tokens it will be
 * billed (known before rendering) — returning the limits as it saw them, or throws its 429.
 */
export function takeFromLimits(
  state: SimulatorState,
  valid: Pick<ValidRequest, 'model' | 'size'>,
  body: ImageRequest,
): LimitsView {
  const usage = tokenUsage(valid.model, body, valid.size);
  const tokens = usage ? usage.text + usage.image + usage.output : 0;
  const modelId = valid.model.id;
  const decision = state.limits.take(modelId, { requests: 1, images: body.n, tokens });
  if (decision.ok) {
    state.acceptedByLimit(modelId, body.n);
    return decision.view;
  }
  state.rateLimited(decision.refusal.dimension);
  throw rateLimitExceeded({
    ...decision.refusal,
    view: decision.view,
    retryHeaders: state.knobs.retryHeaders,
    rateHeaders: state.knobs.rateHeaders,
  });
}

/** The `resetRate` knob: whether to drop this connection without an answer. */
export function dropsConnection(state: SimulatorState): boolean {
  return state.random() < state.knobs.resetRate;
}

/** The `errorRate` knob: a 500, 502 or 503 `server_error`. */
export function failAtRandom(state: SimulatorState): void {
  if (state.random() >= state.knobs.errorRate) return;
  const status = [500, 502, 503][Math.floor(state.random() * 3)]!;
  throw new SimulatedError(
    status,
    'server_error',
    null,
    'The server had an error while processing your request.',
  );
}

/** The latency knobs: `latencyMs`, up to `latencyJitterMs` more, and `slowMs` for a `slowRate` share. */
export async function simulateLatency(state: SimulatorState): Promise<void> {
  const { knobs } = state;
  const delay =
    knobs.latencyMs +
    state.random() * knobs.latencyJitterMs +
    (state.random() < knobs.slowRate ? knobs.slowMs : 0);
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
}
