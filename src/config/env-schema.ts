import { z } from 'zod';
import {
  apiKeyList,
  booleanFlag,
  durationMs,
  durationSeconds,
  envVariable,
  fallbackAccountList,
  monthlyBudgetByTenant,
  optionalString,
  optionalUrl,
  redisClusterSeeds,
  sizeInMegabytes,
  tcpPort,
  tenantList,
  usageTier,
  usdAmount,
  webhookSecretByTenant,
  wholeNumber,
} from './env-parsers.js';

/**
 * The environment rendermill reads — the public contract documented in docs/configuration.md —
 * as one zod schema, parsed once at start-up by `loadConfig`. Every default is written here,
 * next to its variable, and nowhere else: the services take each value as a required option.
 * The variables are grouped by what they configure; a new one goes into its group's object.
 */

export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

/**
 * The usage tier of an account that names none: the primary's, and a fallback's. A tier's limits
 * are per model, in the model registry (src/models/models.json, `rate_limits`).
 */
export const DEFAULT_TIER = 1;

/** Redis: BullMQ's queues and rendermill's own state. */
const redisVariables = {
  /**
   * One Redis, `redis://[user:password@]host:port[/db]`. Unset, with no cluster either: the
   * single-process commands start a private redis-server; the others refuse to start.
   */
  REDIS_URL: optionalUrl,
  /** A Redis Cluster instead of one Redis: `host:port` seeds. Not together with REDIS_URL. */
  REDIS_CLUSTER_NODES: envVariable(redisClusterSeeds.optional()),
};

/** S3-compatible storage of images, uploads and manifests. */
const s3Variables = {
  /** Default `rendermill`. */
  S3_BUCKET: envVariable(
    z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
      .default('rendermill'),
  ),
  /**
   * An S3-compatible server (MinIO, R2 …); unset, AWS S3. With neither this nor keys, the
   * single-process commands start a local S3 server.
   */
  AWS_ENDPOINT_URL_S3: optionalUrl,
  /** Default `us-east-1`. */
  AWS_REGION: envVariable(z.string().default('us-east-1')),
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_SECRET_ACCESS_KEY: optionalString,
  /** Path-style bucket URLs. Default: on when AWS_ENDPOINT_URL_S3 is set, off for AWS itself. */
  S3_FORCE_PATH_STYLE: envVariable(booleanFlag.optional()),
  /**
   * Lifetime of the presigned image URLs the API hands out, in seconds. Default 3600 (an hour);
   * SigV4 presigned URLs live at most 7 days.
   */
  RENDERMILL_URL_TTL_SECONDS: envVariable(durationSeconds(60, 7 * 24 * 3600).default(3600)),
};

