import { createHash } from 'node:crypto';
import { outputTokensPerImage } from '../../src/models/pricing.js';
import type { ModelSpec } from '../../src/models/registry-schema.js';
import { renderImage } from './render-image.js';
import type { ImageRequest, ValidRequest } from './request-checks.js';
import type { ServedFiles } from './served-files.js';
import type { SimulatorState } from './simulator-state.js';

/** Input tokens the simulator reports per input image of an edit or variation. */
export const IMAGE_INPUT_TOKENS = 388;
/** Text tokens reported for a prompt: one per four characters, as OpenAI's rule of thumb. */
export const textTokens = (prompt: string) => Math.ceil(prompt.length / 4);

/** Where a 200 answer puts its images and what it bills. */
export interface AnswerContext {
  state: SimulatorState;
  files: ServedFiles;
  /** The simulator's own origin, which `url` answers point at. */
  origin: string;
}

/** A request that passed every check, about to be rendered. */
export interface AnsweredRequest extends ValidRequest {
  body: ImageRequest;
}

/** The tokens a request is billed, split as its `usage` reports them. */
export interface TokenUsage {
  text: number;
  image: number;
  output: number;
}

/**
 * The tokens a request for a model priced per token will be billed; undefined for models
 * priced per image. Known from the request alone, so the tokens limit can weigh it on arrival.
 */
export function tokenUsage(
  model: ModelSpec,
  body: ImageRequest,
  size: string,
): TokenUsage | undefined {
  if (model.pricing.kind !== 'per_token') return undefined;
  // OpenAI bills an unspecified or `auto` quality as medium.
  const quality = body.quality && body.quality !== 'auto' ? body.quality : 'medium';
  return {
    text: textTokens(body.prompt ?? ''),
    image: IMAGE_INPUT_TOKENS * (body.images.length + (body.mask ? 1 : 0)),
    output: body.n * outputTokensPerImage(model.pricing, size, quality),
  };
}

type ImageData = { url: string } | { b64_json: string };

/** The images of one answer, rendered one after the other, as `url`s or `b64_json`. */
async function renderData(context: AnswerContext, request: AnsweredRequest): Promise<ImageData[]> {
  const { body, model, size, dims } = request;
  const gptImage = model.pricing.kind === 'per_token';
  // gpt-image models choose their format; DALL·E always answers PNG, by default as a url.
  const format = gptImage
    ? ((body.output_format as 'png' | 'jpeg' | 'webp' | undefined) ?? 'png')
    : 'png';
  const asUrl = !gptImage && (body.response_format ?? 'url') === 'url';
  // The input image is part of the seed, so edits of different images differ.
  const inputDigest = createHash('sha256')
    .update(body.images[0] ?? '')
    .digest('hex');
  const data: ImageData[] = [];
  for (let index = 0; index < body.n; index++) {
    const label = body.prompt ?? `variation of ${inputDigest.slice(0, 8)}`;
    const bytes = await renderImage({
      seedText: `${body.model}|${body.prompt ?? ''}|${inputDigest}|${size}#${index}`,
      label: `${label} #${index}`,
      width: dims[0],
      height: dims[1],
      format,
      transparent: body.background === 'transparent',
      base: body.images[0],
    });
    if (asUrl) {
      const ttlMs = context.state.knobs.urlTtlMs;
      const id = context.files.add({ data: bytes, type: `image/${format}`, ttlMs });
      data.push({ url: `${context.origin}/files/${id}.${format}` });
    } else data.push({ b64_json: bytes.toString('base64') });
  }
  return data;
}

/**
 * Renders the images of a request that passed every check and bills them: the body of its
 * 200 answer, with `usage` for models billed per token. Everything asked for is billed, also
 * what the `dropImages` knob withholds, as a faulty gateway would.
 */
export async function answerWithImages(
  context: AnswerContext,
  request: AnsweredRequest,
): Promise<Record<string, unknown>> {
  const { state } = context;
  const { body, model, size } = request;
  const data = await renderData(context, request);
  data.splice(0, state.knobs.dropImages);
  const prompt = body.prompt ?? '';
  const response: Record<string, unknown> = { created: Math.floor(Date.now() / 1000), data };
  let tokens: { input: number; output: number } | undefined;
  const usage = tokenUsage(model, body, size);
  if (usage) {
    const { text, image, output } = usage;
    tokens = { input: text + image, output };
    response.usage = {
      input_tokens: text + image,
      output_tokens: output,
      total_tokens: text + image + output,
      input_tokens_details: { text_tokens: text, image_tokens: image },
    };
  }
  state.bill({ prompt, modelId: model.id, images: body.n, tokens });
  return response;
}
