import { z } from 'zod';
import { apiKeyDigest, type ApiKeyDigest } from '../api/api-key-digest.js';
import { webhookSecretProblem } from '../webhooks/secret-format.js';
import {
  hostileInputConfig,
  hostileInputEnv,
  type HostileInputConfig,
} from './hostile-input-config.js';

/** Images per minute allowed by each OpenAI usage tier (the free tier cannot use the Images API). */
export const TIER_IMAGES_PER_MINUTE = { 1: 500, 2: 2_500, 3: 5_000, 4: 7_500, 5: 10_000 } as const;

export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** Raised at start-up when the environment does not describe a runnable configuration. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const emptyAsUndefined = (value: unknown) => (value === '' ? undefined : value);
const optionalString = z.preprocess(emptyAsUndefined, z.string().optional());
const optionalUrl = z.preprocess(emptyAsUndefined, z.url().optional());
const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const FREE_TIER_MESSAGE =
  'the free tier cannot use the Images API; set your account’s usage tier, 1–5';

/** One fallback provider account, as written in RENDERMILL_FALLBACKS. */
const fallbackEntry = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
    base_url: z.url(),
    /** The variable holding its key, so that keys stay out of the JSON. */
    api_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name'),
    tier: z
      .union([z.literal('free'), z.number().int().min(0).max(5)])
      .refine((t) => t !== 'free' && t !== 0, { message: FREE_TIER_MESSAGE })
      .optional(),
    images_per_minute: z.number().int().positive().max(1_000_000).optional(),
    /** Render with this model instead of the item's (e.g. another gateway's name for it). */
    model: z.string().min(1).optional(),
  })
  .strict()
  .refine((f) => f.tier === undefined || f.images_per_minute === undefined, {
    message: 'give tier or images_per_minute, not both',
  });

/**
 * A variable holding JSON checked by `schema`. Each problem is reported at its place in the
 * JSON, or, with `hint`, as one message that shows the expected shape.
 */
function jsonVariable<T extends z.ZodType>(schema: T, hint?: string) {
  return z.string().transform((raw, ctx): z.infer<T> => {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: jsonSyntaxProblem(error as Error) });
      return z.NEVER;
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      if (hint) ctx.addIssue({ code: 'custom', message: hint });
      else {
        for (const issue of parsed.error.issues) {
          ctx.addIssue({ code: 'custom', message: `[${issue.path.join('.')}]: ${issue.message}` });
        }
      }
      return z.NEVER;
    }
    return parsed.data;
  });
}

/**
 * Where the JSON of a variable is broken, without the excerpt of it that JSON.parse's message
 * quotes: a variable may hold secrets (RENDERMILL_WEBHOOK_SECRETS), and start-up errors are logged.
 */
function jsonSyntaxProblem(error: Error): string {
  const at = /at position (\d+)/.exec(error.message);
  return `not JSON${at ? ` (at character ${at[1]})` : ''}: its content is not repeated here, as it may hold secrets`;
}

const fallbackList = jsonVariable(z.array(fallbackEntry));

/**
 * `tenant=key` pairs. A key is given as its SHA-256 (`tenant=sha256:<64 hex>`, what
 * `rendermill keys new` prints) so the configuration holds no usable secret, or in plain text
 * (16+ characters; handy for development), which is hashed as soon as it is read.
 */
