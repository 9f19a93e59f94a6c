import type { Logger } from 'pino';
import { ConfigError, type ProviderConfig } from '../config/config.js';
import { RedisAccountGate } from '../limits/account-gate.js';
import { ModelRateLimiters } from '../limits/model-rate-limiters.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { OpenAIImageProvider } from '../providers/openai-provider.js';
import type { ProviderAccount } from '../providers/provider-account.js';
import type { RedisConnection } from '../redis/redis-connection.js';

export interface AccountDeps {
  redis: RedisConnection;
  registry: ModelRegistry;
  logger: Logger;
  requestTimeoutMs: number;
  /** The length of the minute rate limits are counted in (RENDERMILL_LIMIT_MINUTE_MS). */
  limitMinuteMs: number;
  /** Undoes what was started, in reverse order, when the process closes. */
  cleanups: (() => Promise<void> | void)[];
}

/**
 * Connects one provider account per configuration, in chain order: its OpenAI client, its
 * rate limiters (one per model, made when the model is first rendered) and its pause.
 */
export async function connectProviderAccounts(
  chain: readonly ProviderConfig[],
  deps: AccountDeps,
): Promise<ProviderAccount[]> {
  const accounts: ProviderAccount[] = [];
  for (const config of chain) {
    if (config.model && !deps.registry.get(config.model)) {
      throw new ConfigError(
        `RENDERMILL_FALLBACKS: fallback "${config.name}" names model "${config.model}", ` +
          `which the model registry does not know; known: ${deps.registry.ids().join(', ')}`,
      );
    }
    const provider = new OpenAIImageProvider({
      baseURL: config.baseURL,
      apiKey: config.apiKey,
      registry: deps.registry,
      timeoutMs: deps.requestTimeoutMs,
    });
    const limits = new ModelRateLimiters({
      accountId: provider.accountId,
      settings: config.rateLimit,
      registry: deps.registry,
      minuteMs: deps.limitMinuteMs,
      redis: deps.redis,
      logger: deps.logger.child({ provider: config.name }),
    });
    deps.cleanups.push(() => limits.stop());
    const gate = new RedisAccountGate(deps.redis, provider.accountId);
    accounts.push({ name: config.name, provider, limits, gate, model: config.model });
  }
  return accounts;
}
