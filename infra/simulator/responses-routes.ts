import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { answerWithImages, IMAGE_INPUT_TOKENS, textTokens } from './image-answer.js';
import {
  checkApiKey,
  checkContentPolicy,
  checkQuota,
  dropsConnection,
  failAtRandom,
  failIfAsked,
  simulateLatency,
  sendOpenAIError,
  takeFromLimits,
  type PipelineContext,
} from './image-request-pipeline.js';
import { rateLimitHeaders } from './rate-headers.js';
import { checkInputs, validateImageRequest, type ImageRequest } from './request-checks.js';
import { invalid, SimulatedError } from './simulated-error.js';

/** The image model the tool uses when the request names none (the SDK's documented default). */
export const DEFAULT_IMAGE_TOOL_MODEL = 'gpt-image-1';

type Json = Record<string, unknown>;

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A Responses request for one image: the tool's options as an Images API request, and its parts. */
interface ToolCall {
  /** The mainline model that calls the tool (`gpt-5`, `gpt-4.1` …), echoed in the answer. */
  mainline: string;
  body: ImageRequest;
  /** What the tool was asked for, echoed on the call item as the real API does. */
  options: { quality: string; background: string; output_format: string };
}

/** `data:image/…;base64,…` as bytes; a URL of any other kind cannot be fetched here. */
function dataUrlBytes(url: string, param: string): Buffer {
  const match = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url);
  if (!match) throw invalid('Only base64 data URLs are supported by the simulator.', param);
  return Buffer.from(match[1]!, 'base64');
}

/** The prompt (every input_text, in order) and the input images of `input`. */
function readInput(input: unknown): { prompt: string; images: Buffer[] } {
  if (typeof input === 'string') return { prompt: input, images: [] };
  if (!Array.isArray(input)) throw invalid('input must be a string or a list of items.', 'input');
  const texts: string[] = [];
  const images: Buffer[] = [];
  for (const [index, item] of input.entries()) {
    if (!isObject(item)) continue;
    const content = item.content;
    if (typeof content === 'string') texts.push(content);
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      if (!isObject(part)) continue;
      if (part.type === 'input_text' && typeof part.text === 'string') texts.push(part.text);
      if (part.type === 'input_image') {
        const url = text(part.image_url);
        if (!url) throw invalid('input_image needs an image_url.', `input[${index}].content`);
        images.push(dataUrlBytes(url, `input[${index}].content`));
      }
    }
  }
  return { prompt: texts.join('\n'), images };
}

/**
 * Reads a POST /v1/responses body: one `image_generation` tool, called for sure (forced by
 * `tool_choice`, or `auto`/`required`, which the simulated model always answers with the
 * tool). Wrong types count as absent, as the image checks then say.
 */
function readToolCall(raw: unknown): ToolCall {
  const body = isObject(raw) ? raw : {};
  const mainline = text(body.model);
  if (!mainline) throw invalid('Missing required parameter: model.', 'model');
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  const imageTools = tools.filter((tool) => tool.type === 'image_generation');
  if (imageTools.length !== 1) {
    throw invalid('The simulator needs exactly one image_generation tool.', 'tools');
  }
  const choice = body.tool_choice;
  const calls =
    choice === undefined ||
    choice === 'auto' ||
    choice === 'required' ||
    (isObject(choice) && choice.type === 'image_generation');
  if (!calls) {
    throw invalid(
      'The simulator answers only requests that call image_generation (tool_choice).',
      'tool_choice',
    );
  }
  const tool = imageTools[0]!;
  const { prompt, images } = readInput(body.input);
  const mask = isObject(tool.input_image_mask) ? text(tool.input_image_mask.image_url) : undefined;
  const size = text(tool.size);
  const quality = text(tool.quality);
  const background = text(tool.background);
  const outputFormat = text(tool.output_format);
  return {
    mainline,
    body: {
      model: text(tool.model) ?? DEFAULT_IMAGE_TOOL_MODEL,
      prompt,
      n: 1,
      // `auto` lets the model choose; the simulator chooses the Images API's default.
      size: size === 'auto' ? undefined : size,
      quality,
      background,
      output_format: outputFormat,
      images,
      mask: mask ? dataUrlBytes(mask, 'tools[0].input_image_mask') : undefined,
    },
    options: {
      quality: quality ?? 'auto',
      background: background ?? 'auto',
      output_format: outputFormat ?? 'png',
    },
  };
}