/** The image provider: the primary account, its fallbacks, the models. */
const providerVariables = {
  /** The primary account's key. Unset: the single-process commands render with the simulator. */
  OPENAI_API_KEY: optionalString,
  /** OpenAI or a gateway speaking its Images API. Default {@link OPENAI_BASE_URL}. */
  OPENAI_BASE_URL: envVariable(z.url().default(OPENAI_BASE_URL)),
  /**
   * The providers file (YAML): every route — API, account, tier, the models it serves at
   * their own prices — and the default routing. Replaces OPENAI_API_KEY's account and its
   * fallbacks as the list of routes. Default none.
   */
  RENDERMILL_PROVIDERS_FILE: optionalString,
  /** Accounts tried in order when the primary cannot render an item (JSON). Default none. */
  RENDERMILL_FALLBACKS: envVariable(fallbackAccountList.default(() => [])),
  /** Per provider request, in ms; a timed-out call is retried. Default 120 000 (2 minutes). */
  RENDERMILL_REQUEST_TIMEOUT_MS: envVariable(durationMs(1000).default(120_000)),
  /**
   * Queued routes (Replicate, fal): how long a worker follows a prediction before it hands the
   * item back and frees its slot, in ms. Default 20 000.
   */
  RENDERMILL_QUEUED_FOLLOW_MS: envVariable(durationMs(0, 600_000).default(20_000)),
  /** Queued routes: how long after a hand-back the prediction is looked at again, in ms. Default 10 000. */
  RENDERMILL_QUEUED_RECHECK_MS: envVariable(durationMs(100, 3_600_000).default(10_000)),
  /**
   * Whether OPENAI_API_KEY's account offers OpenAI's Batch API (`/v1/files`, `/v1/batches`) for
   * batches in `provider_batch` mode. Default: on when OPENAI_BASE_URL is OpenAI's own, off for
   * a gateway.
   */
  RENDERMILL_BATCH_API: envVariable(booleanFlag.optional()),
  /**
   * The most tokens OPENAI_API_KEY's account may have enqueued in provider batches per model
   * (OpenAI's "batch queue limit"); submissions wait for room. Default: no limit known.
   */
  RENDERMILL_BATCH_QUEUE_TOKENS: envVariable(wholeNumber(1, 1e12).optional()),
  /** How often a provider batch is looked at while it runs, in ms. Default 60 000. */
  RENDERMILL_PROVIDER_BATCH_POLL_MS: envVariable(durationMs(100, 3_600_000).default(60_000)),
  /**
   * How long enrolment in a provider batch may pause before what has gathered is submitted, in
   * ms (a batch whose every item is enrolled is submitted at once). Default 5 000.
   */
  RENDERMILL_PROVIDER_BATCH_GATHER_MS: envVariable(durationMs(0, 3_600_000).default(5_000)),
  /** The most request lines in one provider batch file (OpenAI's limit: 50 000). */
  RENDERMILL_PROVIDER_BATCH_MAX_LINES: envVariable(wholeNumber(1, 50_000).default(50_000)),
  /** The largest provider batch file, in MB (OpenAI's limit: 200). */
  RENDERMILL_PROVIDER_BATCH_MAX_MB: envVariable(wholeNumber(1, 200).default(200)),
  /** A model registry file replacing the built-in one. Default: the built-in registry. */
  RENDERMILL_MODELS_FILE: optionalString,
  /** The model of a request that names none. Default `gpt-image-2`. */
  RENDERMILL_DEFAULT_MODEL: envVariable(z.string().default('gpt-image-2')),
};

/** The provider's rate limits, shared by every worker. */
const rateLimitVariables = {
  /**
   * The primary account's OpenAI usage tier, 1–5: it picks, for each model rendered, that
   * model's row in the registry's `rate_limits`. Default {@link DEFAULT_TIER}.
   */
  RENDERMILL_TIER: envVariable(usageTier.default(DEFAULT_TIER)),
  /** The primary account's images per minute, for every model, instead of its tier's. Default: the tier's. */
  RENDERMILL_IMAGES_PER_MINUTE: envVariable(
    z.coerce.number().int().positive().max(1_000_000).optional(),
  ),
  /** The primary account's tokens per minute, for every model, instead of its tier's. Default: the tier's. */
  RENDERMILL_TOKENS_PER_MINUTE: envVariable(
    z.coerce.number().int().positive().max(1_000_000_000).optional(),
  ),
  /**
   * How long the "minute" of every per-minute limit is, in ms: a testing knob for a clock that
   * must match the provider's — useful only against the simulator set to the same `minuteMs`.
   * Default 60 000.
   */
  RENDERMILL_LIMIT_MINUTE_MS: envVariable(durationMs(1000, 3_600_000).default(60_000)),
};

/** How provider calls are retried: exponential backoff with jitter. */
const retryVariables = {
  /** Retries after the first try, for 429s, 5xx, timeouts and resets. Default 6. */
  RENDERMILL_RETRIES: envVariable(wholeNumber(0, 50).default(6)),
  /** First backoff wait, in ms, doubled each retry. Default 500. */
  RENDERMILL_RETRY_BASE_MS: envVariable(durationMs(1).default(500)),
  /** Longest single wait, in ms, also the cap on a provider's retry-after. Default 60 000. */
  RENDERMILL_RETRY_MAX_MS: envVariable(durationMs(1).default(60_000)),
  /**
   * How long an account out of quota, or whose key was refused, is left alone before it is
   * tried again, in ms. Default 60 000 (a minute).
   */
  RENDERMILL_ACCOUNT_RECHECK_MS: envVariable(durationMs(1000).default(60_000)),
};

