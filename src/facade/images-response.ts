import type { RenderSpec } from '../models/render-spec.js';
import type { ImagesResponse } from 'openai/resources/images.js';
import type { ItemRecord } from '../contracts/batch-records.js';
import type { ModelSpec } from '../models/registry-schema.js';
import type { ImageStorage } from '../storage/image-storage.js';
import { OpenAiError } from './openai-error.js';

/**
 * OpenAI's ImagesResponse, with `size` as any WIDTHxHEIGHT: gpt-image-2 renders sizes beyond
 * the three the SDK's type lists, and OpenAI reports the size it rendered.
 */
/** OpenAI's answer, with any size and the formats rendermill stores (avif too). */
export type FacadeImagesResponse = Omit<ImagesResponse, 'size' | 'output_format'> & {
  size?: string;
  output_format?: RenderSpec['output_format'];
};

/**
 * The answer to a request whose item succeeded (or came from the cache): its images as
 * presigned S3 URLs or base64, and — for gpt-image models, as OpenAI reports them — the size,
 * output format, and the quality and background when they were not left to `auto`. `usage` is
 * left out: rendermill records what an item cost (the `x-rendermill-cost-usd` header), not the
 * provider's token counts, and a cache hit used none.
 */
export async function imagesResponse(
  item: ItemRecord,
  model: ModelSpec | undefined,
  format: 'url' | 'b64_json',
  storage: ImageStorage,
  urlTtlSeconds: number,
): Promise<FacadeImagesResponse> {
  const images = [...item.images];
  const data = await Promise.all(
    images.map(async (image) => {
      if (format === 'url') return { url: await storage.presignedUrl(image.key, urlTtlSeconds) };
      const object = await storage.get(image.key);
      if (!object) {
        throw new OpenAiError(
          502,
          'server_error',
          `image ${image.key} is missing from the bucket`,
          null,
          'image_missing',
        );
      }
      return { b64_json: object.body.toString('base64') };
    }),
  );
  const response: FacadeImagesResponse = { created: Math.floor(Date.now() / 1000), data };
  if (model?.pricing.kind === 'per_token') {
    const { spec } = item;
    response.size = spec.size;
    response.output_format = spec.output_format ?? 'png';
    if (spec.quality === 'low' || spec.quality === 'medium' || spec.quality === 'high')
      response.quality = spec.quality;
    if (spec.background === 'transparent' || spec.background === 'opaque')
      response.background = spec.background;
  }
  return response;
}

/** Provider codes that refuse the content itself: the caller's 400, as OpenAI answers it. */
const CONTENT_CODES = new Set(['content_policy_violation', 'moderation_blocked']);

/**
 * An item that ended without images, as the OpenAI error the SDK understands:
 * - `budget_exceeded` → 429 `insufficient_quota`, naming the cap (the tenant's month, the
 *   day's, …), like OpenAI's billing_hard_limit_reached: a retry cannot help;
 * - a content refusal → 400 with the provider's code (`content_policy_violation` from DALL·E,
 *   `moderation_blocked` from gpt-image);
 * - an input that cannot be used (`invalid_input_image`) → 400 on `image`;
 * - `cancelled` (the batch was cancelled) → 409;
 * - any other failure → 502 with the item's reason. rendermill has already retried the
 *   provider call and tried its fallbacks, so none of these asks the SDK to retry.
 */
export function itemFailure(item: ItemRecord, batchId: string): OpenAiError {
  const reason = item.error?.message ?? `the render ended ${item.status}`;
  const code = item.error?.code ?? item.status;
  const options = { retryable: false, batchId };
  if (item.status === 'budget_exceeded') {
    return new OpenAiError(
      429,
      'insufficient_quota',
      `billing hard limit reached: ${reason}`,
      null,
      'insufficient_quota',
      options,
    );
  }
  if (item.status === 'cancelled') {
    return new OpenAiError(
      409,
      'invalid_request_error',
      `the render was cancelled: ${reason}`,
      null,
      'cancelled',
      options,
    );
  }
  if (CONTENT_CODES.has(code)) {
    const type =
      code === 'moderation_blocked' ? 'image_generation_user_error' : 'invalid_request_error';
    return new OpenAiError(400, type, reason, null, code, options);
  }
  if (code === 'invalid_input_image') {
    return new OpenAiError(400, 'invalid_request_error', reason, 'image', code, options);
  }
  return new OpenAiError(
    502,
    'server_error',
    `the image could not be rendered: ${reason} (batch ${batchId})`,
    null,
    code,
    options,
  );
}

/**
 * The 504 of a render that did not end in time: it goes on in its batch, whose id the caller
 * can look up (`GET /v1/batches/{id}`, then its manifest) instead of asking again.
 */
export function stillRendering(item: ItemRecord | undefined, batchId: string, waitedMs: number) {
  const state = item ? `${item.status}${item.error ? `: ${item.error.message}` : ''}` : 'queued';
  return new OpenAiError(
    504,
    'server_error',
    `the image is not ready after ${Math.round(waitedMs / 1000)} s (${state}); it is still being ` +
      `rendered in batch ${batchId}: GET /v1/batches/${batchId} and its /manifest for the result`,
    null,
    'timeout',
    { retryable: false, batchId },
  );
}
