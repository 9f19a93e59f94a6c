import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  apiKeyList,
  booleanFlag,
  durationMs,
  durationSeconds,
  envVariable,
  fallbackAccountList,
  jsonVariable,
  megabytesToBytes,
  monthlyBudgetByTenant,
  redisClusterSeeds,
  sizeInMegabytes,
  tcpPort,
  tenantList,
  usageTier,
  usdAmount,
  webhookSecretByTenant,
  wholeNumber,
} from '../../src/config/env-parsers.js';
import { generateWebhookSecret } from '../../src/config/webhook-secret-format.js';

/** The messages a parser gives for `raw`, or [] when it takes it. */
function problems(schema: z.ZodType, raw: unknown): string[] {
  const parsed = schema.safeParse(raw);
  return parsed.success ? [] : parsed.error.issues.map((issue) => issue.message);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('envVariable', () => {
  it('treats an empty value as unset, so that the default applies', () => {
    const port = envVariable(tcpPort.default(8080));
    expect(port.parse(undefined)).toBe(8080);
    expect(port.parse('')).toBe(8080);
    expect(port.parse('9090')).toBe(9090);
    expect(envVariable(z.string().optional()).parse('')).toBeUndefined();
  });
});

describe('booleanFlag', () => {
  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('reads %s as %s', (raw, value) => {
    expect(booleanFlag.parse(raw)).toBe(value);
  });

  it('refuses anything else, capitals included', () => {
    expect(problems(booleanFlag, 'maybe')).toHaveLength(1);
    expect(problems(booleanFlag, 'TRUE')).toHaveLength(1);
  });
});

describe('numbers: durations, counts, ports, sizes, dollars', () => {
  it('reads whole milliseconds within bounds, the upper one only when given', () => {
    expect(durationMs(1000).parse('30000')).toBe(30_000);
    expect(durationMs(1000).parse(String(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(problems(durationMs(1000), '999')).toEqual(['Too small: expected number to be >=1000']);
    expect(problems(durationMs(0, 600_000), '600001')).toEqual([
      'Too big: expected number to be <=600000',
    ]);
    expect(problems(durationMs(1), '1.5')).toHaveLength(1);
    expect(problems(durationMs(1), 'soon')).toHaveLength(1);
  });

  it('reads whole seconds and whole numbers within bounds', () => {
    expect(durationSeconds(60, 3600).parse('60')).toBe(60);
    expect(problems(durationSeconds(60, 3600), '3601')).toHaveLength(1);
    expect(wholeNumber(0, 50).parse('0')).toBe(0);
    expect(problems(wholeNumber(1, 256), '0')).toHaveLength(1);
    expect(problems(wholeNumber(1, 256), '8.5')).toHaveLength(1);
  });

  it('reads a port, 0 included', () => {
    expect(tcpPort.parse('0')).toBe(0);
    expect(tcpPort.parse('65535')).toBe(65535);
    expect(problems(tcpPort, '65536')).toHaveLength(1);
    expect(problems(tcpPort, 'eighty')).toHaveLength(1);
  });

  it('reads sizes in MiB, fractions too, and turns them into bytes', () => {
    expect(sizeInMegabytes(1024).parse('0.5')).toBe(0.5);
    expect(problems(sizeInMegabytes(1024), '0')).toHaveLength(1);
    expect(problems(sizeInMegabytes(1024), '1025')).toHaveLength(1);
    expect(megabytesToBytes(32)).toBe(32 * 1024 * 1024);
    expect(megabytesToBytes(0.5)).toBe(512 * 1024);
    expect(megabytesToBytes(1 / 3)).toBe(Math.round((1024 * 1024) / 3));
  });

  it('reads a positive amount of dollars up to a million', () => {
    expect(usdAmount.parse('12.5')).toBe(12.5);
    expect(problems(usdAmount, '0')).toHaveLength(1);
    expect(problems(usdAmount, '1000001')).toHaveLength(1);
  });
});

describe('usageTier', () => {
  it('reads tiers 1–5 as numbers', () => {
    expect(usageTier.parse('1')).toBe(1);
    expect(usageTier.parse('5')).toBe(5);
  });

  it('says why the free tier is refused, and what a tier is otherwise', () => {
    expect(problems(usageTier, 'free')[0]).toMatch(/free tier cannot use the Images API/);
    expect(problems(usageTier, '0')[0]).toMatch(/free tier cannot use the Images API/);
    expect(problems(usageTier, '7')).toEqual(['must be a usage tier, 1–5']);
  });
});

describe('lists', () => {
  it('reads tenant names separated by commas, spaces and empty items dropped', () => {
    expect(tenantList.parse(' acme, ops.team ,,')).toEqual(['acme', 'ops.team']);
    expect(tenantList.parse('')).toEqual([]);
    expect(problems(tenantList, 'acme,two words')).toEqual([
      'expected tenant names separated by commas (letters, digits, _ . -), got "two words"',
    ]);
  });

  it('reads tenant=key pairs, hashing plain keys and keeping sha256: ones', () => {
    const digest = 'AB'.repeat(32);
    expect(apiKeyList.parse(`acme=acme-key-0123456789, ops=sha256:${digest},`)).toEqual([
      { tenant: 'acme', sha256: sha256('acme-key-0123456789') },
      { tenant: 'ops', sha256: digest.toLowerCase() },
    ]);
  });

  it.each([
    ['acme', 'expected tenant=key pairs'],
    ['=key-0123456789abcdef', 'expected tenant=key pairs'],
    ['bad tenant=key-0123456789abcdef', 'expected tenant=key pairs'],
    ['acme=sha256:1234', 'must be sha256: followed by 64 hex digits'],
    ['acme=short', 'shorter than 16 characters'],
  ])('refuses API keys %j', (raw, message) => {
    expect(problems(apiKeyList, raw)).toEqual([expect.stringContaining(message)]);
  });
});

describe('redisClusterSeeds (host:port lists)', () => {
  it('reads host:port seeds, IPv6 in brackets included', () => {
    expect(redisClusterSeeds.parse('10.0.0.1:7000, redis-2:7001,[::1]:7002,')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
  });

  it('takes the first credentials and any rediss:// as the whole cluster’s', () => {
    expect(redisClusterSeeds.parse('redis://a:b@n1:1,rediss://c:d%40e@n2:2')).toEqual({
      nodes: [
        { host: 'n1', port: 1 },
        { host: 'n2', port: 2 },
      ],
      username: 'a',
      password: 'b',
      tls: true,
    });
  });

  it.each([
    ['cache-1', 'expected host:port seeds separated by commas, got "cache-1"'],
    ['http://cache-1:6379', 'expected host:port seeds'],
    ['cache-1:port', 'expected host:port seeds'],
    [' , ', 'expected at least one host:port seed'],
  ])('refuses %j', (raw, message) => {
    expect(problems(redisClusterSeeds, raw)).toEqual([expect.stringContaining(message)]);
  });
});

describe('JSON variables', () => {
  const pair = jsonVariable(z.object({ a: z.number(), b: z.string() }));

  it('parses the JSON and checks it with its schema', () => {
    expect(pair.parse('{"a": 1, "b": "x"}')).toEqual({ a: 1, b: 'x' });
  });

  it('says when the value is not JSON', () => {
    expect(problems(pair, '{a: 1')).toEqual([
      expect.stringMatching(/^not JSON \(at character \d+\): its content is not repeated/),
    ]);
  });

  it('reports each problem at its place in the JSON, or one hint when given', () => {
    expect(problems(pair, '{"a": "1", "b": 2}')).toEqual([
      expect.stringMatching(/^\[a\]: /),
      expect.stringMatching(/^\[b\]: /),
    ]);
    const hinted = jsonVariable(z.array(z.number()), 'expected a list of numbers');
    expect(problems(hinted, '["x", "y"]')).toEqual(['expected a list of numbers']);
  });

  it('reads fallback accounts, with a tier, limits of their own, or both', () => {
    const gateway = { name: 'gw', base_url: 'https://gw.example/v1', api_key_env: 'GW_KEY' };
    expect(fallbackAccountList.parse(JSON.stringify([{ ...gateway, tier: 3 }]))).toEqual([
      { ...gateway, tier: 3 },
    ]);
    // The tier still gives the figures the account's own limits leave out (tokens, per model).
    expect(
      fallbackAccountList.parse(JSON.stringify([{ ...gateway, tier: 2, images_per_minute: 100 }])),
    ).toEqual([{ ...gateway, tier: 2, images_per_minute: 100 }]);
    expect(problems(fallbackAccountList, JSON.stringify([{ ...gateway, tier: 'free' }]))).toEqual([
      expect.stringMatching(/^\[0\.tier\]: the free tier cannot use the Images API/),
    ]);
    expect(
      problems(fallbackAccountList, JSON.stringify([{ ...gateway, api_key_env: 'gw-key' }])),
    ).toEqual(['[0.api_key_env]: an environment variable name']);
    expect(problems(fallbackAccountList, JSON.stringify([{ ...gateway, extra: 1 }]))).toHaveLength(
      1,
    );
  });

  it('reads monthly budgets by tenant, with one message showing the shape', () => {
    expect(monthlyBudgetByTenant.parse('{"acme": 50.5}')).toEqual({ acme: 50.5 });
    expect(problems(monthlyBudgetByTenant, '{"acme": -5}')).toEqual([
      'expected a JSON object of tenant → monthly budget in USD, e.g. {"acme": 50}',
    ]);
  });

  it('reads webhook secrets by tenant, naming the tenant whose secret is malformed', () => {
    const secret = generateWebhookSecret();
    expect(webhookSecretByTenant.parse(JSON.stringify({ acme: secret }))).toEqual({
      acme: secret,
    });
    expect(problems(webhookSecretByTenant, JSON.stringify({ acme: 'hunter2' }))).toEqual([
      expect.stringMatching(/^\[acme\]: /),
    ]);
  });
});