/** The API server and the limits of what it reads. */
const serverVariables = {
  /** The API's port. Default 8080. */
  PORT: envVariable(tcpPort.default(8080)),
  /** Largest JSON request body, in MiB. Default 32. */
  RENDERMILL_MAX_JSON_BODY_MB: envVariable(sizeInMegabytes(1024).default(32)),
  /** Largest catalog (CSV, JSON Lines) streamed in, in MiB. Default 512. */
  RENDERMILL_MAX_CATALOG_MB: envVariable(sizeInMegabytes(65_536).default(512)),
  /**
   * Longest catalog line, in KiB. A line is held whole while it is parsed, so this stays far
   * below the longest string the runtime can hold (~512 MiB). Default 1024 (1 MiB).
   */
  RENDERMILL_MAX_CATALOG_LINE_KB: envVariable(wholeNumber(1, 64 * 1024).default(1024)),
  /**
   * All the files of one `/v1/images/edits` or `/variations` request together, in MiB (413
   * above). One gpt-image edit takes up to 16 images; 64 MiB is plenty for real photos and
   * bounds what a request holds in memory while it is read. Default 64.
   */
  RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST: envVariable(sizeInMegabytes(4096).default(64)),
};

/** Tenants: their keys, and what they may reach and share. */
const tenantVariables = {
  /** `tenant=key` pairs (keys in plain text or as `sha256:<hex>`). Default none. */
  RENDERMILL_API_KEYS: envVariable(apiKeyList.default(() => [])),
  /** Tenants that may open the operators' pages (Bull Board: every tenant's jobs). Default none. */
  RENDERMILL_ADMIN_TENANTS: envVariable(tenantList.default(() => [])),
  /** Whose renders a cache hit may reuse: `tenant` (its own only, the default) or `global`. */
  RENDERMILL_CACHE_SCOPE: envVariable(
    z.enum(['tenant', 'global'], { message: 'must be tenant or global' }).default('tenant'),
  ),
  /**
   * Let tenants' URLs (webhooks, input images) reach private and loopback addresses. Default
   * false.
   */
  RENDERMILL_ALLOW_PRIVATE_URLS: envVariable(booleanFlag.optional()),
  /** Deprecated: the former name of RENDERMILL_ALLOW_PRIVATE_URLS, read when that one is unset. */
  RENDERMILL_WEBHOOK_ALLOW_PRIVATE: envVariable(booleanFlag.optional()),
};

/** Spending caps beyond each batch's own budget, in US dollars. */
const budgetVariables = {
  /** Each tenant's cap per calendar month (UTC). Default none. */
  RENDERMILL_TENANT_MONTHLY_BUDGET_USD: envVariable(usdAmount.optional()),
  /** Monthly caps of named tenants, over the one above (JSON). Default none. */
  RENDERMILL_TENANT_BUDGETS_USD: envVariable(monthlyBudgetByTenant.default(() => ({}))),
  /** All tenants together, per calendar day (UTC). Default none. */
  RENDERMILL_DAILY_BUDGET_USD: envVariable(usdAmount.optional()),
};

/** Worker processes and their jobs. */
const workerVariables = {
  /** Jobs processed at once per queue, per worker process. Default 8. */
  RENDERMILL_CONCURRENCY: envVariable(wholeNumber(1, 1024).default(8)),
  /**
   * How long a worker's claim on a job (and on a request it renders) outlives the worker, in
   * ms. Default 30 000 (BullMQ's).
   */
  RENDERMILL_JOB_LOCK_MS: envVariable(durationMs(1000, 600_000).default(30_000)),
  /**
   * On SIGTERM, how long waiting jobs may keep waiting before they are handed back to the
   * queue, in ms. Default 10 000.
   */
  RENDERMILL_SHUTDOWN_GRACE_MS: envVariable(durationMs(0, 600_000).default(10_000)),
  /** How often a running batch's manifest is written to S3, in ms. Default 30 000. */
  RENDERMILL_MANIFEST_CHECKPOINT_MS: envVariable(durationMs(1000).default(30_000)),
  /**
   * Most bytes of paid images kept in Redis while S3 refuses them, all workers together, in
   * MiB. Default 256.
   */
  RENDERMILL_SPOOL_MAX_MB: envVariable(sizeInMegabytes(65_536).default(256)),
};

