import { z } from 'zod';
import { apiKeyDigest, type ApiKeyDigest } from './api-key-digest.js';
import { webhookSecretProblem } from './webhook-secret-format.js';

/**
 * The parsers env-schema.ts builds the environment's one schema from. Each takes a variable's
 * raw string and gives the value it stands for — a number of milliseconds, a list, a parsed
 * JSON document — or issues that say, in a line, what is wrong with it. None of them has a
 * default: defaults are written where each variable is declared, in env-schema.ts.
 */

const emptyAsUndefined = (value: unknown) => (value === '' ? undefined : value);

/**
 * One environment variable read with `schema`. An empty value counts as unset (so it takes its
 * default): `FOO=` in a .env file or a ConfigMap means "not given", not "the empty string".
 */
export const envVariable = <T extends z.ZodType>(schema: T) =>
  z.preprocess(emptyAsUndefined, schema);

export const optionalString = envVariable(z.string().optional());
export const optionalUrl = envVariable(z.url().optional());

/** `true`/`false`, `1`/`0` or `yes`/`no`. */
export const booleanFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A whole number of milliseconds, at least `min` (and, when given, at most `max`). */
export const durationMs = (min: number, max?: number) => {
  const ms = z.coerce.number().int().min(min);
  return max === undefined ? ms : ms.max(max);
};

/** A whole number of seconds, from `min` to `max`. */
export const durationSeconds = (min: number, max: number) =>
  z.coerce.number().int().min(min).max(max);

/** A whole number from `min` to `max`: a count, a number of retries, a rate. */
export const wholeNumber = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A TCP port; 0 asks for none, or for any free one, as the variable says. */
export const tcpPort = z.coerce.number().int().min(0).max(65535);

/** A size in megabytes (MiB), more than 0 and at most `max`; fractions allowed (`0.5`). */
export const sizeInMegabytes = (max: number) => z.coerce.number().positive().max(max);

/** A size given in megabytes (MiB), in bytes. */
export const megabytesToBytes = (megabytes: number) => Math.round(megabytes * 1024 * 1024);

/** A positive amount of US dollars, at most a million. */
export const usdAmount = z.coerce.number().positive().max(1_000_000);

const FREE_TIER_MESSAGE =
  'the free tier cannot use the Images API; set your account’s usage tier, 1–5';

/** An OpenAI usage tier, 1–5; the free tier (`free`, `0`) is refused with the reason. */
export const usageTier = z
  .enum(['free', '0', '1', '2', '3', '4', '5'], { message: 'must be a usage tier, 1–5' })
  .refine((v) => v !== 'free' && v !== '0', { message: FREE_TIER_MESSAGE })
  .transform(Number);

const TENANT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Comma-separated items, trimmed, empty ones dropped (`a, b,` is `a` and `b`). */
const commaList = (raw: string) =>
  raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

/** `acme,ops`: tenant names separated by commas. */
export const tenantList = z.string().transform((raw, ctx) => {
  const tenants = commaList(raw);
  for (const tenant of tenants) {
    if (!TENANT_NAME.test(tenant)) {
      ctx.addIssue({
        code: 'custom',
        message: `expected tenant names separated by commas (letters, digits, _ . -), got "${tenant.slice(0, 40)}"`,
      });
      return z.NEVER;
    }
  }
  return tenants;
});

/**
 * `tenant=key` pairs separated by commas. A key is given as its SHA-256 (`tenant=sha256:<64
 * hex>`, what `rendermill keys new` prints) so the configuration holds no usable secret, or in
 * plain text (16+ characters; handy for development), which is hashed as soon as it is read.
 */
