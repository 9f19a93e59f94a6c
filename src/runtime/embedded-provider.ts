import { ConfigError, type RateLimitSettings } from '../config/config.js';
import type { ModelRegistry } from '../models/model-registry.js';
import { registryRateLimit } from '../models/rate-limits.js';

/** A provider started in this process because none was configured. */
export interface EmbeddedProvider {
  /** Base URL of its OpenAI-compatible API, e.g. `http://127.0.0.1:PORT/v1`. */
  url: string;
  stop(): Promise<void>;
}

export interface EmbeddedProviderOptions {
  /** Each model's limits, as the simulator's `modelLimits` knob takes them. */
  modelLimits: Record<string, { imagesPerMinute: number; tokensPerMinute: number }>;
  /** The length of the simulator's minute (its `minuteMs` knob). */
  minuteMs: number;
  latencyMs: number;
}

/** Every model's limits at an account's tier, for the simulator (models without a row are left out). */
export function simulatedModelLimits(
  registry: ModelRegistry,
  settings: RateLimitSettings,
): EmbeddedProviderOptions['modelLimits'] {
  const limits: EmbeddedProviderOptions['modelLimits'] = {};
  for (const id of registry.ids()) {
    try {
      const limit = registryRateLimit(registry, id, settings);
      limits[id] = {
        imagesPerMinute: limit.imagesPerMinute,
        tokensPerMinute: limit.tokensPerMinute ?? 0,
      };
    } catch {
      // No row for this tier: rendermill cannot render the model there either.
    }
  }
  return limits;
}

/** The part of the simulator's module this launcher uses. */
interface SimulatorModule {
  startSimulator(options: EmbeddedProviderOptions): Promise<EmbeddedProvider>;
}

/**
 * The provider simulator is test and demo infrastructure (infra/simulator), not part of
 * rendermill. It is loaded by path, only when a single-process command runs without a
 * provider, so no product module depends on it and an installation without it still runs
 * every process that is given a real provider.
 */
const SIMULATOR_MODULE = '../../infra/simulator/server.js';

/** Starts the provider simulator in this process (the embedded default of `render` and `start`). */
export async function startEmbeddedProvider(
  options: EmbeddedProviderOptions,
): Promise<EmbeddedProvider> {
  let simulator: SimulatorModule;
  try {
    simulator = (await import(SIMULATOR_MODULE)) as SimulatorModule;
  } catch (error) {
    // Only the simulator itself missing means "not installed"; a module missing inside it is a bug.
    const missing = error as NodeJS.ErrnoException;
    if (
      missing.code !== 'ERR_MODULE_NOT_FOUND' ||
      !missing.message.includes('infra/simulator/server')
    ) {
      throw error;
    }
    throw new ConfigError(
      'no provider is configured and the provider simulator is not installed here: ' +
        'set OPENAI_API_KEY (and OPENAI_BASE_URL for a gateway)',
    );
  }
  return simulator.startSimulator(options);
}