const apiKeys = z.string().transform((raw, ctx) => {
  const keys: ApiKeyDigest[] = [];
  const tenantOfDigest = new Map<string, string>();
  for (const [index, pair] of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
    .entries()) {
    const at = pair.indexOf('=');
    const tenant = pair.slice(0, at).trim();
    const key = pair.slice(at + 1).trim();
    if (at <= 0 || !key || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      // Never the pair itself: without its `=`, all of it may be a key.
      ctx.addIssue({
        code: 'custom',
        message: `expected tenant=key pairs separated by commas (tenant: letters, digits, _ . -); pair ${index + 1} is not one`,
      });
      return z.NEVER;
    }
    const hashed = /^sha256:([0-9a-f]{64})$/i.exec(key);
    if (key.startsWith('sha256:') && !hashed) {
      ctx.addIssue({
        code: 'custom',
        message: `the key of tenant "${tenant}" must be sha256: followed by 64 hex digits`,
      });
      return z.NEVER;
    }
    if (!hashed && key.length < 16) {
      ctx.addIssue({
        code: 'custom',
        message: `the key of tenant "${tenant}" is shorter than 16 characters`,
      });
      return z.NEVER;
    }
    const sha256 = hashed ? hashed[1]!.toLowerCase() : apiKeyDigest(key);
    const holder = tenantOfDigest.get(sha256);
    if (holder !== undefined && holder !== tenant) {
      // One key would authenticate as whichever tenant came last: refuse it, naming the
      // tenants (never the key).
      ctx.addIssue({
        code: 'custom',
        message: `tenants "${holder}" and "${tenant}" are given the same key: each tenant needs its own`,
      });
      return z.NEVER;
    }
    tenantOfDigest.set(sha256, tenant);
    keys.push({ tenant, sha256 });
  }
  return keys;
});

/** `acme,ops`: tenants that may open the operators' pages (Bull Board), which show every tenant's jobs. */
const adminTenants = z.string().transform((raw, ctx) => {
  const tenants = raw
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const tenant of tenants) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected tenant names separated by commas (letters, digits, _ . -), got "${tenant.slice(0, 40)}"`,
      });
      return z.NEVER;
    }
  }
  return tenants;
});

/** A positive amount of US dollars, at most a million. */
const usdAmount = z.coerce.number().positive().max(1_000_000);

/** `{"acme": 50, "globex": 200}`: monthly caps of named tenants, over the default one. */
const tenantBudgets = jsonVariable(
  z.record(z.string().min(1), z.number().positive().max(1_000_000)),
  'expected a JSON object of tenant → monthly budget in USD, e.g. {"acme": 50}',
);

/** `{"acme": "whsec_…"}`: webhook secrets the operator fixes, by tenant. */
const webhookSecrets = jsonVariable(
  z.record(z.string().min(1), z.string()).superRefine((secrets, ctx) => {
    for (const [tenant, secret] of Object.entries(secrets)) {
      const problem = webhookSecretProblem(secret);
      if (problem) ctx.addIssue({ code: 'custom', path: [tenant], message: problem });
    }
  }),
);

/**
 * `host:port,host:port`: seed nodes of a Redis Cluster (any one is enough; the client finds the
 * rest). A seed may be written as a URL, `redis://[user:password@]host:port` (`rediss://` for
 * TLS): credentials and TLS then apply to every node of the cluster.
 */
const clusterNodes = z.string().transform((raw, ctx): RedisClusterConfig => {
  const cluster: RedisClusterConfig = { nodes: [], tls: false };
  const seeds = raw.split(',').map((seed) => seed.trim());
  for (const seed of seeds.filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(seed.includes('://') ? seed : `redis://${seed}`);
    } catch {
      url = new URL('invalid://');
    }
    if (!['redis:', 'rediss:'].includes(url.protocol) || !url.hostname || !url.port) {
      ctx.addIssue({
        code: 'custom',
        // A seed's password is not repeated.
        message: `expected host:port seeds separated by commas, got "${seed.replace(/\/\/[^/]*@/, '//…@').slice(0, 60)}"`,
      });
      return z.NEVER;
    }
    cluster.nodes.push({ host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) });
    if (url.protocol === 'rediss:') cluster.tls = true;
    if (url.username) cluster.username ??= decodeURIComponent(url.username);
    if (url.password) cluster.password ??= decodeURIComponent(url.password);
  }
  if (cluster.nodes.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'expected at least one host:port seed' });
    return z.NEVER;
  }
  return cluster;
});