/** The tool's options the model must take: a GPT Image model, its qualities and formats. */
function checkToolOptions(call: ToolCall, model: ReturnType<typeof validateImageRequest>['model']) {
  const { body } = call;
  if (model.pricing.kind !== 'per_token') {
    throw invalid(`${model.id} is not a GPT Image model.`, 'tools[0].model');
  }
  if (body.quality && !(model.qualities ?? []).includes(body.quality)) {
    throw invalid(`Invalid quality '${body.quality}' for ${model.id}.`, 'tools[0].quality');
  }
  const formats: readonly string[] = model.output_formats ?? ['png'];
  if (body.output_format && !formats.includes(body.output_format)) {
    throw invalid(`Invalid output_format '${body.output_format}'.`, 'tools[0].output_format');
  }
  if (body.background && !(model.backgrounds ?? []).includes(body.background)) {
    throw invalid(`Invalid background '${body.background}'.`, 'tools[0].background');
  }
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

/**
 * The Response object of a call that rendered: the call item with the image, the mainline
 * model's own usage (it read the prompt and wrote the revised one) and, under
 * `tool_usage.image_gen`, the image model's, which is what the image costs.
 */
function responseObject(
  call: ToolCall,
  size: string,
  images: { b64_json?: string }[],
  imageUsage: Json | undefined,
): Json {
  const revisedPrompt = `An image of ${call.body.prompt ?? ''}`;
  const mainlineInput =
    textTokens(call.body.prompt ?? '') + IMAGE_INPUT_TOKENS * call.body.images.length;
  const mainlineOutput = textTokens(revisedPrompt);
  // A withheld image (the dropImages knob) leaves no call item, only the model's message.
  const calls = images
    .filter((image) => image.b64_json)
    .map((image) => ({
      type: 'image_generation_call',
      id: id('ig'),
      status: 'completed',
      action: call.body.images.length > 0 ? 'edit' : 'generate',
      result: image.b64_json,
      revised_prompt: revisedPrompt,
      size,
      ...call.options,
    }));
  return {
    id: id('resp'),
    object: 'response',
    created_at: Math.floor(Date.now() / 1000),
    status: 'completed',
    error: null,
    incomplete_details: null,
    model: call.mainline,
    output: [
      ...calls,
      {
        type: 'message',
        id: id('msg'),
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: '', annotations: [] }],
      },
    ],
    tool_choice: { type: 'image_generation' },
    usage: {
      input_tokens: mainlineInput,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: mainlineOutput,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: mainlineInput + mainlineOutput,
    },
    ...(imageUsage ? { tool_usage: { image_gen: imageUsage } } : {}),
  };
}

/** The Images API's usage of a rendered request, in the shape of `tool_usage.image_gen`. */
function imageGenUsage(usage: unknown): Json | undefined {
  if (!isObject(usage)) return undefined;
  const output = Number(usage.output_tokens);
  return {
    ...usage,
    output_tokens_details: { image_tokens: output, text_tokens: 0 },
  };
}

async function handleResponsesRequest(
  context: PipelineContext,
  request: FastifyRequest,
  reply: FastifyReply,
) {
  const { state } = context;
  state.requestStarted('responses');
  let imageModel = '';
  try {
    checkApiKey(state.knobs, request);
    failIfAsked(state);
    checkQuota(state.knobs);
    const call = readToolCall(request.body);
    imageModel = call.body.model;
    const valid = validateImageRequest({
      registry: context.registry,
      retiredModels: state.knobs.retiredModels,
      endpoint: 'responses',
      body: call.body,
    });
    checkToolOptions(call, valid.model);
    const operation = call.body.images.length > 0 ? 'edit' : 'generate';
    if (call.body.mask && operation !== 'edit') {
      throw invalid('input_image_mask needs an input image.', 'tools[0].input_image_mask');
    }
    if (operation === 'edit') {
      if (!valid.model.operations.includes('edit')) {
        throw invalid(`${valid.model.id} does not edit images.`, 'tools[0].model');
      }
      await checkInputs(valid.model, call.body);
    }
    // The tool's model is a GPT Image model, so a refusal is its `moderation_blocked` 400.
    checkContentPolicy(state.knobs, valid.model, call.body);
    const seen = takeFromLimits(state, valid, call.body);
    if (dropsConnection(state)) {
      request.raw.socket.destroy();
      return reply.hijack();
    }
    failAtRandom(state);
    await simulateLatency(state);
    const answerContext = { state, files: context.files, origin: context.origin() };
    // Renders and bills the one image exactly as /v1/images would, then reshapes the answer.
    const answer = await answerWithImages(answerContext, {
      ...valid,
      operation,
      body: call.body,
    });
    const images = (answer.data as { b64_json?: string }[] | undefined) ?? [];
    state.answered(200);
    return reply
      .headers(rateLimitHeaders(seen, state.knobs.rateHeaders))
      .send(responseObject(call, valid.size, images, imageGenUsage(answer.usage)));
  } catch (error) {
    if (!(error instanceof SimulatedError)) throw error;
    state.answered(error.status);
    return sendOpenAIError(reply, error, state, imageModel);
  } finally {
    state.requestFinished();
  }
}

/** OpenAI's Responses API with the image_generation tool (POST /v1/responses). */
export function registerResponsesRoutes(app: FastifyInstance, context: PipelineContext): void {
  app.post('/v1/responses', async (request, reply) =>
    handleResponsesRequest(context, request, reply),
  );
}
