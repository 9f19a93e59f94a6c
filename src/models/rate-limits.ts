import type { RateLimitSettings } from '../config/rate-limit-settings.js';
import type { ModelRegistry } from './model-registry.js';
import type { ModelSpec, UsageTierKey } from './registry-schema.js';

export type { RateLimitSettings };

/** One account's limit for one model. */
export interface ModelRateLimit {
  imagesPerMinute: number;
  /** undefined: the model is not limited by tokens (DALL·E) and no override gives a figure. */
  tokensPerMinute?: number | undefined;
  /** e.g. "gpt-image-2 at usage tier 1" or "RENDERMILL_IMAGES_PER_MINUTE" */
  source: string;
}

/** Raised when a model has no rate limits for an account's usage tier. */
export class RateLimitError extends Error {
  override name = 'RateLimitError';
}

/**
 * The limit an account with `settings` has for `model`: the model's row for the account's
 * usage tier, each figure replaced by the account's own override when it gives one. Throws
 * RateLimitError when the limit needs the tier's row and the model has none for that tier.
 */
export function modelRateLimit(model: ModelSpec, settings: RateLimitSettings): ModelRateLimit {
  const { tier, imagesPerMinute, tokensPerMinute } = settings;
  const tableName = `${model.id} at usage tier ${tier}`;
  const row = model.rate_limits.tiers[String(tier) as UsageTierKey];
  const images = imagesPerMinute ?? row?.images_per_minute;
  // Both figures overridden: the table is not needed, so a missing row does not matter.
  if (images === undefined || (!row && tokensPerMinute === undefined)) {
    const tiers = Object.keys(model.rate_limits.tiers).join(', ');
    throw new RateLimitError(
      `model ${model.id} has no rate limits for usage tier ${tier} (the registry has tiers ${tiers}): ` +
        `add the row in RENDERMILL_MODELS_FILE's rate_limits, or give the account's images and tokens per minute`,
    );
  }
  const tokens = tokensPerMinute ?? row?.tokens_per_minute;
  const names = overrideNames(settings.overridesFrom);
  const overrides = [
    imagesPerMinute !== undefined ? names.images : undefined,
    tokensPerMinute !== undefined ? names.tokens : undefined,
  ].filter((name): name is string => name !== undefined);
  // Whether a figure of the result came from the model's table.
  const tableUsed =
    imagesPerMinute === undefined || (tokensPerMinute === undefined && tokens !== undefined);
  let source: string;
  if (overrides.length === 0) source = tableName;
  else if (!tableUsed) source = overrides.join(' and ');
  else source = `${overrides.join(' and ')}, otherwise ${tableName}`;
  return { imagesPerMinute: images, tokensPerMinute: tokens, source };
}

/**
 * The limit of the registry's model `modelId` for an account with `settings`. Throws
 * RateLimitError when the registry does not know the model or has no row for the tier.
 */
export function registryRateLimit(
  registry: ModelRegistry,
  modelId: string,
  settings: RateLimitSettings,
): ModelRateLimit {
  const model = registry.get(modelId);
  if (!model) throw new RateLimitError(`no rate limits for unknown model "${modelId}"`);
  return modelRateLimit(model, settings);
}

function overrideNames(from: string | undefined): { images: string; tokens: string } {
  if (from === undefined) {
    return { images: 'RENDERMILL_IMAGES_PER_MINUTE', tokens: 'RENDERMILL_TOKENS_PER_MINUTE' };
  }
  return { images: `${from} images_per_minute`, tokens: `${from} tokens_per_minute` };
}

/** "5 images/min and 100,000 tokens/min (gpt-image-2 at usage tier 1)", for logs and the CLI. */
export function describeRateLimit(limit: ModelRateLimit): string {
  const tokens =
    limit.tokensPerMinute === undefined
      ? ''
      : ` and ${limit.tokensPerMinute.toLocaleString('en-US')} tokens/min`;
  return `${limit.imagesPerMinute.toLocaleString('en-US')} images/min${tokens} (${limit.source})`;
}
