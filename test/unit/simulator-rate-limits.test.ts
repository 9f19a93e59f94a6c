import { describe, expect, it } from 'vitest';
import { knobsSchema, type SimulatorKnobs } from '../../infra/simulator/knobs.js';
import { rateLimitExceeded, rateLimitHeaders } from '../../infra/simulator/rate-headers.js';
import { RateLimits } from '../../infra/simulator/rate-limits.js';
import {
  BUCKET_GRACE_MS,
  createWindow,
  windowSize,
  type LimitShape,
} from '../../infra/simulator/rate-window.js';
import { SimulatorState } from '../../infra/simulator/simulator-state.js';

/** The simulator's rate limits on a fake clock: exact allowances without sleeping. */

const window = (shape: LimitShape, perMinute: number, windowMs = 1000, minuteMs = 60_000) =>
  createWindow({ shape, perMinute, windowMs, minuteMs }, 0);

/** Takes one unit at a time at `now` until refused; how many were taken. */
function drain(take: (now: number) => { ok: boolean }, now: number): number {
  let taken = 0;
  while (take(now).ok) taken++;
  return taken;
}

/** A clock a test moves by hand. */
function fakeClock(start = 0) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

const knobs = (k: Partial<SimulatorKnobs> = {}) => knobsSchema.parse(k);

describe('windowSize', () => {
  it('allows floor(limit × window / minute) per window', () => {
    expect(windowSize(600, 1000, 60_000)).toEqual({ allowance: 10, windowMs: 1000 });
    expect(windowSize(500, 1000, 60_000)).toEqual({ allowance: 8, windowMs: 1000 });
    expect(windowSize(600, 60_000, 60_000)).toEqual({ allowance: 600, windowMs: 60_000 });
  });

  it('stretches a window that would hold less than one to ceil(minute / limit), holding one', () => {
    expect(windowSize(5, 1000, 60_000)).toEqual({ allowance: 1, windowMs: 12_000 });
    expect(windowSize(7, 1000, 60_000)).toEqual({ allowance: 1, windowMs: 8572 });
  });
});

describe('fixed windows', () => {
  it('admit the allowance per wall-clock window, then refuse until the next one', () => {
    const w = window('fixed', 600); // 10 per 1 s window
    expect(drain((now) => w.take(1, now), 5_200)).toBe(10);
    expect(w.take(1, 5_999)).toEqual({ ok: false, waitMs: 1 });
    expect(w.remaining(5_999)).toBe(0);
    expect(w.msUntilFull(5_500)).toBe(500);
    // The next window starts at 6000 whatever time the first request came.
    expect(drain((now) => w.take(1, now), 6_000)).toBe(10);
    expect(w.msUntilFull(7_000)).toBe(0);
  });

  it('let twice the allowance through across a window edge', () => {
    const w = window('fixed', 600);
    expect(drain((now) => w.take(1, now), 999)).toBe(10);
    expect(drain((now) => w.take(1, now), 1000)).toBe(10);
  });
});

describe('sliding windows', () => {
  it('refuse until the oldest accepted take leaves the window', () => {
    const w = window('sliding', 600); // 10 per any 1 s
    for (let i = 0; i < 10; i++) expect(w.take(1, i * 100).ok).toBe(true);
    // At 950 the window (−50, 950] holds all ten; the first (at 0) leaves at 1000.
    expect(w.take(1, 950)).toEqual({ ok: false, waitMs: 50 });
    expect(w.take(1, 1000).ok).toBe(true);
    expect(w.take(1, 1000)).toEqual({ ok: false, waitMs: 100 });
    expect(w.remaining(1000)).toBe(0);
    expect(w.msUntilFull(1000)).toBe(1000); // the take at 1000 leaves at 2000
  });

  it('wait for as many old takes to leave as a heavy request needs', () => {
    const w = window('sliding', 600);
    expect(w.take(4, 0).ok).toBe(true);
    expect(w.take(4, 300).ok).toBe(true);
    expect(w.take(4, 500)).toEqual({ ok: false, waitMs: 500 }); // 2 left; needs the take at 0 gone
    expect(w.take(4, 1000).ok).toBe(true);
  });
});