/** The environment rendermill reads — the public contract documented in README. */
export const envSchema = z
  .looseObject({
    REDIS_URL: optionalUrl,
    REDIS_CLUSTER_NODES: z.preprocess(emptyAsUndefined, clusterNodes.optional()),
    S3_BUCKET: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
        .default('rendermill'),
    ),
    AWS_ENDPOINT_URL_S3: optionalUrl,
    AWS_REGION: z.preprocess(emptyAsUndefined, z.string().default('us-east-1')),
    AWS_ACCESS_KEY_ID: optionalString,
    AWS_SECRET_ACCESS_KEY: optionalString,
    S3_FORCE_PATH_STYLE: z.preprocess(emptyAsUndefined, booleanString.optional()),
    OPENAI_API_KEY: optionalString,
    OPENAI_BASE_URL: z.preprocess(emptyAsUndefined, z.url().default(OPENAI_BASE_URL)),
    RENDERMILL_TIER: z.preprocess(
      emptyAsUndefined,
      z
        .enum(['free', '0', '1', '2', '3', '4', '5'], { message: 'must be a usage tier, 1–5' })
        .refine((v) => v !== 'free' && v !== '0', { message: FREE_TIER_MESSAGE })
        .transform(Number)
        .optional(),
    ),
    RENDERMILL_IMAGES_PER_MINUTE: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().positive().max(1_000_000).optional(),
    ),
    RENDERMILL_FALLBACKS: z.preprocess(emptyAsUndefined, fallbackList.optional()),
    RENDERMILL_RETRIES: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(0).max(50).default(6),
    ),
    RENDERMILL_RETRY_BASE_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1).default(500),
    ),
    RENDERMILL_RETRY_MAX_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1).default(60_000),
    ),
    RENDERMILL_ACCOUNT_RECHECK_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1000).default(60_000),
    ),
    RENDERMILL_API_KEYS: z.preprocess(emptyAsUndefined, apiKeys.optional()),
    RENDERMILL_ADMIN_TENANTS: z.preprocess(emptyAsUndefined, adminTenants.optional()),
    RENDERMILL_CACHE_SCOPE: z.preprocess(
      emptyAsUndefined,
      z.enum(['tenant', 'global'], { message: 'must be tenant or global' }).default('tenant'),
    ),
    RENDERMILL_TENANT_MONTHLY_BUDGET_USD: z.preprocess(emptyAsUndefined, usdAmount.optional()),
    RENDERMILL_TENANT_BUDGETS_USD: z.preprocess(emptyAsUndefined, tenantBudgets.optional()),
    RENDERMILL_DAILY_BUDGET_USD: z.preprocess(emptyAsUndefined, usdAmount.optional()),
    RENDERMILL_MANIFEST_CHECKPOINT_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1000).default(30_000),
    ),
    PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65535).default(8080)),
    RENDERMILL_METRICS_PORT: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(0).max(65535).default(9464),
    ),
    RENDERMILL_METRICS_TOKEN: z.preprocess(
      emptyAsUndefined,
      z.string().min(16, 'must be at least 16 characters').optional(),
    ),
    RENDERMILL_URL_TTL_SECONDS: z.preprocess(
      emptyAsUndefined,
      // SigV4 presigned URLs live at most 7 days.
      z.coerce
        .number()
        .int()
        .min(60)
        .max(7 * 24 * 3600)
        .default(3600),
    ),
    RENDERMILL_MAX_JSON_BODY_MB: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().positive().max(1024).default(32),
    ),
    RENDERMILL_MAX_CATALOG_MB: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().positive().max(65_536).default(512),
    ),
    RENDERMILL_DATA_DIR: z.preprocess(emptyAsUndefined, z.string().default('.rendermill')),
    RENDERMILL_MODELS_FILE: optionalString,
    RENDERMILL_DEFAULT_MODEL: z.preprocess(emptyAsUndefined, z.string().default('gpt-image-2')),
    RENDERMILL_CONCURRENCY: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1).max(256).default(8),
    ),
    RENDERMILL_JOB_LOCK_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1000).max(600_000).default(30_000),
    ),
    RENDERMILL_WEBHOOK_SECRETS: z.preprocess(emptyAsUndefined, webhookSecrets.optional()),
    RENDERMILL_ALLOW_PRIVATE_URLS: z.preprocess(emptyAsUndefined, booleanString.optional()),
    /** Deprecated: the former name of RENDERMILL_ALLOW_PRIVATE_URLS, read when that one is unset. */
    RENDERMILL_WEBHOOK_ALLOW_PRIVATE: z.preprocess(emptyAsUndefined, booleanString.optional()),
    RENDERMILL_WEBHOOK_RETRY_BASE_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1).max(3_600_000).default(30_000),
    ),
    RENDERMILL_REQUEST_TIMEOUT_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1000).default(120_000),
    ),
    RENDERMILL_SHUTDOWN_GRACE_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(0).max(600_000).default(10_000),
    ),
    LOG_LEVEL: z.preprocess(
      emptyAsUndefined,
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ),
    // ── Hostile-input quotas and limits (hostile-input-config.ts, docs/hostile-input.md) ──
    ...hostileInputEnv,
    // ── end of hostile-input quotas and limits ──
  })
  .superRefine((env, ctx) => {
    if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) {
      ctx.addIssue({
        code: 'custom',
        path: ['REDIS_CLUSTER_NODES'],
        message: 'give REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
      });
    }
    if (Boolean(env.AWS_ACCESS_KEY_ID) !== Boolean(env.AWS_SECRET_ACCESS_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: ['AWS_SECRET_ACCESS_KEY'],
        message: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together',
      });
    }
    if (env.AWS_ENDPOINT_URL_S3 && !env.AWS_ACCESS_KEY_ID) {
      ctx.addIssue({
        code: 'custom',
        path: ['AWS_ACCESS_KEY_ID'],
        message:
          'AWS_ENDPOINT_URL_S3 is set, so AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are needed',
      });
    }
    if (env.RENDERMILL_RETRY_BASE_MS > env.RENDERMILL_RETRY_MAX_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['RENDERMILL_RETRY_BASE_MS'],
        message: 'must not be larger than RENDERMILL_RETRY_MAX_MS',
      });
    }
    for (const [i, fallback] of (env.RENDERMILL_FALLBACKS ?? []).entries()) {
      const raw = (env as unknown as Record<string, unknown>)[fallback.api_key_env];
      if (typeof raw !== 'string' || raw === '') {
        ctx.addIssue({
          code: 'custom',
          path: ['RENDERMILL_FALLBACKS', i, 'api_key_env'],
          message: `${fallback.api_key_env} is not set: it should hold the key of fallback "${fallback.name}"`,
        });
      }
    }
    if (env.RENDERMILL_FALLBACKS?.length && !env.OPENAI_API_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['RENDERMILL_FALLBACKS'],
        message: 'fallbacks back up a configured provider: set OPENAI_API_KEY too',
      });
    }
    if (env.OPENAI_BASE_URL !== OPENAI_BASE_URL && !env.OPENAI_API_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['OPENAI_API_KEY'],
        message: 'OPENAI_BASE_URL is set, so OPENAI_API_KEY is needed too',
      });
    }
  });

