import type { RedisConnection } from '../redis/redis-connection.js';
import { luaCommands, type LuaCommands } from '../redis/lua-scripts.js';
import { RM_PREFIX, webhookSecretKeys } from '../redis/redis-keys.js';
import { RendermillError } from '../errors.js';
import { generateWebhookSecret } from '../config/webhook-secret-format.js';

/** A tenant's secret is fixed by the operator (RENDERMILL_WEBHOOK_SECRETS): the API cannot rotate it. */
export class WebhookSecretFixedError extends RendermillError {
  override name = 'WebhookSecretFixedError';
  readonly code = 'webhook_secret_fixed';
  constructor(tenant: string) {
    super(
      `the webhook secret of tenant "${tenant}" is set by the operator (RENDERMILL_WEBHOOK_SECRETS) and cannot be rotated through the API`,
    );
  }
}

export interface WebhookSecretsOptions {
  /** Secrets the operator fixed, tenant → `whsec_…` (config RENDERMILL_WEBHOOK_SECRETS). */
  fixed?: Readonly<Record<string, string>> | undefined;
  /**
   * After a rotation, how long webhooks are still signed with the previous secret too (a second
   * signature in the same header), so receivers can switch without dropping events. Default 24 h.
   */
  previousValidMs?: number | undefined;
  /** Key prefix. Default `rm`. */
  prefix?: string | undefined;
}

/**
 * One webhook secret per tenant: fixed by the operator, or generated on first use and kept in
 * Redis (`rm:webhook-secret:<tenant>`), where every API process and worker finds the same one.
 */
/**
 * How long a rotated-out secret still signs beside the new one: a day for receivers to take the
 * new secret (docs/webhooks.md promises it). Fixed, not configured; tests shorten it.
 */
const ROTATION_OVERLAP_MS = 24 * 3600_000;

export class WebhookSecrets {
  private readonly fixed: Readonly<Record<string, string>>;
  private readonly previousValidMs: number;
  private readonly keys: ReturnType<typeof webhookSecretKeys>;
  private readonly scripts: LuaCommands;

  constructor(
    private readonly redis: RedisConnection,
    options: WebhookSecretsOptions = {},
  ) {
    this.fixed = options.fixed ?? {};
    this.previousValidMs = options.previousValidMs ?? ROTATION_OVERLAP_MS;
    this.keys = webhookSecretKeys(options.prefix ?? RM_PREFIX);
    this.scripts = luaCommands(redis);
  }

  private currentKey(tenant: string) {
    return this.keys.current(tenant);
  }

  /** In the current key's cluster slot: rotation writes both in one script (see redis-keys.ts). */
  private previousKey(tenant: string) {
    return this.keys.previous(tenant);
  }

  /** The tenant's secret, made (once, even if asked for from several processes at once) on first use. */
  async current(tenant: string): Promise<string> {
    const fixed = this.fixed[tenant];
    if (fixed) return fixed;
    const key = this.currentKey(tenant);
    const existing = await this.redis.get(key);
    if (existing) return existing;
    // NX: two processes making one at once agree on whichever was written first.
    await this.redis.set(key, generateWebhookSecret(), 'NX');
    const made = await this.redis.get(key);
    if (!made) throw new Error(`the webhook secret of tenant "${tenant}" vanished as it was made`);
    return made;
  }

  /** The secrets a webhook is signed with: the current one, then a rotated one still honoured. */
  async signingSecrets(tenant: string): Promise<string[]> {
    const current = await this.current(tenant);
    if (this.fixed[tenant]) return [current];
    const previous = await this.redis.get(this.previousKey(tenant));
    return previous && previous !== current ? [current, previous] : [current];
  }

  /** Replaces the tenant's secret with a new one; the old one still signs for `previousValidMs`. */
  async rotate(tenant: string): Promise<string> {
    if (this.fixed[tenant]) throw new WebhookSecretFixedError(tenant);
    const secret = generateWebhookSecret();
    await this.scripts.rmRotateWebhookSecret(
      this.currentKey(tenant),
      this.previousKey(tenant),
      secret,
      String(this.previousValidMs),
    );
    return secret;
  }
}