/** Batches' webhooks. */
const webhookVariables = {
  /** Webhook secrets the operator fixes, tenant → `whsec_…` (JSON). Default none. */
  RENDERMILL_WEBHOOK_SECRETS: envVariable(webhookSecretByTenant.default(() => ({}))),
  /** First wait before a failed delivery is tried again, in ms, doubled each time. Default 30 000. */
  RENDERMILL_WEBHOOK_RETRY_BASE_MS: envVariable(durationMs(1, 3_600_000).default(30_000)),
};

/** Schedules: what one tenant may set running unattended. */
const scheduleVariables = {
  /** How many schedules one tenant may have (409 `too_many_schedules` above). Default 100. */
  RENDERMILL_MAX_SCHEDULES_PER_TENANT: envVariable(wholeNumber(1, 100_000).default(100)),
  /**
   * Shortest time between two runs of a schedule's cron, in seconds: a cron that runs more often
   * (`* * * * * *`, a batch every second) is refused. Default 60, a 5-field cron's finest.
   */
  RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: envVariable(wholeNumber(1, 7 * 24 * 3600).default(60)),
};

/** Metrics and logs. */
const observabilityVariables = {
  /** A worker's metrics and health port (the API serves them on PORT); 0: none. Default 9464. */
  RENDERMILL_METRICS_PORT: envVariable(tcpPort.default(9464)),
  /** When set, GET /metrics needs it as a bearer token. Default none. */
  RENDERMILL_METRICS_TOKEN: envVariable(
    z.string().min(16, 'must be at least 16 characters').optional(),
  ),
  /** Default `info`. */
  LOG_LEVEL: envVariable(
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
};

/** Files on this machine. */
const localVariables = {
  /** Where the embedded Redis and S3, logs and `render`'s output go. Default `.rendermill`. */
  RENDERMILL_DATA_DIR: envVariable(z.string().default('.rendermill')),
};

/** Every variable rendermill reads, and what must hold between them. */
export const envSchema = z
  .looseObject({
    ...redisVariables,
    ...s3Variables,
    ...providerVariables,
    ...rateLimitVariables,
    ...retryVariables,
    ...serverVariables,
    ...tenantVariables,
    ...budgetVariables,
    ...workerVariables,
    ...webhookVariables,
    ...scheduleVariables,
    ...observabilityVariables,
    ...localVariables,
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
    for (const [i, fallback] of env.RENDERMILL_FALLBACKS.entries()) {
      const raw = (env as unknown as Record<string, unknown>)[fallback.api_key_env];
      if (typeof raw !== 'string' || raw === '') {
        ctx.addIssue({
          code: 'custom',
          path: ['RENDERMILL_FALLBACKS', i, 'api_key_env'],
          message: `${fallback.api_key_env} is not set: it should hold the key of fallback "${fallback.name}"`,
        });
      }
    }
    if (env.RENDERMILL_PROVIDERS_FILE && env.RENDERMILL_FALLBACKS.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['RENDERMILL_FALLBACKS'],
        message:
          'the providers file lists every route: give the fallbacks there, not in RENDERMILL_FALLBACKS',
      });
    }
    if (env.RENDERMILL_FALLBACKS.length > 0 && !env.OPENAI_API_KEY) {
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

export type Env = z.infer<typeof envSchema>;

/**
 * What each variable is when it is not set, for the texts that name a default (help, API
 * documentation): read from the schema, so that they cannot drift from it.
 */
export const ENV_DEFAULTS: Readonly<Env> = Object.freeze(envSchema.parse({}));
