import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tokenUsage } from '../../infra/simulator/image-answer.js';
import type { ImageRequest } from '../../infra/simulator/request-checks.js';
import {
  startSimulator,
  type RunningSimulator,
  type SimulatorKnobs,
} from '../../infra/simulator/server.js';
import { ModelRegistry } from '../../src/models/model-registry.js';

/** The simulator's rate limits over HTTP: shapes, dimensions, per-model counters and headers. */
let sim: RunningSimulator;
const registry = ModelRegistry.load();

beforeAll(async () => {
  sim = await startSimulator({ imagesPerMinute: 0 });
});
afterAll(async () => {
  await sim?.stop();
});
/** Every rate knob back to its default (the defaults of today's callers), and fresh counters. */
beforeEach(() => {
  sim.setKnobs({
    imagesPerMinute: 0,
    tokensPerMinute: 0,
    requestsPerMinute: 0,
    minuteMs: 60_000,
    limitShape: 'bucket',
    limitWindowMs: 1000,
    modelLimits: {},
    rateHeaders: {
      families: ['requests', 'images', 'tokens'],
      fields: ['limit', 'remaining', 'reset'],
    },
    retryHeaders: 'all',
  });
  sim.reset();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: { error?: { message: string; code: string } };
}

/** One generation, as raw HTTP so the headers can be read. */
async function generate(body: Record<string, unknown> = {}): Promise<Answer> {
  const response = await fetch(`${sim.url}/images/generations`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-image-2',
      prompt: 'a red ceramic mug',
      size: '256x256',
      quality: 'low',
      ...body,
    }),
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: (await response.json()) as Answer['body'],
  };
}

const rateHeaderNames = (answer: Answer) =>
  Object.keys(answer.headers)
    .filter((name) => name.startsWith('x-ratelimit-'))
    .sort();

