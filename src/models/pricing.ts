import type { ProviderUsage } from '../errors.js';
import type { ModelSpec, PerTokenPricing } from './registry-schema.js';
import type { RenderSpec } from './render-spec.js';

/**
 * Money is counted in integer micro-dollars (1 USD = 1,000,000) so that sums over
 * thousands of images are exact; USD appears only at the edges (API, manifest).
 */
export type Micros = number;

export const usdToMicros = (usd: number): Micros => Math.round(usd * 1_000_000);
export const microsToUsd = (micros: Micros): number => micros / 1_000_000;

/** What a price depends on. */
export interface PricedRequest {
  size: string;
  quality?: string | undefined;
  n: number;
  promptChars: number;
  /** Number of input images (edits). */
  inputImages: number;
}

/** What a render request's price depends on. */
export function pricedRequest(spec: RenderSpec): PricedRequest {
  return {
    size: spec.size,
    quality: spec.quality,
    n: spec.n,
    promptChars: spec.prompt?.length ?? 0,
    inputImages: (spec.images?.length ?? 0) + (spec.mask ? 1 : 0),
  };
}

const REFERENCE_AREA = 1024 * 1024;

/** Output tokens one image costs; sizes not in the table are priced by area against 1024x1024. */
export function outputTokensPerImage(
  pricing: PerTokenPricing,
  size: string,
  quality: string,
): number {
  const row = pricing.output_tokens[quality];
  if (!row) throw new Error(`no token prices for quality "${quality}"`);
  const listed = row[size];
  if (listed !== undefined) return listed;
  const reference = row['1024x1024'];
  if (reference === undefined) throw new Error(`no token price for size ${size} at ${quality}`);
  const [w, h] = size.split('x').map(Number) as [number, number];
  return Math.ceil((reference * w * h) / REFERENCE_AREA);
}

/**
 * The quality a provider bills when asked for "auto" or nothing. For the upper bound we
 * assume the dearest; OpenAI documents "auto" as choosing per prompt.
 */
export function billedQuality(quality: string | undefined, bound: 'max' | 'typical'): string {
  if (quality && quality !== 'auto') return quality;
  return bound === 'max' ? 'high' : 'medium';
}

function tokensToMicros(tokens: number, usdPerMillion: number): number {
  // USD per million tokens is numerically micro-dollars per token.
  return tokens * usdPerMillion;
}

/**
 * The most a request can cost: what a budget must hold before the call is made.
 * Text tokens are bounded by the prompt's character count (a token is at least one character).
 */
export function maxCostMicros(model: ModelSpec, req: PricedRequest): Micros {
  const pricing = model.pricing;
  if (pricing.kind === 'per_image') return req.n * perImageMicros(model, req);
  const rates = pricing.usd_per_million_tokens;
  const output = req.n * outputTokensPerImage(pricing, req.size, billedQuality(req.quality, 'max'));
  return Math.ceil(
    tokensToMicros(output, rates.image_output) +
      tokensToMicros(req.promptChars, rates.text_input) +
      tokensToMicros(req.inputImages * pricing.max_input_tokens_per_image, rates.image_input),
  );
}

/** How a route prices a model in its provider's Batch API (see batchPricing). */
export type BatchPricing = { flatImageMicros: Micros } | { factor: number };

/**
 * How a route prices `model` in its provider's Batch API: the route's own flat batch price per
 * image, else the registry's price times the model's batch `price_factor` — never from a flat
 * realtime price, which says nothing of the batch price. Undefined: the route cannot price the
 * model in batches, so it does not offer it there. The workers' candidates and the API's plans
 * both ask this.
 */
export function batchPricing(
  model: ModelSpec | undefined,
  route: { flatBatchImageMicros?: Micros | undefined; flatImageMicros?: Micros | undefined },
): BatchPricing | undefined {
  if (route.flatBatchImageMicros !== undefined) {
    return { flatImageMicros: route.flatBatchImageMicros };
  }
  const factor = model?.batch?.price_factor;
  if (factor === undefined || route.flatImageMicros !== undefined) return undefined;
  return { factor };
}

/**
 * The most tokens a request can weigh (input and output): what a provider's batch queue counts
 * it as. Models priced per image weigh none.
 */
export function maxTokens(model: ModelSpec, req: PricedRequest): number {
  const pricing = model.pricing;
  if (pricing.kind === 'per_image') return 0;
  return (
    req.n * outputTokensPerImage(pricing, req.size, billedQuality(req.quality, 'max')) +
    req.promptChars +
    req.inputImages * pricing.max_input_tokens_per_image
  );
}

/**
 * What a finished request cost. Per-token models are settled from the response's usage;
 * when a gateway omits usage we fall back to the registry's typical tokens per image.
 */
export function actualCostMicros(
  model: ModelSpec,
  req: PricedRequest,
  usage: ProviderUsage | undefined,
): Micros {
  const pricing = model.pricing;
  if (pricing.kind === 'per_image') return req.n * perImageMicros(model, req);
  const rates = pricing.usd_per_million_tokens;
  const output =
    usage?.output_tokens ??
    req.n * outputTokensPerImage(pricing, req.size, billedQuality(req.quality, 'typical'));
  const imageInput = usage?.input_tokens_details?.image_tokens ?? 0;
  const textInput =
    usage?.input_tokens_details?.text_tokens ??
    Math.max(0, (usage?.input_tokens ?? Math.ceil(req.promptChars / 4)) - imageInput);
  return Math.ceil(
    tokensToMicros(output, rates.image_output) +
      tokensToMicros(textInput, rates.text_input) +
      tokensToMicros(imageInput, rates.image_input),
  );
}

function perImageMicros(model: ModelSpec, req: PricedRequest): Micros {
  if (model.pricing.kind !== 'per_image') throw new Error('not a per-image model');
  const quality = req.quality ?? 'standard';
  const row = model.pricing.usd[quality];
  const usd = row?.[req.size] ?? row?.['*'];
  if (usd === undefined) {
    throw new Error(`${model.id} has no price for ${quality} ${req.size}`);
  }
  return usdToMicros(usd);
}
