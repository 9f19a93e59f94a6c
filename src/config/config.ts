import type { ApiKeyDigest } from './api-key-digest.js';
import { megabytesToBytes, type RedisClusterConfig } from './env-parsers.js';
import { DEFAULT_TIER, envSchema } from './env-schema.js';
import { readProvidersFile, type RouteConfig } from './providers-file.js';
import { accountRateLimit, type RateLimitSettings } from './rate-limit-settings.js';
import type { RoutingStrategy } from './route-kinds.js';

/**
 * The configuration as the rest of rendermill sees it: the environment, parsed once by
 * env-schema.ts's schema, mapped to what the services take. Defaults are the schema's; this
 * file only derives what depends on several variables (which parts are embedded, the limits
 * of the provider accounts).
 */

export type { RateLimitSettings } from './rate-limit-settings.js';
export type { RouteBatchConfig, RouteConfig, RouteModelConfig } from './providers-file.js';
export type { RouteKind, RoutingStrategy } from './route-kinds.js';

/** Raised at start-up when the environment does not describe a runnable configuration. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface S3Config {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

/** One route: an account on one provider API (src/config/providers-file.ts). */
export type ProviderConfig = RouteConfig;

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

/** How batches rendered through a provider's Batch API are gathered, split and followed. */
export interface ProviderBatchSettings {
  /** How often a running provider batch is looked at. */
  pollMs: number;
  /** How long enrolment may pause before what has gathered is submitted. */
  gatherMs: number;
  /** The most request lines, and bytes, in one file (OpenAI: 50 000 and 200 MB). */
  maxLines: number;
  maxBytes: number;
}

/** Configuration after parsing: what is external and what rendermill must embed. */
/** What one tenant may set running unattended (docs/hostile-input.md). */
export interface ScheduleQuotas {
  /** How many schedules one tenant may have at once. */
  maxPerTenant: number;
  /** The shortest time allowed between two runs of a schedule's cron (ms). */
  minIntervalMs: number;
}

