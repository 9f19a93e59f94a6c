import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
import type { SimulatorKnobs } from './knobs.js';
import { rateLimitHeaders } from './rate-headers.js';
import { renderImage } from './render-image.js';
import { parseSize } from './request-checks.js';
import { SimulatedError } from './simulated-error.js';

/**
 * The sizes Replicate's FLUX models render for each `aspect_ratio` at 1 megapixel
 * (black-forest-labs/flux-schnell's cog: ASPECT_RATIOS in replicate/cog-flux predict.py). Note
 * 4:3 is 1152x896 although 5:4 (1088x896) is the nearer ratio: the table, not arithmetic, decides.
 */
const ASPECT_SIZES: Record<string, [number, number]> = {
  '1:1': [1024, 1024],
  '16:9': [1344, 768],
  '21:9': [1536, 640],
  '3:2': [1216, 832],
  '2:3': [832, 1216],
  '4:5': [896, 1088],
  '5:4': [1088, 896],
  '3:4': [896, 1152],
  '4:3': [1152, 896],
  '9:16': [768, 1344],
  '9:21': [640, 1536],
};
/** flux-schnell's `output_format` enum; its default is webp. */
const OUTPUT_FORMATS = { webp: 'webp', jpg: 'jpeg', png: 'png' } as const;
type ReplicateFormat = keyof typeof OUTPUT_FORMATS;
const MEGAPIXELS = ['1', '0.25'];
/** `Prefer: wait` without a number waits this long, and `wait=N` at most this (Replicate's cap). */
const MAX_WAIT_SECONDS = 60;
/** Ended predictions are forgotten after this, as Replicate removes API predictions' data after an hour. */
const KEEP_ENDED_MS = 3_600_000;
/** The NSFW failure flux-schnell's safety checker ends a prediction with (replicate/cog-flux). */
const NSFW_ERROR =
  'All generated images contained NSFW content. Try running it again with a different prompt.';

type Status = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';

/** What a prediction was asked for, checked. */
interface PredictionInput {
  prompt: string;
  aspect_ratio: string;
  num_outputs: number;
  output_format: ReplicateFormat;
  megapixels: string;
}

/** One prediction the simulator is running or has ended. */
interface SimPrediction {
  id: string;
  remoteModel: string;
  model: ModelSpec;
  input: PredictionInput;
  /** What the request's `input` was, echoed back as Replicate does. */
  rawInput: Record<string, unknown>;
  status: Status;
  createdAt: Date;
  startedAt?: Date;
  completedAt?: Date;
  output: string[] | null;
  error: string | null;
  /** Decided at creation, from the knobs then: a content-policy prompt ends `failed`. */
  flagged: boolean;
  /** Resolves when the prediction ends, whatever its end. */
  ended: Promise<void>;
  end: () => void;
}

/** An answer in Replicate's problem+json shape, with the headers it carries. */
class ReplicateProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }
}

/**
 * Replicate's predictions API for official models: POST /v1/models/{owner}/{name}/predictions
 * (honouring `Prefer: wait[=N]`), GET /v1/predictions/{id} and POST /v1/predictions/{id}/cancel.
 * A prediction runs `queuedMs` (plus the latency knobs) before it ends; only one that succeeds
 * is rendered and billed, once. Creation runs the shared pipeline's checks in the Images API's
 * order; status polls and cancels only check the key and are not counted as requests.
 */
