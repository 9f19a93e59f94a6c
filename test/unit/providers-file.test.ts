import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { routeOffers } from '../../src/batches/route-offers.js';
import { ModelRegistry } from '../../src/models/model-registry.js';

/** RENDERMILL_PROVIDERS_FILE: routes as data, read into the configuration's routes. */
const dir = mkdtempSync(join(tmpdir(), 'rendermill-providers-'));
let files = 0;
function providersFile(yaml: string): string {
  const path = join(dir, `providers-${files++}.yaml`);
  writeFileSync(path, yaml);
  return path;
}
const KEYS = { OPENAI_API_KEY: 'sk-openai', AIMLAPI_KEY: 'aiml', REPLICATE_API_TOKEN: 'r8' };

const EXAMPLE = `
routing: cheapest
routes:
  - name: openai-main
    kind: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    tier: 3
    models:
      gpt-image-2: {}
  - name: aimlapi
    kind: openai
    base_url: https://api.aimlapi.com/v1
    api_key_env: AIMLAPI_KEY
    models:
      dall-e-2: { price_usd: 0.026, images_per_minute: 300 }
  - name: replicate
    kind: replicate
    base_url: https://api.replicate.com/v1
    api_key_env: REPLICATE_API_TOKEN
    models:
      flux-schnell: { remote: black-forest-labs/flux-schnell, price_usd: 0.003, images_per_minute: 600 }
`;

