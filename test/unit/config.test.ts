import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { ENV_DEFAULTS } from '../../src/config/env-schema.js';

describe('loadConfig', () => {
  it('embeds Redis, S3 and the provider when nothing is configured', () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBeUndefined();
    expect(config.embedS3).toBe(true);
    expect(config.routes[0]).toBeUndefined();
    expect(config.rateLimit).toEqual({ tier: 1 });
    expect(config.limitMinuteMs).toBe(60_000);
    expect(config.port).toBe(8080);
    expect(config.s3.bucket).toBe('rendermill');
  });

  it('names, in ENV_DEFAULTS, the defaults an empty environment is configured with', () => {
    const config = loadConfig({});
    expect(ENV_DEFAULTS.PORT).toBe(config.port);
    expect(ENV_DEFAULTS.RENDERMILL_URL_TTL_SECONDS).toBe(config.urlTtlSeconds);
    expect(ENV_DEFAULTS.RENDERMILL_DEFAULT_MODEL).toBe(config.defaultModel);
    expect(ENV_DEFAULTS.RENDERMILL_DATA_DIR).toBe(config.dataDir);
    expect(ENV_DEFAULTS.RENDERMILL_SHUTDOWN_GRACE_MS).toBe(config.shutdownGraceMs);
  });

  it('uses external parts when configured', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://10.0.0.5:6380',
      AWS_ENDPOINT_URL_S3: 'http://minio:9000',
      AWS_ACCESS_KEY_ID: 'minio',
      AWS_SECRET_ACCESS_KEY: 'minio-secret',
      OPENAI_API_KEY: 'sk-real',
      RENDERMILL_TIER: '3',
      RENDERMILL_API_KEYS: 'acme=acme-key-0123456789,globex=globex-key-012345678',
      PORT: '9090',
    });
    expect(config.redisUrl).toBe('redis://10.0.0.5:6380');
    expect(config.embedS3).toBe(false);
    expect(config.s3.forcePathStyle).toBe(true);
    expect(config.routes[0]).toEqual({
      name: 'primary',
      kind: 'openai',
      baseURL: 'https://api.openai.com/v1',
      apiKey: 'sk-real',
      enforceRetirements: true,
      rateLimit: { tier: 3, imagesPerMinute: undefined, tokensPerMinute: undefined },
      // OpenAI's own API: its Batch API is offered, with no queue limit known.
      batch: { queueTokens: undefined },
    });
    expect(config.rateLimit).toEqual({ tier: 3 });
    // Plain keys are hashed as they are read: the configuration object holds no key.
    expect(config.apiKeys).toEqual([
      { tenant: 'acme', sha256: createHash('sha256').update('acme-key-0123456789').digest('hex') },
      {
        tenant: 'globex',
        sha256: createHash('sha256').update('globex-key-012345678').digest('hex'),
      },
    ]);
    expect(JSON.stringify(config)).not.toContain('acme-key-0123456789');
    expect(config.port).toBe(9090);
  });

  it('reads fallback accounts, each with its own limit, and the retry settings', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-primary',
      RENDERMILL_TIER: '2',
      GATEWAY_KEY: 'gw-secret',
      RENDERMILL_FALLBACKS: JSON.stringify([
        { name: 'gateway', base_url: 'https://gw.example/v1', api_key_env: 'GATEWAY_KEY', tier: 4 },
        {
          name: 'mini',
          base_url: 'https://api.openai.com/v1',
          api_key_env: 'GATEWAY_KEY',
          images_per_minute: 900,
          model: 'gpt-image-1-mini',
        },
        {
          name: 'own-limits',
          base_url: 'https://gw2.example/v1',
          api_key_env: 'GATEWAY_KEY',
          tier: 3,
          images_per_minute: 40,
          tokens_per_minute: 500_000,
        },
      ]),
      RENDERMILL_RETRY_BASE_MS: '250',
      RENDERMILL_RETRY_MAX_MS: '8000',
    });
    expect(config.routes[0]?.rateLimit).toEqual({ tier: 2 });
    expect(config.routes.slice(1)).toEqual([
      {
        name: 'gateway',
        kind: 'openai',
        baseURL: 'https://gw.example/v1',
        apiKey: 'gw-secret',
        enforceRetirements: false,
        rateLimit: { tier: 4, overridesFrom: 'fallback "gateway"' },
        model: undefined,
      },
      {
        name: 'mini',
        kind: 'openai',
        baseURL: 'https://api.openai.com/v1',
        apiKey: 'gw-secret',
        enforceRetirements: true,
        rateLimit: { tier: 1, imagesPerMinute: 900, overridesFrom: 'fallback "mini"' },
        model: 'gpt-image-1-mini',
      },
      {
        name: 'own-limits',
        kind: 'openai',
        baseURL: 'https://gw2.example/v1',
        apiKey: 'gw-secret',
        enforceRetirements: false,
        rateLimit: {
          tier: 3,
          imagesPerMinute: 40,
          tokensPerMinute: 500_000,
          overridesFrom: 'fallback "own-limits"',
        },
        model: undefined,
      },
    ]);
    expect(config.retry).toEqual({
      retries: 6,
      minTimeoutMs: 250,
      maxTimeoutMs: 8000,
      accountRecheckMs: 60_000,
    });
  });

  it('names every problem with the fallbacks and retry settings', () => {
    const problems = () =>
      loadConfig({
        OPENAI_API_KEY: 'sk-primary',
        RENDERMILL_FALLBACKS: JSON.stringify([
          { name: 'gw', base_url: 'not a url', api_key_env: 'MISSING_KEY', tier: 'free' },
          { name: 'gw2', base_url: 'https://gw.example/v1', api_key_env: 'UNSET_KEY' },
        ]),
      });
    expect(problems).toThrow(ConfigError);
    expect(problems).toThrow(/RENDERMILL_FALLBACKS: \[0\.base_url\]/);
    expect(problems).toThrow(/free tier cannot use the Images API/);
    expect(() =>
      loadConfig({ RENDERMILL_RETRY_BASE_MS: '5000', RENDERMILL_RETRY_MAX_MS: '1000' }),
    ).toThrow(/RENDERMILL_RETRY_BASE_MS: must not be larger than RENDERMILL_RETRY_MAX_MS/);
    expect(() =>
      loadConfig({
        OPENAI_API_KEY: 'sk-primary',
        RENDERMILL_FALLBACKS: JSON.stringify([
          { name: 'gw', base_url: 'https://gw.example/v1', api_key_env: 'UNSET_KEY' },
        ]),
      }),
    ).toThrow(/RENDERMILL_FALLBACKS\.0\.api_key_env: UNSET_KEY is not set/);
    expect(() => loadConfig({ RENDERMILL_FALLBACKS: '[{' })).toThrow(
      /RENDERMILL_FALLBACKS: not JSON/,
    );
  });

  it('reads the cache scope and the spending caps, in micro-dollars', () => {
    const config = loadConfig({
      RENDERMILL_CACHE_SCOPE: 'global',
      RENDERMILL_TENANT_MONTHLY_BUDGET_USD: '25',
      RENDERMILL_TENANT_BUDGETS_USD: '{"acme": 50.5}',
      RENDERMILL_DAILY_BUDGET_USD: '100',
    });
    expect(config.cacheScope).toBe('global');
    expect(config.spendCaps).toEqual({
      defaultTenantMonthlyMicros: 25_000_000,
      tenantMonthlyMicros: { acme: 50_500_000 },
      dailyMicros: 100_000_000,
    });
    expect(loadConfig({}).cacheScope).toBe('tenant');
  });

  it('names what is wrong with the cache scope and the caps', () => {
    expect(() =>
      loadConfig({
        RENDERMILL_CACHE_SCOPE: 'everyone',
        RENDERMILL_TENANT_BUDGETS_USD: '{"acme": -5}',
        RENDERMILL_DAILY_BUDGET_USD: 'lots',
      }),
    ).toThrow(
      new RegExp(
        [
          'RENDERMILL_CACHE_SCOPE: must be tenant or global',
          'RENDERMILL_TENANT_BUDGETS_USD: expected a JSON object of tenant → monthly budget in USD',
          'RENDERMILL_DAILY_BUDGET_USD: ',
        ].join('[\\s\\S]*'),
      ),
    );
  });

  it('reads the tier with the images and tokens overrides, and the length of a limit minute', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-real',
      RENDERMILL_TIER: '5',
      RENDERMILL_IMAGES_PER_MINUTE: '1200',
      RENDERMILL_TOKENS_PER_MINUTE: '2000000',
      RENDERMILL_LIMIT_MINUTE_MS: '6000',
    });
    const settings = { tier: 5, imagesPerMinute: 1200, tokensPerMinute: 2_000_000 };
    expect(config.rateLimit).toEqual(settings);
    expect(config.routes[0]?.rateLimit).toEqual(settings);
    expect(config.limitMinuteMs).toBe(6000);
    expect(ENV_DEFAULTS.RENDERMILL_LIMIT_MINUTE_MS).toBe(60_000);
  });

  it('no longer has one images-per-minute figure for every model', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-real' }) as unknown as Record<string, unknown>;
    expect(config).not.toHaveProperty('imagesPerMinute');
    expect(config).not.toHaveProperty('imagesPerMinuteSource');
    expect((config.routes as unknown[])[0]).not.toHaveProperty('imagesPerMinute');
  });

  it('does not enforce OpenAI retirements on a gateway', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'k',
      OPENAI_BASE_URL: 'https://gateway.example/v1',
    });
    expect(config.routes[0]?.enforceRetirements).toBe(false);
  });

  it.each([
    [{ RENDERMILL_TIER: 'free' }, 'RENDERMILL_TIER: the free tier cannot use the Images API'],
    [{ RENDERMILL_TIER: '7' }, 'RENDERMILL_TIER: must be a usage tier, 1–5'],
    [{ RENDERMILL_IMAGES_PER_MINUTE: '-3' }, 'RENDERMILL_IMAGES_PER_MINUTE'],
    [{ RENDERMILL_TOKENS_PER_MINUTE: '1.5' }, 'RENDERMILL_TOKENS_PER_MINUTE'],
    [{ RENDERMILL_LIMIT_MINUTE_MS: '500' }, 'RENDERMILL_LIMIT_MINUTE_MS'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL'],
    [
      { AWS_ACCESS_KEY_ID: 'a' },
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together',
    ],
    [{ AWS_ENDPOINT_URL_S3: 'http://minio:9000' }, 'AWS_ENDPOINT_URL_S3 is set'],
    [{ RENDERMILL_API_KEYS: 'acme' }, 'expected tenant=key pairs'],
    [{ RENDERMILL_API_KEYS: 'acme=short' }, 'shorter than 16 characters'],
    [{ OPENAI_BASE_URL: 'https://gw.example/v1' }, 'OPENAI_API_KEY is needed'],
    [{ PORT: 'eighty' }, 'PORT'],
  ])('refuses %o with a readable message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('lists every problem at once', () => {
    try {
      loadConfig({ RENDERMILL_TIER: 'free', PORT: 'x' });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(
        /RENDERMILL_TIER[\s\S]*PORT|PORT[\s\S]*RENDERMILL_TIER/,
      );
    }
  });
});