/** The tokens the simulator weighs (and bills) a gpt-image-2 request at. */
function tokensOf(quality: string, prompt = 'a red ceramic mug'): number {
  const request: ImageRequest = { model: 'gpt-image-2', prompt, n: 1, quality, images: [] };
  const usage = tokenUsage(registry.get('gpt-image-2')!, request, '256x256')!;
  return usage.text + usage.image + usage.output;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('rate headers', () => {
  it('carry every family with a limit by default; requests reports the images limit', async () => {
    sim.setKnobs({ imagesPerMinute: 600 });
    const answer = await generate();
    expect(answer.status).toBe(200);
    expect(answer.headers).toMatchObject({
      'x-ratelimit-limit-requests': '600',
      'x-ratelimit-remaining-requests': '9',
      'x-ratelimit-limit-images': '600',
      'x-ratelimit-remaining-images': '9',
    });
    expect(answer.headers['x-ratelimit-reset-images']).toMatch(/^\d+ms$/);
    expect(rateHeaderNames(answer).some((name) => name.endsWith('-tokens'))).toBe(false);
  });

  it('report each dimension’s own limit once it has one', async () => {
    sim.setKnobs({ imagesPerMinute: 600, requestsPerMinute: 1200, tokensPerMinute: 600_000 });
    const answer = await generate();
    expect(answer.headers).toMatchObject({
      'x-ratelimit-limit-requests': '1200',
      'x-ratelimit-remaining-requests': '19',
      'x-ratelimit-limit-tokens': '600000',
      'x-ratelimit-remaining-tokens': String(10_000 - tokensOf('low')),
    });
  });

  it('are only the families and fields rateHeaders names, on 200s and errors alike', async () => {
    sim.setKnobs({
      imagesPerMinute: 600,
      tokensPerMinute: 600_000,
      rateHeaders: { families: ['images'], fields: ['remaining'] },
    });
    expect(rateHeaderNames(await generate())).toEqual(['x-ratelimit-remaining-images']);
    const invalid = await generate({ size: '3x3' });
    expect(invalid.status).toBe(400);
    expect(rateHeaderNames(invalid)).toEqual(['x-ratelimit-remaining-images']);

    sim.setKnobs({ rateHeaders: { families: [], fields: ['limit', 'remaining', 'reset'] } });
    expect(rateHeaderNames(await generate())).toEqual([]);
    expect(rateHeaderNames(await generate({ size: '3x3' }))).toEqual([]);
  });

  it('leave a 429’s resets to retryHeaders', async () => {
    sim.setKnobs({ imagesPerMinute: 60, rateHeaders: { families: [], fields: ['reset'] } });
    await generate();
    const refused = await generate();
    expect(refused.status).toBe(429);
    // No rate headers asked for, but the wait hints retryHeaders keeps are still there.
    expect(rateHeaderNames(refused)).toEqual(['x-ratelimit-reset-requests']);
    expect(refused.headers['retry-after-ms']).toBeDefined();
  });
});

describe('dimensions', () => {
  it('tokens refuse a heavy high-quality request while images still have room', async () => {
    const high = tokensOf('high');
    // A second's worth of tokens holds one high-quality request and a little more.
    const tokensPerMinute = Math.ceil(((high + tokensOf('low') * 2) * 60_000) / 1000);
    sim.setKnobs({ imagesPerMinute: 600, tokensPerMinute, limitShape: 'fixed' });
    // Start early in a fixed window, so the three requests share it.
    while (Date.now() % 1000 > 300) await sleep(20);
    expect((await generate({ quality: 'high' })).status).toBe(200);
    const refused = await generate({ quality: 'high' });
    expect(refused.status).toBe(429);
    expect(refused.body.error?.message).toMatch(/tokens per minute/);
    expect(Number(refused.headers['x-ratelimit-remaining-images'])).toBe(9);
    expect((await generate({ quality: 'low' })).status).toBe(200);
    expect(sim.stats().rateLimitedBy).toEqual({ requests: 0, images: 0, tokens: 1 });
    expect(sim.stats().billedTokens.output).toBeGreaterThan(0);
  });

  it('a request over a whole window of tokens can never fit, and says so', async () => {
    // A second's worth of tokens is one short of a high-quality request.
    sim.setKnobs({ imagesPerMinute: 600, tokensPerMinute: (tokensOf('high') - 1) * 60 });
    const refused = await generate({ quality: 'high' });
    expect(refused.status).toBe(429);
    expect(refused.body.error?.message).toMatch(/never fit/);
    // Models priced per image weigh no tokens.
    expect((await generate({ model: 'dall-e-2', quality: undefined })).status).toBe(200);
  });

  it('requests count one per request, whatever n', async () => {
    sim.setKnobs({ imagesPerMinute: 6000, requestsPerMinute: 120 }); // 2 requests a second
    expect((await generate({ n: 4 })).status).toBe(200);
    expect((await generate({ n: 4 })).status).toBe(200);
    const refused = await generate({ n: 1 });
    expect(refused.body.error?.message).toMatch(/requests per minute: limit 120/);
    expect(sim.stats().rateLimitedBy.requests).toBe(1);
  });

  it('a model in modelLimits has its own counters', async () => {
    sim.setKnobs({ imagesPerMinute: 60, modelLimits: { 'dall-e-2': { imagesPerMinute: 120 } } });
    const dalle = { model: 'dall-e-2', quality: undefined, response_format: 'b64_json' };
    expect((await generate()).status).toBe(200);
    expect((await generate()).status).toBe(429);
    const own = await generate(dalle);
    expect(own.status).toBe(200);
    expect(own.headers['x-ratelimit-limit-images']).toBe('120');
    expect((await generate(dalle)).status).toBe(200);
    expect((await generate(dalle)).status).toBe(429);
  });
});

describe('shapes over real time', () => {
  it('fixed: minuteMs shrinks the minute; the allowance per clock window, then 429 until the next', async () => {
    // 10 per 1 s "minute" over 500 ms windows: 5 per window.
    sim.setKnobs({ imagesPerMinute: 10, minuteMs: 1000, limitWindowMs: 500, limitShape: 'fixed' });
    while (Date.now() % 500 > 100) await sleep(10);
    const first = await Promise.all(Array.from({ length: 6 }, () => generate()));
    expect(first.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 429]);
    const refused = first.find((a) => a.status === 429)!;
    expect(refused.body.error?.message).toMatch(/images per minute: limit 10\b/);
    expect(Number(refused.headers['retry-after-ms'])).toBeLessThanOrEqual(500);
    await sleep(Number(refused.headers['retry-after-ms']) + 5);
    expect((await generate()).status).toBe(200);
  });

  it('maxImagesInWindow sees a bucket let more than its allowance through a sliding window', async () => {
    sim.setKnobs({ imagesPerMinute: 600 }); // bucket of 10, one back every 100 ms
    await generate({ n: 10 });
    await sleep(350);
    expect((await generate({ n: 3 })).status).toBe(200);
    expect(sim.stats().maxImagesInWindow['gpt-image-2']).toBe(13);

    sim.setKnobs({ limitShape: 'sliding' });
    sim.reset();
    await generate({ n: 10 });
    await sleep(350);
    expect((await generate({ n: 3 })).status).toBe(429);
    expect(sim.stats().maxImagesInWindow).toEqual({ 'gpt-image-2': 10 });
  });
});

describe('knobs over HTTP', () => {
  const post = (knobs: unknown) =>
    fetch(`${sim.origin}/_sim/knobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(knobs),
    });

  it('change only what the body names', async () => {
    sim.setKnobs({ imagesPerMinute: 123, limitShape: 'sliding' });
    const response = await post({
      tokensPerMinute: 1000,
      modelLimits: { x: { imagesPerMinute: 5 } },
    });
    expect(response.status).toBe(200);
    expect(sim.knobs()).toMatchObject({
      imagesPerMinute: 123,
      limitShape: 'sliding',
      tokensPerMinute: 1000,
      modelLimits: { x: { imagesPerMinute: 5 } },
    } satisfies Partial<SimulatorKnobs>);
  });

  it('refuse a bad shape or header family naming it', async () => {
    const shape = await post({ limitShape: 'leaky' });
    expect(shape.status).toBe(400);
    expect(JSON.stringify(await shape.json())).toMatch(/limitShape/);
    const family = await post({ rateHeaders: { families: ['pixels'] } });
    expect(family.status).toBe(400);
    expect(JSON.stringify(await family.json())).toMatch(/rateHeaders/);
  });
});