describe('the providers file', () => {
  it('reads the routes in order, each with its kind, key, tier and models', () => {
    const config = loadConfig({ ...KEYS, RENDERMILL_PROVIDERS_FILE: providersFile(EXAMPLE) });
    expect(config.routing).toBe('cheapest');
    expect(config.routes.map((r) => [r.name, r.kind, r.apiKey, r.enforceRetirements])).toEqual([
      ['openai-main', 'openai', 'sk-openai', true],
      ['aimlapi', 'openai', 'aiml', false],
      ['replicate', 'replicate', 'r8', false],
    ]);
    expect(config.routes[0]!.rateLimit).toMatchObject({ tier: 3 });
    expect(config.routes[1]!.models).toEqual({
      'dall-e-2': {
        remote: undefined,
        priceUsd: 0.026,
        imagesPerMinute: 300,
        tokensPerMinute: undefined,
      },
    });
    expect(config.routes[2]!.models?.['flux-schnell']).toMatchObject({
      remote: 'black-forest-labs/flux-schnell',
      priceUsd: 0.003,
    });
  });

  it('gives each route its price and limit per model, for estimates in any process', () => {
    const config = loadConfig({ ...KEYS, RENDERMILL_PROVIDERS_FILE: providersFile(EXAMPLE) });
    const offers = routeOffers(config.routes, ModelRegistry.load(), config.rateLimit);
    expect(offers('dall-e-2')).toEqual([
      // A gateway offers no Batch API unless its route says `batch_api: true`.
      {
        route: 'aimlapi',
        kind: 'openai',
        imagePriceMicros: 26_000,
        imagesPerMinute: 300,
        batch: undefined,
      },
    ]);
    // The registry's tier table when the route names no figure: gpt-image-2 at tier 3.
    // OpenAI's own API offers its Batch API by default: the model's batch price applies there.
    expect(offers('gpt-image-2')).toEqual([
      {
        route: 'openai-main',
        kind: 'openai',
        imagePriceMicros: undefined,
        imagesPerMinute: 50,
        batch: { imagePriceMicros: undefined },
      },
    ]);
    expect(offers('dall-e-3')).toEqual([]);
  });

  it('reads a gateway’s Batch API: on when it says so, with its queue limit and batch prices', () => {
    const yaml = [
      'routes:',
      '  - name: gateway',
      '    base_url: https://gw.test/v1',
      '    api_key_env: OPENAI_API_KEY',
      '    batch_api: true',
      '    batch_queue_tokens: 90000',
      '    models:',
      '      gpt-image-1: { price_usd: 0.02, batch_price_usd: 0.009 }',
    ].join('\n');
    const config = loadConfig({ ...KEYS, RENDERMILL_PROVIDERS_FILE: providersFile(yaml) });
    expect(config.routes[0]!.batch).toEqual({ queueTokens: 90_000 });
    expect(config.routes[0]!.models?.['gpt-image-1']?.batchPriceUsd).toBe(0.009);
    const offers = routeOffers(config.routes, ModelRegistry.load(), config.rateLimit);
    expect(offers('gpt-image-1')[0]!.batch).toEqual({ imagePriceMicros: 9_000 });
  });

  it('keeps today’s variables as the one-route case when there is no file', () => {
    const config = loadConfig({ OPENAI_API_KEY: 'sk-x', RENDERMILL_TIER: '2' });
    expect(config.routing).toBe('priority');
    expect(config.routes).toEqual([
      expect.objectContaining({ name: 'primary', kind: 'openai', rateLimit: { tier: 2 } }),
    ]);
    expect(config.routes[0]!.models).toBeUndefined();
  });

  it.each([
    [
      'a route without a key',
      'routes:\n  - name: a\n    base_url: https://x.test/v1\n    api_key_env: MISSING_KEY\n',
      /route "a": MISSING_KEY is not set/,
    ],
    [
      'a Batch API on a route that is not of kind openai',
      'routes:\n  - name: r\n    kind: replicate\n    base_url: https://x.test/v1\n    api_key_env: REPLICATE_API_TOKEN\n    batch_api: true\n    models:\n      flux-schnell: {}\n',
      /routes\.0\.batch_api: the Batch API is offered on routes of kind openai only/,
    ],
    [
      'an unknown kind',
      'routes:\n  - name: a\n    kind: midjourney\n    base_url: https://x.test/v1\n    api_key_env: OPENAI_API_KEY\n',
      /routes\.0\.kind/,
    ],
    [
      'a Replicate route without models',
      'routes:\n  - name: r\n    kind: replicate\n    base_url: https://x.test/v1\n    api_key_env: REPLICATE_API_TOKEN\n',
      /routes\.0\.models: a replicate route serves only the models it lists/,
    ],
    [
      'a name twice',
      'routes:\n  - name: a\n    base_url: https://x.test/v1\n    api_key_env: OPENAI_API_KEY\n  - name: a\n    base_url: https://y.test/v1\n    api_key_env: OPENAI_API_KEY\n',
      /routes\.1\.name: "a" twice/,
    ],
    [
      'a negative price',
      'routes:\n  - name: a\n    base_url: https://x.test/v1\n    api_key_env: OPENAI_API_KEY\n    models:\n      dall-e-2: { price_usd: -1 }\n',
      /routes\.0\.models\.dall-e-2\.price_usd/,
    ],
    [
      'an unknown routing',
      'routing: fastest\nroutes:\n  - name: a\n    base_url: https://x.test/v1\n    api_key_env: OPENAI_API_KEY\n',
      /routing/,
    ],
    [
      'the free tier',
      'routes:\n  - name: a\n    base_url: https://x.test/v1\n    api_key_env: OPENAI_API_KEY\n    tier: free\n',
      /routes\.0\.tier/,
    ],
    ['text that is not YAML', 'routes: [\n', /is not YAML/],
  ])('refuses %s, saying where', (_, yaml, message) => {
    expect(() => loadConfig({ ...KEYS, RENDERMILL_PROVIDERS_FILE: providersFile(yaml) })).toThrow(
      message,
    );
    expect(() => loadConfig({ ...KEYS, RENDERMILL_PROVIDERS_FILE: providersFile(yaml) })).toThrow(
      ConfigError,
    );
  });

  it('refuses a file that cannot be read, and fallbacks beside a file', () => {
    expect(() => loadConfig({ RENDERMILL_PROVIDERS_FILE: join(dir, 'none.yaml') })).toThrow(
      /RENDERMILL_PROVIDERS_FILE: cannot read/,
    );
    expect(() =>
      loadConfig({
        ...KEYS,
        RENDERMILL_PROVIDERS_FILE: providersFile(EXAMPLE),
        RENDERMILL_FALLBACKS: JSON.stringify([
          { name: 'gw', base_url: 'https://gw.test/v1', api_key_env: 'AIMLAPI_KEY' },
        ]),
      }),
    ).toThrow(/give the fallbacks there/);
  });
});
