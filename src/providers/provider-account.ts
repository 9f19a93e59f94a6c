import type { AccountGate } from '../limits/account-gate.js';
import type { RateLimiters } from '../limits/rate-limiter.js';
import type { ImageProvider } from './image-provider.js';

/**
 * One provider account as workers use it: what to call, how fast (each model's own tier
 * limit, shared by every worker), and whether it is paused. Workers hold a chain of them: the configured
 * provider first, then its fallbacks in order.
 */
export interface ProviderAccount {
  /** How logs and the manifest name it: `primary`, or a fallback's configured name. */
  name: string;
  provider: ImageProvider;
  limits: RateLimiters;
  gate: AccountGate;
  /** Render with this model instead of the item's (a fallback's own model). */
  model?: string | undefined;
}