export function registerReplicateRoutes(app: FastifyInstance, context: PipelineContext): void {
  const { state } = context;
  const predictions = new Map<string, SimPrediction>();
  const byRemoteId = (remoteId: string): ModelSpec | undefined =>
    context.registry
      .ids()
      .map((id) => context.registry.get(id)!)
      .find((model) => model.remote_ids?.replicate === remoteId);

  // A stopping simulator ends what is still running, unbilled, so no timer outlives it.
  app.addHook('onClose', async () => {
    for (const prediction of predictions.values()) {
      if (!hasEnded(prediction)) finish(prediction, 'canceled', null);
    }
  });

  app.post<{ Params: { owner: string; name: string }; Body: unknown }>(
    '/v1/models/:owner/:name/predictions',
    async (request, reply) => {
      state.requestStarted('predictions');
      let modelId = '';
      try {
        checkApiKey(state.knobs, request, 'Bearer');
        failIfAsked(state);
        checkQuota(state.knobs);
        const remoteModel = `${request.params.owner}/${request.params.name}`;
        const model = byRemoteId(remoteModel);
        if (!model || state.knobs.retiredModels.includes(model.id)) {
          throw new ReplicateProblem(404, 'Not found', `Model ${remoteModel} not found.`);
        }
        modelId = model.id;
        const rawInput = inputObject(request.body);
        const input = validateInput(model, rawInput);
        const dims = renderedSize(model, input);
        const flagged = violatesContentPolicy(state.knobs, model, input.prompt);
        const imageRequest = {
          model: model.id,
          prompt: input.prompt,
          n: input.num_outputs,
          images: [],
        };
        const seen = takeFromLimits(state, { model, size: `${dims[0]}x${dims[1]}` }, imageRequest);
        if (dropsConnection(state)) {
          request.raw.socket.destroy();
          return reply.hijack();
        }
        failAtRandom(state);

        const prediction = create({ remoteModel, model, input, rawInput, flagged });
        // A prediction that breaks while running ends `failed`, as a crashed model's does.
        run(prediction, dims).catch((error: unknown) => {
          if (!hasEnded(prediction)) finish(prediction, 'failed', String(error));
        });
        const waitSeconds = preferredWait(request.headers.prefer);
        if (waitSeconds !== undefined) await endedOrTimeout(prediction, waitSeconds * 1000);
        state.answered(201);
        return reply
          .code(201)
          .headers(rateLimitHeaders(seen, state.knobs.rateHeaders))
          .send(view(prediction));
      } catch (error) {
        return answerProblem(reply, error, modelId);
      } finally {
        state.requestFinished();
      }
    },
  );

  app.get<{ Params: { id: string } }>('/v1/predictions/:id', async (request, reply) => {
    try {
      return reply.send(view(knownPrediction(request)));
    } catch (error) {
      return answerProblem(reply, error, '', false);
    }
  });

  app.post<{ Params: { id: string } }>('/v1/predictions/:id/cancel', async (request, reply) => {
    try {
      const prediction = knownPrediction(request);
      // An ended prediction stays as it ended: cancelling it changes (and refunds) nothing.
      if (!hasEnded(prediction)) finish(prediction, 'canceled', null);
      return reply.send(view(prediction));
    } catch (error) {
      return answerProblem(reply, error, '', false);
    }
  });

  function knownPrediction(request: FastifyRequest<{ Params: { id: string } }>): SimPrediction {
    checkApiKey(state.knobs, request, 'Bearer');
    const prediction = predictions.get(request.params.id);
    if (!prediction) throw new ReplicateProblem(404, 'Not found', 'Not found.');
    return prediction;
  }

  function create(
    fields: Pick<SimPrediction, 'remoteModel' | 'model' | 'input' | 'rawInput' | 'flagged'>,
  ) {
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    const prediction: SimPrediction = {
      ...fields,
      id: predictionId(),
      status: 'starting',
      createdAt: new Date(),
      output: null,
      error: null,
      ended,
      end,
    };
    predictions.set(prediction.id, prediction);
    return prediction;
  }

  /**
   * Runs a prediction to its end: the latency knobs (its start-up), then `queuedMs` processing,
   * then it fails (content policy, `queuedFailRate`) or renders, serves and bills its images.
   * A cancel at any point before it succeeds leaves it unbilled.
   */
  async function run(prediction: SimPrediction, dims: [number, number]): Promise<void> {
    await simulateLatency(state);
    if (hasEnded(prediction)) return;
    prediction.status = 'processing';
    prediction.startedAt = new Date();
    await sleep(state.knobs.queuedMs);
    if (hasEnded(prediction)) return;
    if (prediction.flagged) return finish(prediction, 'failed', NSFW_ERROR);
    if (state.random() < state.knobs.queuedFailRate) {
      return finish(
        prediction,
        'failed',
        'Prediction failed: the model raised an error (simulated).',
      );
    }
    const { input, model } = prediction;
    const format = OUTPUT_FORMATS[input.output_format];
    const images: Buffer[] = [];
    for (let index = 0; index < input.num_outputs; index++) {
      images.push(
        await renderImage({
          seedText: `${model.id}|${input.prompt}|${input.aspect_ratio}#${index}`,
          label: `${input.prompt} #${index}`,
          width: dims[0],
          height: dims[1],
          format,
          transparent: false,
        }),
      );
    }
    // Cancelled while rendering: nothing is handed over, so nothing is billed.
    if (hasEnded(prediction)) return;
    const ttlMs = state.knobs.urlTtlMs;
    const urls = images.map((data) => {
      const id = context.files.add({ data, type: `image/${format}`, ttlMs });
      return `${context.origin()}/files/${id}.${input.output_format}`;
    });
    // `dropImages`: a faulty model answering fewer outputs than it was paid for.
    urls.splice(0, state.knobs.dropImages);
    finish(prediction, 'succeeded', null, urls);
    state.bill({ prompt: input.prompt, modelId: model.id, images: input.num_outputs });
  }

  function finish(
    prediction: SimPrediction,
    status: Status,
    error: string | null,
    output?: string[],
  ) {
    prediction.status = status;
    prediction.error = error;
    prediction.output = output ?? null;
    prediction.completedAt = new Date();
    prediction.end();
    setTimeout(() => predictions.delete(prediction.id), KEEP_ENDED_MS).unref();
  }

  /** The prediction object as Replicate returns it. */
  function view(prediction: SimPrediction): Record<string, unknown> {
    const base = `${context.origin()}/v1/predictions/${prediction.id}`;
    const { createdAt, startedAt, completedAt } = prediction;
    return {
      id: prediction.id,
      model: prediction.remoteModel,
      // Official models run their latest version; a stable stand-in id per model.
      version: createHash('sha256').update(prediction.remoteModel).digest('hex'),
      input: prediction.rawInput,
      logs: '',
      output: prediction.output,
      data_removed: false,
      error: prediction.error,
      status: prediction.status,
      source: 'api',
      created_at: createdAt.toISOString(),
      started_at: startedAt?.toISOString() ?? null,
      completed_at: completedAt?.toISOString() ?? null,
      metrics:
        prediction.status === 'succeeded'
          ? {
              predict_time: (completedAt!.getTime() - (startedAt ?? createdAt).getTime()) / 1000,
              image_count: prediction.input.num_outputs,
            }
          : {},
      urls: { get: base, cancel: `${base}/cancel`, web: `${context.origin()}/p/${prediction.id}` },
    };
  }

  /**
   * Answers an error as Replicate does (problem+json, `detail` the message). The shared
   * pipeline's OpenAI-shaped errors are translated: quota is Replicate's 402, a 429 keeps the
   * limit's headers and says when it resets, like Replicate's "Request was throttled".
   */
  function answerProblem(reply: FastifyReply, error: unknown, modelId: string, counted = true) {
    const problem = toProblem(error);
    if (counted) state.answered(problem.status);
    const headers =
      error instanceof SimulatedError && error.status === 429
        ? error.headers
        : rateLimitHeaders(state.limits.view(modelId), state.knobs.rateHeaders);
    return reply
      .code(problem.status)
      .type('application/problem+json')
      .headers(headers)
      .send({
        title: problem.title,
        detail: problem.message,
        status: problem.status,
        ...problem.extra,
      });
  }
}