export interface Config {
  /** undefined (and no `redisCluster`) → start an embedded redis-server. */
  redisUrl?: string | undefined;
  /** A Redis Cluster instead of one Redis; never set together with `redisUrl`. */
  redisCluster?: RedisClusterConfig | undefined;
  /** endpoint and credentials undefined → start an embedded S3 server. */
  s3: S3Config;
  embedS3: boolean;
  /**
   * The routes, in the configured order: the providers file's, or OPENAI_API_KEY's account
   * (`primary`) then RENDERMILL_FALLBACKS. Empty → start the embedded provider simulator.
   */
  routes: ProviderConfig[];
  /** How batches that name none choose among routes: the providers file's `routing`, else priority. */
  routing: RoutingStrategy;
  retry: RetryConfig;
  /**
   * The rate-limit settings of OPENAI_API_KEY's account (RENDERMILL_TIER …), also used when
   * the embedded simulator stands in for the provider.
   */
  rateLimit: RateLimitSettings;
  /**
   * The length of the "minute" every per-minute limit is counted in (ms), 60 000 unless a test
   * shortens it; it must match the provider's (the simulator's `minuteMs`).
   */
  limitMinuteMs: number;
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
  /** Longest line of a catalog (bytes); a longer one refuses the catalog with 413. */
  maxCatalogLineBytes: number;
  /** All the files of one Images API edit or variation together (bytes); 413 above it. */
  maxUploadBytesPerRequest: number;
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
   * Queued routes: how long a worker follows a prediction inline (`followMs`) before handing
   * its item back, and when it is looked at again (`recheckMs`).
   */
  queued: { followMs: number; recheckMs: number };
  /** Batches in `provider_batch` mode (docs/design/provider-batches.md). */
  providerBatch: ProviderBatchSettings;
  /**
   * On SIGTERM, how long a worker's jobs may keep waiting (for the rate limiter, a retry, the
   * budget, another render of the same request) before they are handed back to the queue.
   * Provider calls already sent are never cut: they may be billed.
   */
  shutdownGraceMs: number;
  /**
   * Where paid images wait while S3 refuses them: at most `maxBytes` of them in Redis, all
   * workers together (RENDERMILL_SPOOL_MAX_MB).
   */
  spool: { maxBytes: number };
  webhooks: WebhookConfig;
  schedules: ScheduleQuotas;
  /**
   * Let the URLs tenants give — webhooks, edit and variation inputs — reach loopback, private,
   * link-local and reserved addresses (a receiver or an image server on the same network,
   * tests). Off by default: such a URL must not become a way into the network.
   */
  allowPrivateUrls: boolean;
  logLevel: string;
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
  const embedS3 = !e.AWS_ENDPOINT_URL_S3 && !e.AWS_ACCESS_KEY_ID;
  // An account's limits are per model: its tier picks each model's row, its overrides replace
  // figures of it (src/models/rate-limits.ts).
  const rateLimit: RateLimitSettings = {
    tier: e.RENDERMILL_TIER,
    imagesPerMinute: e.RENDERMILL_IMAGES_PER_MINUTE,
    tokensPerMinute: e.RENDERMILL_TOKENS_PER_MINUTE,
  };
  const isOpenAI = (url: string) => new URL(url).hostname === 'api.openai.com';
  const file = e.RENDERMILL_PROVIDERS_FILE
    ? readRoutes(e.RENDERMILL_PROVIDERS_FILE, env, isOpenAI)
    : undefined;
  const primary: ProviderConfig[] = e.OPENAI_API_KEY
    ? [
        {
          name: 'primary',
          kind: 'openai',
          baseURL: e.OPENAI_BASE_URL,
          apiKey: e.OPENAI_API_KEY,
          enforceRetirements: isOpenAI(e.OPENAI_BASE_URL),
          rateLimit,
          batch:
            (e.RENDERMILL_BATCH_API ?? isOpenAI(e.OPENAI_BASE_URL))
              ? { queueTokens: e.RENDERMILL_BATCH_QUEUE_TOKENS }
              : undefined,
        },
      ]
    : [];
  const fallbacks: ProviderConfig[] = e.RENDERMILL_FALLBACKS.map((f) => ({
    name: f.name,
    kind: 'openai',
    baseURL: f.base_url,
    apiKey: String(env[f.api_key_env]),
    enforceRetirements: isOpenAI(f.base_url),
    rateLimit: accountRateLimit(f, DEFAULT_TIER, `fallback "${f.name}"`),
    model: f.model,
  }));
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
    routes: file?.routes ?? [...primary, ...fallbacks],
    routing: file?.routing ?? 'priority',
    retry: {
      retries: e.RENDERMILL_RETRIES,
      minTimeoutMs: e.RENDERMILL_RETRY_BASE_MS,
      maxTimeoutMs: e.RENDERMILL_RETRY_MAX_MS,
      accountRecheckMs: e.RENDERMILL_ACCOUNT_RECHECK_MS,
    },
    rateLimit,
    limitMinuteMs: e.RENDERMILL_LIMIT_MINUTE_MS,
    apiKeys: e.RENDERMILL_API_KEYS,
    adminTenants: e.RENDERMILL_ADMIN_TENANTS,
    cacheScope: e.RENDERMILL_CACHE_SCOPE,
    spendCaps: {
      defaultTenantMonthlyMicros: toMicros(e.RENDERMILL_TENANT_MONTHLY_BUDGET_USD),
      tenantMonthlyMicros: Object.fromEntries(
        Object.entries(e.RENDERMILL_TENANT_BUDGETS_USD).map(([t, usd]) => [
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
    maxJsonBodyBytes: megabytesToBytes(e.RENDERMILL_MAX_JSON_BODY_MB),
    maxCatalogBytes: megabytesToBytes(e.RENDERMILL_MAX_CATALOG_MB),
    maxCatalogLineBytes: e.RENDERMILL_MAX_CATALOG_LINE_KB * 1024,
    maxUploadBytesPerRequest: megabytesToBytes(e.RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST),
    schedules: {
      maxPerTenant: e.RENDERMILL_MAX_SCHEDULES_PER_TENANT,
      minIntervalMs: e.RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS * 1000,
    },
    dataDir: e.RENDERMILL_DATA_DIR,
    modelsFile: e.RENDERMILL_MODELS_FILE,
    defaultModel: e.RENDERMILL_DEFAULT_MODEL,
    concurrency: e.RENDERMILL_CONCURRENCY,
    jobLockMs: e.RENDERMILL_JOB_LOCK_MS,
    requestTimeoutMs: e.RENDERMILL_REQUEST_TIMEOUT_MS,
    queued: { followMs: e.RENDERMILL_QUEUED_FOLLOW_MS, recheckMs: e.RENDERMILL_QUEUED_RECHECK_MS },
    providerBatch: {
      pollMs: e.RENDERMILL_PROVIDER_BATCH_POLL_MS,
      gatherMs: e.RENDERMILL_PROVIDER_BATCH_GATHER_MS,
      maxLines: e.RENDERMILL_PROVIDER_BATCH_MAX_LINES,
      maxBytes: megabytesToBytes(e.RENDERMILL_PROVIDER_BATCH_MAX_MB),
    },
    shutdownGraceMs: e.RENDERMILL_SHUTDOWN_GRACE_MS,
    spool: { maxBytes: megabytesToBytes(e.RENDERMILL_SPOOL_MAX_MB) },
    webhooks: {
      secrets: e.RENDERMILL_WEBHOOK_SECRETS,
      retryBaseMs: e.RENDERMILL_WEBHOOK_RETRY_BASE_MS,
    },
    // The deprecated name counts only when the current one is unset; with neither, URLs stay public.
    allowPrivateUrls:
      e.RENDERMILL_ALLOW_PRIVATE_URLS ?? e.RENDERMILL_WEBHOOK_ALLOW_PRIVATE ?? false,
    logLevel: e.LOG_LEVEL,
  };
}

/** The providers file's routes, its problems raised as a ConfigError. */
function readRoutes(path: string, env: NodeJS.ProcessEnv, isOpenAI: (url: string) => boolean) {
  try {
    return readProvidersFile(path, env, { tier: DEFAULT_TIER, isOpenAI });
  } catch (error) {
    throw new ConfigError(`RENDERMILL_PROVIDERS_FILE: ${(error as Error).message}`);
  }
}

const toMicros = (usd: number | undefined) =>
  usd === undefined ? undefined : Math.round(usd * 1_000_000);
