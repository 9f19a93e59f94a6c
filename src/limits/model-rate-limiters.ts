import type { Logger } from 'pino';
import type { ModelRegistry } from '../models/model-registry.js';
import { registryRateLimit, type RateLimitSettings } from '../models/rate-limits.js';
import { duplicateConnection, type RedisConnection } from '../redis/redis-connection.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';
import type { RateLimiter } from './rate-limiter.js';

export interface ModelRateLimitersOptions {
  accountId: string;
  /** The account's usage tier and any overrides (RENDERMILL_TIER, RENDERMILL_IMAGES_PER_MINUTE …). */
  settings: RateLimitSettings;
  /** Figures of single models on this account (a providers file's `models:`), over `settings`. */
  modelOverrides?: Readonly<
    Record<string, Pick<RateLimitSettings, 'imagesPerMinute' | 'tokensPerMinute'>>
  >;
  registry: ModelRegistry;
  /** The length of the minute limits are counted in (RENDERMILL_LIMIT_MINUTE_MS). */
  minuteMs: number;
  /** A connection to copy: the limiters share one client that waits out Redis outages. */
  redis: RedisConnection;
  logger: Logger;
}

/**
 * The rate limiters of one provider account, one per model, made when a model is first
 * rendered: providers limit each model separately, and the registry's tier table gives each
 * model its own figures (gpt-image-2 at tier 1: 5 images and 100k tokens a minute).
 */
export class ModelRateLimiters {
  private readonly limiters = new Map<string, RedisRateLimiter>();
  private client: RedisConnection | undefined;

  constructor(private readonly options: ModelRateLimitersOptions) {}

  /** The limiter of `modelId`. Throws when the registry has no limits for it at this tier. */
  for(modelId: string): RateLimiter {
    const known = this.limiters.get(modelId);
    if (known) return known;
    const { registry, accountId, minuteMs, logger } = this.options;
    const limit = registryRateLimit(registry, modelId, this.settingsFor(modelId));
    // Commands wait out a Redis restart instead of failing: waiting calls resume afterwards.
    this.client ??= duplicateConnection(this.options.redis, { maxRetriesPerRequest: null });
    const limiter = new RedisRateLimiter({
      accountId,
      model: modelId,
      limit,
      minuteMs,
      redis: this.client,
      logger,
    });
    this.limiters.set(modelId, limiter);
    return limiter;
  }

  /** The account's settings with the model's own figures, where the route gives them. */
  private settingsFor(modelId: string): RateLimitSettings {
    const { settings, modelOverrides } = this.options;
    const own = modelOverrides?.[modelId];
    return {
      ...settings,
      imagesPerMinute: own?.imagesPerMinute ?? settings.imagesPerMinute,
      tokensPerMinute: own?.tokensPerMinute ?? settings.tokensPerMinute,
    };
  }

  /** The models this process has rendered so far, with their limiters (for metrics). */
  active(): { model: string; limiter: RedisRateLimiter }[] {
    return [...this.limiters].map(([model, limiter]) => ({ model, limiter }));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.limiters.values()].map((limiter) => limiter.stop()));
    this.limiters.clear();
    this.client?.disconnect();
    this.client = undefined;
  }
}