describe('buckets', () => {
  it('hold one window and refill at limit / minute, with the early-arrival grace', () => {
    const w = window('bucket', 600); // 10, one back every 100 ms
    expect(drain((now) => w.take(1, now), 0)).toBe(10);
    expect(w.take(1, 50)).toEqual({ ok: false, waitMs: 50 - BUCKET_GRACE_MS });
    expect(w.take(1, 100 - BUCKET_GRACE_MS).ok).toBe(true);
    // In 1 s after the burst, ten more: the refill rate, not another window's worth at once.
    let taken = 0;
    for (let t = 100; t <= 1095; t += 5) if (w.take(1, t).ok) taken++;
    expect(taken).toBe(10);
    expect(w.msUntilFull(2_200)).toBe(0);
    expect(w.remaining(2_200)).toBe(10);
  });

  it('keep today’s default: one second’s worth', () => {
    const w = window('bucket', 60_000);
    expect(w.allowance).toBe(1000);
    expect(w.windowMs).toBe(1000);
  });
});

describe.each(['bucket', 'sliding', 'fixed'] as const)('every shape (%s)', (shape) => {
  it('refuses a request heavier than the allowance as never fitting', () => {
    const w = window(shape, 600);
    expect(w.take(11, 0)).toEqual({ ok: false, waitMs: Infinity });
    expect(w.remaining(0)).toBe(10);
  });

  it('runs 5 per minute with a stretched window of 12 s holding one', () => {
    const w = window(shape, 5);
    expect(w.allowance).toBe(1);
    expect(w.take(1, 0).ok).toBe(true);
    expect(w.take(1, 6_000).ok).toBe(false);
    expect(w.take(1, 12_000).ok).toBe(true);
  });

  it('scales with minuteMs: 5 per 1 s "minute" over 200 ms windows is one per 200 ms', () => {
    const w = window(shape, 5, 200, 1000);
    expect([w.allowance, w.windowMs]).toEqual([1, 200]);
    expect(w.take(1, 0).ok).toBe(true);
    expect(w.take(1, 100).ok).toBe(false);
    expect(w.take(1, 200).ok).toBe(true);
  });
});

describe('RateLimits', () => {
  it('takes from every dimension or from none, naming the one that refused', () => {
    const clock = fakeClock();
    const limits = new RateLimits(
      knobs({ imagesPerMinute: 600, tokensPerMinute: 300_000, limitShape: 'fixed' }),
      clock.now,
    ); // 10 images, 5000 tokens per second
    expect(limits.take('gpt-image-1', { requests: 1, images: 1, tokens: 4_200 }).ok).toBe(true);
    const heavy = limits.take('gpt-image-1', { requests: 1, images: 1, tokens: 4_200 });
    expect(heavy.ok).toBe(false);
    if (!heavy.ok) expect(heavy.refusal).toMatchObject({ dimension: 'tokens', allowance: 5000 });
    // The refused request took no image: 9 still there, and a light request passes.
    expect(limits.view('gpt-image-1').images?.remaining).toBe(9);
    expect(limits.take('gpt-image-1', { requests: 1, images: 1, tokens: 300 }).ok).toBe(true);
    expect(limits.view('gpt-image-1')).toMatchObject({
      images: { perMinute: 600, remaining: 8 },
      tokens: { perMinute: 300_000, remaining: 500 },
    });
    expect(limits.view('gpt-image-1').requests).toBeUndefined();
  });

  it('names the dimension with the longest wait', () => {
    const clock = fakeClock();
    const limits = new RateLimits(
      knobs({
        imagesPerMinute: 60,
        requestsPerMinute: 120,
        limitShape: 'sliding',
        limitWindowMs: 1000,
      }),
      clock.now,
    ); // 1 image and 2 requests per second
    expect(limits.take('m', { requests: 1, images: 1, tokens: 0 }).ok).toBe(true);
    clock.t = 400;
    const second = limits.take('m', { requests: 1, images: 1, tokens: 0 });
    expect(second).toMatchObject({ ok: false, refusal: { dimension: 'images', waitMs: 600 } });
  });

  it('gives a model in modelLimits its own counters, falling back to the global knobs', () => {
    const clock = fakeClock();
    const limits = new RateLimits(
      knobs({
        imagesPerMinute: 60,
        tokensPerMinute: 600_000,
        modelLimits: { 'gpt-image-1': { imagesPerMinute: 120 } },
      }),
      clock.now,
    );
    const one = { requests: 1, images: 1, tokens: 100 };
    expect(limits.take('dall-e-3', one).ok).toBe(true);
    expect(limits.take('dall-e-2', one).ok).toBe(false); // shares the global 1 per second
    expect(limits.take('gpt-image-1', one).ok).toBe(true); // its own 2 per second
    expect(limits.take('gpt-image-1', one).ok).toBe(true);
    expect(limits.take('gpt-image-1', one).ok).toBe(false);
    expect(limits.view('gpt-image-1')).toMatchObject({
      images: { perMinute: 120 },
      tokens: { perMinute: 600_000, remaining: 10_000 - 200 },
    });
  });

  it('starts a window afresh when its knobs change, and keeps the others', () => {
    const clock = fakeClock();
    const state = new SimulatorState({ imagesPerMinute: 600, tokensPerMinute: 60_000 }, clock.now);
    state.limits.take('m', { requests: 1, images: 5, tokens: 500 });
    state.setKnobs({ tokensPerMinute: 120_000 });
    expect(state.limits.view('m')).toMatchObject({
      images: { remaining: 5 },
      tokens: { remaining: 2000 },
    });
    state.setKnobs({ latencyMs: 1 });
    expect(state.limits.view('m').images?.remaining).toBe(5);
    state.setKnobs({ limitShape: 'sliding' });
    expect(state.limits.view('m').images?.remaining).toBe(10);
    state.limits.take('m', { requests: 1, images: 5, tokens: 0 });
    state.reset();
    expect(state.limits.view('m').images?.remaining).toBe(10);
  });
});

