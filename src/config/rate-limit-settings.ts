/**
 * What one provider account says about its rate limit: its OpenAI usage tier, which picks the
 * row of the model being rendered, and optional figures that replace that row's, each on its
 * own. config.ts builds these from RENDERMILL_TIER / _IMAGES_PER_MINUTE / _TOKENS_PER_MINUTE,
 * or from a fallback's `tier`, `images_per_minute`, `tokens_per_minute`; src/models/rate-limits.ts
 * (`modelRateLimit`) turns them into an account's limit for a model. Declared here, in the
 * foundation layer, so that the configuration need not import the models.
 */
export interface RateLimitSettings {
  tier: number;
  imagesPerMinute?: number | undefined;
  tokensPerMinute?: number | undefined;
  /**
   * Where the two overrides were written, for messages: unset, the RENDERMILL_* variables; a
   * fallback's (`fallback "gateway"`), its `images_per_minute` and `tokens_per_minute`.
   */
  overridesFrom?: string | undefined;
}

/**
 * The settings of an account written as JSON or YAML (a fallback, a route of the providers
 * file): its tier, or `defaultTier`, and the figures it gives, said to come from `overridesFrom`.
 */
export function accountRateLimit(
  account: {
    tier?: number | 'free' | undefined;
    images_per_minute?: number | undefined;
    tokens_per_minute?: number | undefined;
  },
  defaultTier: number,
  overridesFrom: string,
): RateLimitSettings {
  return {
    // The schema refuses the free tier (accountTier): what is left is a number.
    tier: account.tier === undefined ? defaultTier : Number(account.tier),
    imagesPerMinute: account.images_per_minute,
    tokensPerMinute: account.tokens_per_minute,
    overridesFrom,
  };
}
