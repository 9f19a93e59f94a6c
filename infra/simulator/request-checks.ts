import sharp, { type Metadata } from 'sharp';
import type { ModelRegistry } from '../../src/models/model-registry.js';
import type { ModelSpec, Operation } from '../../src/models/registry-schema.js';
import { SimulatedError, invalid } from './simulated-error.js';
import type { ImageEndpoint } from './simulator-state.js';

/** An image request as the simulator reads it from JSON or multipart. */
export interface ImageRequest {
  model: string;
  prompt?: string | undefined;
  n: number;
  size?: string | undefined;
  quality?: string | undefined;
  background?: string | undefined;
  output_format?: string | undefined;
  response_format?: string | undefined;
  images: Buffer[];
  mask?: Buffer | undefined;
}

/** `WIDTHxHEIGHT` as numbers, or undefined when it is not of that form. */
export function parseSize(size: string): [number, number] | undefined {
  const match = /^(\d+)x(\d+)$/.exec(size);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Whether the model takes this size: one of its fixed sizes, or within its rule for any size. */
export function sizeAllowed(model: ModelSpec, size: string): boolean {
  if ('fixed' in model.sizes) return model.sizes.fixed.includes(size);
  const dims = parseSize(size);
  if (!dims) return false;
  const rule = model.sizes.any;
  const [long, short] = dims[0] >= dims[1] ? dims : [dims[1], dims[0]];
  return (
    dims.every((d) => d > 0 && d % rule.multiple_of === 0) &&
    long <= rule.max_long_edge &&
    short <= rule.max_short_edge
  );
}

/** Edit and variation inputs, checked like OpenAI does (dall-e-2: square PNG < 4 MB, mask of the same size). */
export async function checkInputs(model: ModelSpec, body: ImageRequest) {
  const rules = model.edit_input;
  if (body.images.length === 0) throw invalid('image is required.', 'image');
  if (!rules) return;
  if (body.images.length > rules.max_images)
    throw invalid(`At most ${rules.max_images} images.`, 'image');
  let first: Metadata | undefined;
  for (const image of body.images) {
    const meta = await sharp(image)
      .metadata()
      .catch(() => undefined);
    if (!meta?.format || !(rules.formats as string[]).includes(meta.format)) {
      throw invalid(
        `Invalid input image - format must be in ${rules.formats.join(', ')}.`,
        'image',
      );
    }
    if (image.length >= rules.max_bytes)
      throw invalid('Invalid input image - image too large.', 'image');
    if (rules.square && meta.width !== meta.height) {
      throw invalid('Invalid input image - image must be square.', 'image');
    }
    first ??= meta;
  }
  if (body.mask) {
    const meta = await sharp(body.mask)
      .metadata()
      .catch(() => undefined);
    if (!meta || meta.width !== first?.width || meta.height !== first?.height) {
      throw invalid('Invalid mask - the mask and image must have the same dimensions.', 'mask');
    }
  }
}

/** What {@link validateImageRequest} needs besides the request. */
export interface ValidationInput {
  registry: ModelRegistry;
  /** The `retiredModels` knob: known models that answer as if they did not exist. */
  retiredModels: readonly string[];
  endpoint: ImageEndpoint;
  body: ImageRequest;
}

/** A request that passed validation: its model and size, resolved. */
export interface ValidRequest {
  model: ModelSpec;
  operation: Operation;
  /** The requested size, or OpenAI's default of 1024x1024. */
  size: string;
  dims: [number, number];
}

const OPERATION_OF: Record<ImageEndpoint, Operation> = {
  generations: 'generate',
  edits: 'edit',
  variations: 'variation',
  // The other APIs name their operation in the body; what they render is generated.
  responses: 'generate',
  predictions: 'generate',
  queue: 'generate',
};

/**
 * The model and request checks, in OpenAI's order: the model exists and serves the endpoint,
 * then size, n and prompt. Throws the first failure as OpenAI would answer it. Synchronous, so
 * a generation reaches the rate limit in the same tick it arrived; edits and variations then
 * need {@link checkInputs}.
 */
export function validateImageRequest(input: ValidationInput): ValidRequest {
  const { registry, retiredModels, endpoint, body } = input;
  const model = registry.get(body.model);
  if (!model || retiredModels.includes(body.model)) {
    throw new SimulatedError(
      404,
      'invalid_request_error',
      'model_not_found',
      `The model \`${body.model}\` does not exist or you do not have access to it.`,
      'model',
    );
  }
  const operation = OPERATION_OF[endpoint];
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
  return { model, operation, size, dims };
}
