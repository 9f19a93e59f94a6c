import { billedQuality, outputTokensPerImage, type PricedRequest } from './pricing.js';
import type { ModelSpec } from './registry-schema.js';

/**
 * The tokens a request will count against a tokens-per-minute limit, estimated before the
 * call as a provider does: the images' output tokens at the requested quality (the dearest
 * for "auto"), a token per four characters of prompt, and each input image at the most it
 * can cost. Models priced per image count no tokens. The estimate is settled from `usage`.
 */
export function estimatedTokens(model: ModelSpec, req: PricedRequest): number {
  const pricing = model.pricing;
  if (pricing.kind !== 'per_token') return 0;
  return (
    req.n * outputTokensPerImage(pricing, req.size, billedQuality(req.quality, 'max')) +
    Math.ceil(req.promptChars / 4) +
    req.inputImages * pricing.max_input_tokens_per_image
  );
}