function toProblem(error: unknown): ReplicateProblem {
  if (error instanceof ReplicateProblem) return error;
  if (!(error instanceof SimulatedError)) throw error;
  if (error.code === 'insufficient_quota') {
    return new ReplicateProblem(
      402,
      'Insufficient credit',
      'You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing to purchase credit. Once you purchase credit, please wait a few minutes before trying again.',
    );
  }
  if (error.status === 429) {
    // Replicate's throttle says roughly when it lifts; the limit's own message follows it.
    const waitMs = Number(
      error.headers['retry-after-ms'] ?? Number(error.headers['retry-after'] ?? NaN) * 1000,
    );
    const resets = Number.isFinite(waitMs)
      ? ` Your rate limit resets in ~${Math.max(1, Math.ceil(waitMs / 1000))}s.`
      : '';
    return new ReplicateProblem(
      429,
      'Request was throttled',
      `Request was throttled.${resets} (${error.message})`,
    );
  }
  if (error.status === 401) {
    return new ReplicateProblem(
      401,
      'Unauthenticated',
      'You did not pass a valid authentication token',
    );
  }
  if (error.status === 403) return new ReplicateProblem(403, 'Forbidden', error.message);
  return new ReplicateProblem(
    error.status,
    error.status >= 500 ? 'Internal server error' : 'Error',
    error.message,
  );
}

function inputObject(body: unknown): Record<string, unknown> {
  const input = (body as { input?: unknown } | null)?.input;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidInput([
      { field: 'input', description: 'input is required and must be an object' },
    ]);
  }
  return input as Record<string, unknown>;
}

