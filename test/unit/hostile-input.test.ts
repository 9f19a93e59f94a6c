import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cappedList } from '../../src/request-validation.js';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { ModelRegistry } from '../../src/models/model-registry.js';
import { controlCharacterProblem } from '../../src/models/control-characters.js';
import { resolveItem } from '../../src/batches/validate-item.js';
import { checkPublicUrl, guardedLookup, PrivateUrlError } from '../../src/net/url-guard.js';
import { cronIntervalProblem } from '../../src/schedules/schedule-quotas.js';

/** The configuration's error message for `env`, which must be refused. */
function configError(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('hostile-input quotas in the configuration', () => {
  it('has documented defaults', () => {
    const config = loadConfig({});
    expect(config.schedules).toEqual({ maxPerTenant: 100, minIntervalMs: 60_000 });
    expect(config.maxUploadBytesPerRequest).toBe(64 * 1024 * 1024);
  });

  it('reads each variable, and refuses nonsense', () => {
    const config = loadConfig({
      RENDERMILL_MAX_SCHEDULES_PER_TENANT: '5',
      RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: '3600',
      RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST: '1.5',
    });
    expect(config.schedules).toEqual({ maxPerTenant: 5, minIntervalMs: 3_600_000 });
    expect(config.maxUploadBytesPerRequest).toBe(1_572_864);
    expect(configError({ RENDERMILL_MAX_SCHEDULES_PER_TENANT: '0' })).toMatch(
      /RENDERMILL_MAX_SCHEDULES_PER_TENANT/,
    );
    expect(configError({ RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: 'often' })).toMatch(
      /RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS/,
    );
    expect(configError({ RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST: '-1' })).toMatch(
      /RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST/,
    );
  });
});

describe('configuration errors keep secrets to themselves', () => {
  const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA';

  it('a malformed RENDERMILL_WEBHOOK_SECRETS is reported without any of its content', () => {
    for (const raw of [
      `{"acme": whsec_${secret}}`,
      `{"acme": "whsec_${secret}`,
      `whsec_${secret}`,
      `{"acme": "whsec_${secret}",}`,
    ]) {
      const message = configError({ RENDERMILL_WEBHOOK_SECRETS: raw });
      expect(message).toMatch(/RENDERMILL_WEBHOOK_SECRETS: not JSON/);
      expect(message).not.toContain('whsec');
      expect(message).not.toContain(secret.slice(0, 6));
    }
  });

  it('an API key given to two tenants is refused, naming both tenants and not the key', () => {
    const key = 'shared-key-0123456789abcdef';
    const message = configError({
      RENDERMILL_API_KEYS: `acme=${key},ops=own-key-0123456789,globex=${key}`,
    });
    expect(message).toMatch(/"acme" and "globex" are given the same key/);
    expect(message).not.toContain(key);
    // Hashed or not, a key is the same key.
    const digest = loadConfig({ RENDERMILL_API_KEYS: `acme=${key}` }).apiKeys[0]!.sha256;
    expect(configError({ RENDERMILL_API_KEYS: `acme=${key},globex=sha256:${digest}` })).toMatch(
      /"acme" and "globex"/,
    );
    // The same tenant twice with one key is harmless.
    expect(loadConfig({ RENDERMILL_API_KEYS: `acme=${key},acme=${key}` }).apiKeys).toHaveLength(2);
  });

  it('a malformed RENDERMILL_API_KEYS pair is not repeated (all of it may be a key)', () => {
    const message = configError({
      RENDERMILL_API_KEYS: 'acme=ok-key-0123456789abc,PLAINSECRETKEY12345',
    });
    expect(message).toMatch(/pair 2 is not one/);
    expect(message).not.toContain('PLAINSECRETKEY');
  });

  it('a bad Redis Cluster seed is shown without its password', () => {
    const message = configError({ REDIS_CLUSTER_NODES: 'redis://user:hunter2secret@node-a' });
    expect(message).toMatch(/REDIS_CLUSTER_NODES/);
    expect(message).not.toContain('hunter2secret');
  });
});

describe('URL guard refusals do not say what a name resolves to', () => {
  it('checkPublicUrl: "resolves to a private address", without the address', async () => {
    const name = hostname();
    const error = await checkPublicUrl(`https://${name}/hook`, {
      allowPrivate: false,
      field: 'webhook_url',
      code: 'invalid_webhook_url',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrivateUrlError);
    const { message } = error as Error;
    expect(message).toMatch(/resolves to a private address/);
    expect(message).not.toMatch(/\d+\.\d+\.\d+\.\d+|::1|[0-9a-f]{1,4}::?[0-9a-f]/i);
  });

  it('guardedLookup: the same at connection time', async () => {
    const error = await new Promise<Error>((resolve) =>
      guardedLookup('localhost', { all: true }, (e) => resolve(e as Error)),
    );
    expect(error.message).toMatch(/localhost resolves to a private address/);
    expect(error.message).not.toMatch(/127\.0\.0\.1|::1/);
  });
});

describe('control characters in prompts', () => {
  const registry = ModelRegistry.load();
  const problemsOf = (prompt: string) =>
    resolveItem(
      { id: 'a', prompt },
      0,
      {},
      {
        registry,
        defaultModel: 'gpt-image-2',
        enforceRetirements: false,
        today: new Date('2026-12-05T00:00:00Z'),
      },
    ).problems;

  it('refuses NUL, escape codes and DEL, naming the prompt field and the character', () => {
    expect(problemsOf('a red\u0000 mug')).toEqual([
      {
        field: 'items[0].prompt',
        message: expect.stringMatching(/control character U\+0000 at character 6/),
      },
    ]);
    expect(controlCharacterProblem('\u001b[31mred')).toMatch(/U\+001B/);
    expect(controlCharacterProblem('bell\u0007')).toMatch(/U\+0007/);
    expect(controlCharacterProblem('del\u007f')).toMatch(/U\+007F/);
  });

  it('accepts tabs, line breaks and any other unicode', () => {
    expect(problemsOf('a red mug,\tcentred\r\non white 🍵 ĉ 漢字 \u00a0')).toEqual([]);
  });
});

describe('cappedList', () => {
  it('names the first twenty values and counts the rest', () => {
    const columns = Array.from({ length: 100_000 }, (_, i) => `column_${i}`);
    const text = cappedList(columns);
    expect(text).toMatch(/^column_0, column_1, .* column_19 … and 99,980 more$/);
    expect(text.length).toBeLessThan(400);
  });

  it('cuts very long values, and lists short lists whole', () => {
    expect(cappedList(['x'.repeat(10_000)]).length).toBeLessThan(100);
    expect(cappedList(['a', 'b'], (v) => `{{${v}}}`)).toBe('{{a}}, {{b}}');
  });
});

describe('cronIntervalProblem', () => {
  const now = new Date('2026-12-05T10:00:00Z');
  const check = (cron: string, min = 60_000) =>
    cronIntervalProblem({ cron, timeZone: 'Europe/Berlin' }, min, now);

  it('refuses a cron that runs more often than the minimum, saying both', () => {
    expect(check('* * * * * *')).toMatch(/runs 1 second apart.*at most once every 1 minute/);
    expect(check('*/30 * * * * *')).toMatch(/30 seconds apart/);
    expect(check('*/5 * * * *', 600_000)).toMatch(/5 minutes apart.*10 minutes/);
  });

  it('looks past the first runs: close runs at one hour of the day are found', () => {
    // Once an hour, but twice in a row at 09:00:00 and 09:00:10.
    expect(check('0,10 0 9 * * *')).toMatch(/10 seconds apart/);
  });

  it('accepts crons at or above the minimum', () => {
    expect(check('* * * * *')).toBeUndefined();
    expect(check('0 * * * * *')).toBeUndefined();
    expect(check('0 9 * * 1')).toBeUndefined();
    expect(check('@hourly')).toBeUndefined();
  });
});

describe('cronIntervalProblem on sparse crons', () => {
  const now = new Date('2026-12-05T10:00:00Z');
  it('looks months ahead when the minimum is days: the 29th and 30th of a month', () => {
    const twoDays = 2 * 24 * 3600_000;
    const oddDaysAndThe30th = '0 0 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,30 * *';
    expect(cronIntervalProblem({ cron: oddDaysAndThe30th, timeZone: 'UTC' }, twoDays, now)).toMatch(
      /runs 1440 minutes apart/,
    );
  });

  it('finds close runs of a yearly cron', () => {
    expect(cronIntervalProblem({ cron: '0,10 0 9 1 1 *', timeZone: 'UTC' }, 60_000, now)).toMatch(
      /10 seconds apart/,
    );
  });
});