/** A Redis Cluster to use instead of one Redis (REDIS_CLUSTER_NODES). */
export interface RedisClusterConfig {
  /** Seed nodes: the client discovers every master from any one of them. */
  nodes: { host: string; port: number }[];
  username?: string | undefined;
  password?: string | undefined;
  tls: boolean;
}

export interface S3Config {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

export interface ProviderConfig {
  /** How logs and the manifest name this account. */
  name: string;
  baseURL: string;
  apiKey: string;
  /** OpenAI itself refuses retired models; gateways may still serve them. */
  enforceRetirements: boolean;
  /** This account's usage-tier limit. */
  imagesPerMinute: number;
  /** Render with this model instead of the item's. */
  model?: string | undefined;
}

/** How provider calls are retried (p-retry, exponential backoff with jitter). */
export interface RetryConfig {
  /** Retries after the first try, for 429s, 5xx, timeouts and resets. */
  retries: number;
  /** First backoff wait, doubled each retry. */
  minTimeoutMs: number;
  /** Longest single wait, also the cap on a provider's retry-after. */
  maxTimeoutMs: number;
  /** How long an account out of quota, or whose key was refused, is left alone before a retry. */
  accountRecheckMs: number;
}

/**
 * Spending caps beyond each batch's own `budget_usd`, in micro-dollars. Every call reserves its
 * maximum price against all of them at once, so none is ever overshot.
 */
export interface SpendCapsConfig {
  /** Each tenant's cap per calendar month (UTC), unless named in `tenantMonthlyMicros`. */
  defaultTenantMonthlyMicros?: number | undefined;
  tenantMonthlyMicros: Record<string, number>;
  /** All tenants together, per calendar day (UTC). */
  dailyMicros?: number | undefined;
}

/** How batches' webhooks are signed and delivered. */
export interface WebhookConfig {
  /** Secrets fixed by the operator, tenant → `whsec_…`; other tenants get one made on first use. */
  secrets: Record<string, string>;
  /** First wait before a failed delivery is tried again, doubled each time (13 attempts). */
  retryBaseMs: number;
}

/** Configuration after parsing: what is external and what rendermill must embed. */
export interface Config {
  /** undefined (and no `redisCluster`) → start an embedded redis-server. */
  redisUrl?: string | undefined;
  /** A Redis Cluster instead of one Redis; never set together with `redisUrl`. */
  redisCluster?: RedisClusterConfig | undefined;
  /** endpoint and credentials undefined → start an embedded S3 server. */
  s3: S3Config;
  embedS3: boolean;
  /** undefined → start the embedded provider simulator. */
  provider?: ProviderConfig | undefined;
  /** Tried in order when the provider cannot render an item (model retired, keeps failing). */
  fallbacks: ProviderConfig[];
  retry: RetryConfig;
  /** The primary account's limit (also the embedded simulator's). */
  imagesPerMinute: number;
  /** Where the limit came from, for start-up messages. */
  imagesPerMinuteSource: string;
  /** API keys by their SHA-256: no key is kept in plain text. */
  apiKeys: ApiKeyDigest[];
  /** Tenants that may open Bull Board at /admin/queues (every tenant's jobs). Default none. */
  adminTenants: string[];
  /**
   * Whose renders a cache hit may reuse: only the same tenant's (the default, so one tenant
   * cannot learn what another rendered), or anyone's (one company's teams sharing a catalog).
   */
  cacheScope: 'tenant' | 'global';
  spendCaps: SpendCapsConfig;
  /** How often a running batch's manifest is written to S3 before it completes. */
  manifestCheckpointMs: number;
  port: number;
  /** Port of a worker's metrics and health server (the API serves them on `port`); 0: none. */
  metricsPort: number;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`; else it is public, like /healthz. */
  metricsToken?: string | undefined;
  /** Lifetime of the presigned image URLs the API hands out (seconds). */
  urlTtlSeconds: number;
  /** Largest JSON request body the API reads (bytes). */
  maxJsonBodyBytes: number;
  /** Largest catalog (CSV, JSON Lines) the API streams in (bytes). */
  maxCatalogBytes: number;
  dataDir: string;
  modelsFile?: string | undefined;
  defaultModel: string;
  concurrency: number;
  /**
   * How long a worker's claim on a job (and on a request it is rendering) outlives the worker:
   * a killed worker's jobs, and the requests other items wait on, are taken over after it.
   */
  jobLockMs: number;
  requestTimeoutMs: number;
  /**
   * On SIGTERM, how long a worker's jobs may keep waiting (for the rate limiter, a retry, the
   * budget, another render of the same request) before they are handed back to the queue.
   * Provider calls already sent are never cut: they may be billed.
   */
  shutdownGraceMs: number;
  webhooks: WebhookConfig;
  /**
   * Let the URLs tenants give — webhooks, edit and variation inputs — reach loopback, private,
   * link-local and reserved addresses (a receiver or an image server on the same network,
   * tests). Off by default: such a URL must not become a way into the network.
   */
  allowPrivateUrls: boolean;
  logLevel: string;
  /** Quotas and limits against hostile input (schedules, uploads): hostile-input-config.ts. */
  hostileInput: HostileInputConfig;
}

/** Parses the environment once, at start-up. Throws ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || 'environment'}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const tier = e.RENDERMILL_TIER ?? 1;
  const embedS3 = !e.AWS_ENDPOINT_URL_S3 && !e.AWS_ACCESS_KEY_ID;
  const imagesPerMinute = e.RENDERMILL_IMAGES_PER_MINUTE ?? TIER_IMAGES_PER_MINUTE[tier as 1];
  const isOpenAI = (url: string) => new URL(url).hostname === 'api.openai.com';
  return {
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER_NODES,
    s3: {
      bucket: e.S3_BUCKET,
      region: e.AWS_REGION,
      endpoint: e.AWS_ENDPOINT_URL_S3,
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
      // Most S3-compatible servers (MinIO, s3rver) need path-style; AWS itself prefers virtual hosts.
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? Boolean(e.AWS_ENDPOINT_URL_S3),
    },
    embedS3,
    provider: e.OPENAI_API_KEY
      ? {
          name: 'primary',
          baseURL: e.OPENAI_BASE_URL,
          apiKey: e.OPENAI_API_KEY,
          enforceRetirements: isOpenAI(e.OPENAI_BASE_URL),
          imagesPerMinute,
        }
      : undefined,
    fallbacks: (e.RENDERMILL_FALLBACKS ?? []).map((f) => ({
      name: f.name,
      baseURL: f.base_url,
      apiKey: String(env[f.api_key_env]),
      enforceRetirements: isOpenAI(f.base_url),
      imagesPerMinute:
        f.images_per_minute ??
        TIER_IMAGES_PER_MINUTE[(f.tier ?? 1) as keyof typeof TIER_IMAGES_PER_MINUTE],
      model: f.model,
    })),
    retry: {
      retries: e.RENDERMILL_RETRIES,
      minTimeoutMs: e.RENDERMILL_RETRY_BASE_MS,
      maxTimeoutMs: e.RENDERMILL_RETRY_MAX_MS,
      accountRecheckMs: e.RENDERMILL_ACCOUNT_RECHECK_MS,
    },
    imagesPerMinute,
    imagesPerMinuteSource: e.RENDERMILL_IMAGES_PER_MINUTE
      ? 'RENDERMILL_IMAGES_PER_MINUTE'
      : `usage tier ${tier}${e.RENDERMILL_TIER ? '' : ', the default: set RENDERMILL_TIER'}`,
    apiKeys: e.RENDERMILL_API_KEYS ?? [],
    adminTenants: e.RENDERMILL_ADMIN_TENANTS ?? [],
    cacheScope: e.RENDERMILL_CACHE_SCOPE,
    spendCaps: {
      defaultTenantMonthlyMicros: toMicros(e.RENDERMILL_TENANT_MONTHLY_BUDGET_USD),
      tenantMonthlyMicros: Object.fromEntries(
        Object.entries(e.RENDERMILL_TENANT_BUDGETS_USD ?? {}).map(([t, usd]) => [
          t,
          Math.round(usd * 1_000_000),
        ]),
      ),
      dailyMicros: toMicros(e.RENDERMILL_DAILY_BUDGET_USD),
    },
    manifestCheckpointMs: e.RENDERMILL_MANIFEST_CHECKPOINT_MS,
    port: e.PORT,
    metricsPort: e.RENDERMILL_METRICS_PORT,
    metricsToken: e.RENDERMILL_METRICS_TOKEN,
    urlTtlSeconds: e.RENDERMILL_URL_TTL_SECONDS,
    maxJsonBodyBytes: Math.round(e.RENDERMILL_MAX_JSON_BODY_MB * 1024 * 1024),
    maxCatalogBytes: Math.round(e.RENDERMILL_MAX_CATALOG_MB * 1024 * 1024),
    dataDir: e.RENDERMILL_DATA_DIR,
    modelsFile: e.RENDERMILL_MODELS_FILE,
    defaultModel: e.RENDERMILL_DEFAULT_MODEL,
    concurrency: e.RENDERMILL_CONCURRENCY,
    jobLockMs: e.RENDERMILL_JOB_LOCK_MS,
    requestTimeoutMs: e.RENDERMILL_REQUEST_TIMEOUT_MS,
    shutdownGraceMs: e.RENDERMILL_SHUTDOWN_GRACE_MS,
    webhooks: {
      secrets: e.RENDERMILL_WEBHOOK_SECRETS ?? {},
      retryBaseMs: e.RENDERMILL_WEBHOOK_RETRY_BASE_MS,
    },
    allowPrivateUrls:
      e.RENDERMILL_ALLOW_PRIVATE_URLS ?? e.RENDERMILL_WEBHOOK_ALLOW_PRIVATE ?? false,
    logLevel: e.LOG_LEVEL,
    hostileInput: hostileInputConfig(e),
  };
}

const toMicros = (usd: number | undefined) =>
  usd === undefined ? undefined : Math.round(usd * 1_000_000);