/** flux-schnell's input schema (replicate.com/black-forest-labs/flux-schnell/api/schema). */
function validateInput(model: ModelSpec, input: Record<string, unknown>): PredictionInput {
  const problems: { field: string; description: string }[] = [];
  const {
    prompt,
    aspect_ratio = '1:1',
    num_outputs = 1,
    output_format = 'webp',
    megapixels = '1',
  } = input;
  if (typeof prompt !== 'string' || prompt.trim() === '') {
    problems.push({ field: 'prompt', description: 'prompt is required' });
  } else if (prompt.length > model.prompt_max_chars) {
    problems.push({
      field: 'prompt',
      description: `prompt is longer than ${model.prompt_max_chars} characters`,
    });
  }
  if (typeof aspect_ratio !== 'string' || !(aspect_ratio in ASPECT_SIZES)) {
    const choices = Object.keys(ASPECT_SIZES)
      .map((r) => `"${r}"`)
      .join(', ');
    problems.push({
      field: 'aspect_ratio',
      description: `aspect_ratio must be one of the following: ${choices}`,
    });
  }
  const most = model.images_per_call ?? model.n.max;
  if (
    !Number.isInteger(num_outputs) ||
    (num_outputs as number) < 1 ||
    (num_outputs as number) > most
  ) {
    problems.push({ field: 'num_outputs', description: `Must be between 1 and ${most}` });
  }
  if (typeof output_format !== 'string' || !(output_format in OUTPUT_FORMATS)) {
    problems.push({
      field: 'output_format',
      description: 'output_format must be one of the following: "webp", "jpg", "png"',
    });
  }
  if (typeof megapixels !== 'string' || !MEGAPIXELS.includes(megapixels)) {
    problems.push({
      field: 'megapixels',
      description: 'megapixels must be one of the following: "1", "0.25"',
    });
  }
  if (problems.length > 0) throw invalidInput(problems);
  return {
    prompt: prompt as string,
    aspect_ratio: aspect_ratio as string,
    num_outputs: num_outputs as number,
    output_format: output_format as ReplicateFormat,
    megapixels: megapixels as string,
  };
}

/** Replicate's 422 for a schema violation: one `- input.field: reason` line per problem. */
function invalidInput(problems: { field: string; description: string }[]): ReplicateProblem {
  return new ReplicateProblem(
    422,
    'Input validation failed',
    problems.map((p) => `- input.${p.field}: ${p.description}\n`).join(''),
    { invalid_fields: problems.map((p) => ({ type: 'invalid', ...p })) },
  );
}

/**
 * The size rendered for the ratio: the model's registry size of that ratio when it lists one
 * (flux-schnell's fixed sizes are the table's), else the table's; 0.25 megapixels halves each side.
 */
function renderedSize(model: ModelSpec, input: PredictionInput): [number, number] {
  const [width, height] = ASPECT_SIZES[input.aspect_ratio]!;
  let dims: [number, number] = [width, height];
  if ('fixed' in model.sizes) {
    const listed = model.sizes.fixed
      .map(parseSize)
      .find((d) => d && d[0] === width && d[1] === height);
    if (listed) dims = listed;
  }
  return input.megapixels === '0.25' ? [dims[0] / 2, dims[1] / 2] : dims;
}

/** The `contentPolicyPattern` knob, read at creation; the prediction then ends `failed` (NSFW). */
function violatesContentPolicy(knobs: SimulatorKnobs, model: ModelSpec, prompt: string): boolean {
  try {
    checkContentPolicy(knobs, model, { model: model.id, prompt, n: 1, images: [] });
    return false;
  } catch (error) {
    if (error instanceof SimulatedError) return true;
    throw error;
  }
}

/** `Prefer: wait` (60 s) or `wait=N` (1..60 s) among the header's preferences; undefined without. */
function preferredWait(header: string | string[] | undefined): number | undefined {
  const preferences = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(/[,;]/);
  for (const preference of preferences) {
    const match = /^\s*wait(?:\s*=\s*(\d+))?\s*$/i.exec(preference);
    if (!match) continue;
    const seconds = match[1] === undefined ? MAX_WAIT_SECONDS : Number(match[1]);
    return Math.min(MAX_WAIT_SECONDS, Math.max(1, seconds));
  }
  return undefined;
}

/** An id in the form of Replicate's: 26 lowercase letters and digits. */
function predictionId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(26)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

function hasEnded(prediction: SimPrediction): boolean {
  return ['succeeded', 'failed', 'canceled'].includes(prediction.status);
}

async function endedOrTimeout(prediction: SimPrediction, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    prediction.ended,
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/** A wait that does not keep a stopping process alive. */
function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
