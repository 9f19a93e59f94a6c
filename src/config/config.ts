import { z } from 'zod';

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

const apiKeys = z.string().transform((raw, ctx) => {
  const keys: { tenant: string; key: string }[] = [];
  for (const pair of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const at = pair.indexOf('=');
    const tenant = pair.slice(0, at).trim();
    const key = pair.slice(at + 1).trim();
    if (at <= 0 || !key || !/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected tenant=key pairs separated by commas (tenant: letters, digits, _ . -), got "${pair.slice(0, 40)}"`,
      });
      return z.NEVER;
    }
    if (key.length < 16) {
      ctx.addIssue({
        code: 'custom',
        message: `the key of tenant "${tenant}" is shorter than 16 characters`,
      });
      return z.NEVER;
    }
    keys.push({ tenant, key });
  }
  return keys;
});

/** The environment rendermill reads — the public contract documented in README. */
export const envSchema = z
  .object({
    REDIS_URL: optionalUrl,
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
        .refine((v) => v !== 'free' && v !== '0', {
          message: 'the free tier cannot use the Images API; set your account’s usage tier, 1–5',
        })
        .transform(Number)
        .optional(),
    ),
    RENDERMILL_IMAGES_PER_MINUTE: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().positive().max(1_000_000).optional(),
    ),
    RENDERMILL_API_KEYS: z.preprocess(emptyAsUndefined, apiKeys.optional()),
    PORT: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(0).max(65535).default(8080)),
    RENDERMILL_DATA_DIR: z.preprocess(emptyAsUndefined, z.string().default('.rendermill')),
    RENDERMILL_MODELS_FILE: optionalString,
    RENDERMILL_DEFAULT_MODEL: z.preprocess(emptyAsUndefined, z.string().default('gpt-image-2')),
    RENDERMILL_CONCURRENCY: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1).max(256).default(8),
    ),
    RENDERMILL_REQUEST_TIMEOUT_MS: z.preprocess(
      emptyAsUndefined,
      z.coerce.number().int().min(1000).default(120_000),
    ),
    LOG_LEVEL: z.preprocess(
      emptyAsUndefined,
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ),
  })
  .superRefine((env, ctx) => {
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
    if (env.OPENAI_BASE_URL !== OPENAI_BASE_URL && !env.OPENAI_API_KEY) {
      ctx.addIssue({
        code: 'custom',
        path: ['OPENAI_API_KEY'],
        message: 'OPENAI_BASE_URL is set, so OPENAI_API_KEY is needed too',
      });
    }
  });

export interface S3Config {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

export interface ProviderConfig {
  baseURL: string;
  apiKey: string;
  /** OpenAI itself refuses retired models; gateways may still serve them. */
  enforceRetirements: boolean;
}

/** Configuration after parsing: what is external and what rendermill must embed. */
export interface Config {
  /** undefined → start an embedded redis-server. */
  redisUrl?: string | undefined;
  /** endpoint and credentials undefined → start an embedded S3 server. */
  s3: S3Config;
  embedS3: boolean;
  /** undefined → start the embedded provider simulator. */
  provider?: ProviderConfig | undefined;
  imagesPerMinute: number;
  /** Where the limit came from, for start-up messages. */
  imagesPerMinuteSource: string;
  apiKeys: { tenant: string; key: string }[];
  port: number;
  dataDir: string;
  modelsFile?: string | undefined;
  defaultModel: string;
  concurrency: number;
  requestTimeoutMs: number;
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
  const tier = e.RENDERMILL_TIER ?? 1;
  const embedS3 = !e.AWS_ENDPOINT_URL_S3 && !e.AWS_ACCESS_KEY_ID;
  return {
    redisUrl: e.REDIS_URL,
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
          baseURL: e.OPENAI_BASE_URL,
          apiKey: e.OPENAI_API_KEY,
          enforceRetirements: new URL(e.OPENAI_BASE_URL).hostname === 'api.openai.com',
        }
      : undefined,
    imagesPerMinute: e.RENDERMILL_IMAGES_PER_MINUTE ?? TIER_IMAGES_PER_MINUTE[tier as 1],
    imagesPerMinuteSource: e.RENDERMILL_IMAGES_PER_MINUTE
      ? 'RENDERMILL_IMAGES_PER_MINUTE'
      : `usage tier ${tier}${e.RENDERMILL_TIER ? '' : ', the default: set RENDERMILL_TIER'}`,
    apiKeys: e.RENDERMILL_API_KEYS ?? [],
    port: e.PORT,
    dataDir: e.RENDERMILL_DATA_DIR,
    modelsFile: e.RENDERMILL_MODELS_FILE,
    defaultModel: e.RENDERMILL_DEFAULT_MODEL,
    concurrency: e.RENDERMILL_CONCURRENCY,
    requestTimeoutMs: e.RENDERMILL_REQUEST_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
  };
}
