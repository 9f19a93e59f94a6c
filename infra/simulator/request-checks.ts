import sharp, { type Metadata } from 'sharp';
import type { ModelSpec } from '../../src/models/registry-schema.js';
import { invalid } from './simulated-error.js';

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

export function parseSize(size: string): [number, number] | undefined {
  const match = /^(\d+)x(\d+)$/.exec(size);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

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