describe('maxImagesInWindow', () => {
  it('is the most images accepted within any window of limitWindowMs, per model', () => {
    const clock = fakeClock(10_000);
    const state = new SimulatorState({ imagesPerMinute: 0 }, clock.now);
    for (const [t, n] of [
      [10_000, 3],
      [10_500, 4],
      [11_000, 2], // the take at 10 000 has left: 4 + 2
      [11_400, 1], // 4 + 2 + 1
    ] as const) {
      clock.t = t;
      state.acceptedByLimit('gpt-image-1', n);
    }
    state.acceptedByLimit('dall-e-2', 1);
    expect(state.stats.maxImagesInWindow).toEqual({ 'gpt-image-1': 7, 'dall-e-2': 1 });
    state.reset();
    expect(state.stats.maxImagesInWindow).toEqual({});
  });
});

describe('rate headers', () => {
  const view = {
    images: { perMinute: 600, remaining: 7, msUntilFull: 300 },
    tokens: { perMinute: 300_000, remaining: 1234, msUntilFull: 1500 },
  };

  it('send each family and field asked for; the requests family reports the images limit', () => {
    expect(rateLimitHeaders(view, knobs().rateHeaders)).toEqual({
      'x-ratelimit-limit-requests': '600',
      'x-ratelimit-remaining-requests': '7',
      'x-ratelimit-reset-requests': '300ms',
      'x-ratelimit-limit-images': '600',
      'x-ratelimit-remaining-images': '7',
      'x-ratelimit-reset-images': '300ms',
      'x-ratelimit-limit-tokens': '300000',
      'x-ratelimit-remaining-tokens': '1234',
      'x-ratelimit-reset-tokens': '1.5s',
    });
    expect(
      rateLimitHeaders(view, { families: ['tokens'], fields: ['remaining', 'limit'] }),
    ).toEqual({ 'x-ratelimit-limit-tokens': '300000', 'x-ratelimit-remaining-tokens': '1234' });
    expect(rateLimitHeaders(view, { families: [], fields: ['limit'] })).toEqual({});
    // A family whose limit is 0 (unlimited) sends nothing.
    expect(rateLimitHeaders({ images: view.images }, knobs().rateHeaders)).not.toHaveProperty(
      'x-ratelimit-limit-tokens',
    );
  });

  it('on a 429 leave the resets to retryHeaders', () => {
    const refusal = {
      dimension: 'tokens' as const,
      waitMs: 800,
      weight: 4000,
      allowance: 5000,
      perMinute: 300_000,
      view,
      rateHeaders: knobs().rateHeaders,
    };
    const all = rateLimitExceeded({ ...refusal, retryHeaders: 'all' });
    expect(all.message).toMatch(/^Rate limit reached for tokens per minute: limit 300000\./);
    expect(all.headers).toMatchObject({
      'x-ratelimit-reset-requests': '800ms',
      'x-ratelimit-reset-tokens': '1.5s',
      'retry-after-ms': '800',
      'retry-after': '1',
    });
    const msOnly = rateLimitExceeded({ ...refusal, retryHeaders: 'retry-after-ms' });
    expect(Object.keys(msOnly.headers).filter((h) => h.startsWith('x-ratelimit-reset'))).toEqual(
      [],
    );
    const never = rateLimitExceeded({ ...refusal, waitMs: Infinity, retryHeaders: 'none' });
    expect(never.message).toMatch(/never fit/);
    expect(never.headers).not.toHaveProperty('retry-after');
  });
});