export const apiKeyList = z.string().transform((raw, ctx) => {
  const keys: ApiKeyDigest[] = [];
  const tenantOfDigest = new Map<string, string>();
  for (const [index, pair] of commaList(raw).entries()) {
    const at = pair.indexOf('=');
    const tenant = pair.slice(0, at).trim();
    const key = pair.slice(at + 1).trim();
    if (at <= 0 || !key || !TENANT_NAME.test(tenant)) {
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

/** A Redis Cluster to use instead of one Redis (REDIS_CLUSTER_NODES). */
export interface RedisClusterConfig {
  /** Seed nodes: the client discovers every master from any one of them. */
  nodes: { host: string; port: number }[];
  username?: string | undefined;
  password?: string | undefined;
  tls: boolean;
}

/**
 * `host:port,host:port`: seed nodes of a Redis Cluster (any one is enough; the client finds the
 * rest). A seed may be written as a URL, `redis://[user:password@]host:port` (`rediss://` for
 * TLS): credentials and TLS then apply to every node of the cluster.
 */
export const redisClusterSeeds = z.string().transform((raw, ctx): RedisClusterConfig => {
  const cluster: RedisClusterConfig = { nodes: [], tls: false };
  for (const seed of commaList(raw)) {
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

/**
 * Where the JSON of a variable is broken, without the excerpt of it that JSON.parse's message
 * quotes: a variable may hold secrets (RENDERMILL_WEBHOOK_SECRETS), and start-up errors are logged.
 */
function jsonSyntaxProblem(error: Error): string {
  const at = /at position (\d+)/.exec(error.message);
  return `not JSON${at ? ` (at character ${at[1]})` : ''}: its content is not repeated here, as it may hold secrets`;
}

/**
 * A variable holding JSON checked by `schema`. Each problem is reported at its place in the
 * JSON, or, with `hint`, as one message that shows the expected shape.
 */
export function jsonVariable<T extends z.ZodType>(schema: T, hint?: string) {
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

/** An account's usage tier as JSON or YAML write it: 1–5 (the free tier cannot render). */
export const accountTier = z
  .union([z.literal('free'), z.number().int().min(0).max(5)])
  .refine((t) => t !== 'free' && t !== 0, { message: FREE_TIER_MESSAGE });

/** A limit figure that replaces a tier's, for every model of an account or for one model. */
export const perMinuteFigures = {
  /** Images per minute, instead of the tier's. */
  images_per_minute: z.number().int().positive().max(1_000_000).optional(),
  /** Tokens per minute, instead of the tier's. */
  tokens_per_minute: z.number().int().positive().max(1_000_000_000).optional(),
};

/**
 * The fields of a provider account as JSON or YAML write them — a fallback in
 * RENDERMILL_FALLBACKS, a route in the providers file: its name, where it is, the variable
 * holding its key (so that keys stay out of the text), its usage tier (which picks each
 * model's row of limits; default DEFAULT_TIER, env-schema.ts) and figures replacing the tier's.
 */
export const accountFields = {
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
  base_url: z.url(),
  api_key_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name'),
  tier: accountTier.optional(),
  ...perMinuteFigures,
};

/** One fallback provider account, as written in RENDERMILL_FALLBACKS. */
const fallbackAccount = z
  .object({
    ...accountFields,
    /** Render with this model instead of the item's (e.g. another gateway's name for it). */
    model: z.string().min(1).optional(),
  })
  .strict();

/** `[{"name": …, "base_url": …, "api_key_env": …}, …]`: fallback accounts, in the order tried. */
export const fallbackAccountList = jsonVariable(z.array(fallbackAccount));

/** `{"acme": 50, "globex": 200}`: a monthly budget in US dollars per named tenant. */
export const monthlyBudgetByTenant = jsonVariable(
  z.record(z.string().min(1), z.number().positive().max(1_000_000)),
  'expected a JSON object of tenant → monthly budget in USD, e.g. {"acme": 50}',
);

/** `{"acme": "whsec_…"}`: a webhook secret per named tenant, each in the Standard Webhooks form. */
export const webhookSecretByTenant = jsonVariable(
  z.record(z.string().min(1), z.string()).superRefine((secrets, ctx) => {
    for (const [tenant, secret] of Object.entries(secrets)) {
      const problem = webhookSecretProblem(secret);
      if (problem) ctx.addIssue({ code: 'custom', path: [tenant], message: problem });
    }
  }),
);
