import type { SimulatorStats } from '../../infra/simulator/server.js';

/**
 * How the provider counts its limit (the simulator's `limitShape` knob): a token bucket
 * refilled continuously, a sliding window, or wall-clock fixed windows.
 */
export const SHAPES = ['bucket', 'sliding', 'fixed'] as const;
export type LimitShape = (typeof SHAPES)[number];

/**
 * Which `x-ratelimit-{field}-{family}` headers every answer carries (the `rateHeaders` knob):
 * none; the limit only, under the requests name (what a provider that counts images but names
 * them requests sends); limit, remaining and reset for images; everything.
 */
export const HEADER_VARIANTS = {
  none: { families: [], fields: [] },
  requests: { families: ['requests'], fields: ['limit'] },
  images: { families: ['images'], fields: ['limit', 'remaining', 'reset'] },
  all: { families: ['requests', 'images', 'tokens'], fields: ['limit', 'remaining', 'reset'] },
} as const satisfies Record<string, RateHeaders>;
export type HeaderVariant = keyof typeof HEADER_VARIANTS;
export const HEADER_NAMES = Object.keys(HEADER_VARIANTS) as HeaderVariant[];

export interface RateHeaders {
  families: readonly ('requests' | 'images' | 'tokens')[];
  fields: readonly ('limit' | 'remaining' | 'reset')[];
}

/** The length of a real minute; the clock knobs shorten it on both sides. */
export const REAL_MINUTE_MS = 60_000;
/** The provider's counting window (the `limitWindowMs` knob), left at the simulator's default. */
export const LIMIT_WINDOW_MS = 1_000;

/**
 * The knobs the rate bench sets on the simulator, by the names the provider-shape simulator
 * takes. Built in {@link providerKnobs} and nowhere else, so a renamed knob is one edit.
 */
export interface ProviderKnobs {
  imagesPerMinute: number;
  tokensPerMinute: number;
  requestsPerMinute: number;
  minuteMs: number;
  limitShape: LimitShape;
  limitWindowMs: number;
  rateHeaders: RateHeaders;
  retryHeaders: 'all';
  latencyMs: number;
}

export interface ProviderSetting {
  trueLimit: number;
  minuteMs: number;
  shape: LimitShape;
  headers: HeaderVariant;
  latencyMs: number;
}

export function providerKnobs(setting: ProviderSetting): ProviderKnobs {
  return {
    imagesPerMinute: setting.trueLimit,
    // Only images are limited: tokens and requests unlimited, so one limit decides.
    tokensPerMinute: 0,
    requestsPerMinute: 0,
    minuteMs: setting.minuteMs,
    limitShape: setting.shape,
    limitWindowMs: LIMIT_WINDOW_MS,
    rateHeaders: HEADER_VARIANTS[setting.headers],
    retryHeaders: 'all',
    latencyMs: setting.latencyMs,
  };
}

/**
 * The provider's window and what it lets through in one: floor(limit × window / minute)
 * images, the window stretched to minute / limit when that would be under one image (5/min:
 * one image per 12 s). 600/min → 10 per 1 s; 3,000/min → 50 per 1 s.
 */
export function windowAllowance(limit: number, minuteMs: number, windowMs = LIMIT_WINDOW_MS) {
  if (limit <= 0) return { windowMs, allowance: Infinity };
  const allowance = Math.floor((limit * windowMs) / minuteMs);
  if (allowance >= 1) return { windowMs, allowance };
  return { windowMs: minuteMs / limit, allowance: 1 };
}

/** `/_sim/stats` as the provider-shape simulator reports it (the new field optional until then). */
export type ProviderStats = SimulatorStats & {
  /** Per model: most images accepted in any window of limitWindowMs. */
  maxImagesInWindow?: Record<string, number> | number;
};

/** The most images the simulator saw accepted in one window for `model`, if it reports that. */
export function maxImagesInWindow(stats: ProviderStats, model: string): number | null {
  const value = stats.maxImagesInWindow;
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return value;
  return value[model] ?? null;
}

/**
 * Sets the knobs, or fails saying which ones this simulator does not know: today's simulator
 * refuses unknown knobs, and a bench that silently measured a token bucket while reporting a
 * fixed window would be worse than none. With `dropUnknown`, sends only the knobs the
 * simulator knows and returns the names it left out (the rows are then marked).
 */
export async function applyProviderKnobs(
  origin: string,
  knobs: ProviderKnobs,
  dropUnknown: boolean,
): Promise<string[]> {
  const post = (body: Record<string, unknown>) =>
    fetch(`${origin}/_sim/knobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const response = await post({ ...knobs });
  if (response.ok) return [];
  const why = await response.text();
  // An empty POST answers with every knob in force: what this simulator knows.
  const current = await post({});
  const known = current.ok ? Object.keys((await current.json()) as object) : [];
  const unknown = Object.keys(knobs).filter((name) => !known.includes(name));
  if (unknown.length === 0 || !dropUnknown) {
    throw new Error(
      `the simulator refused the rate bench's knobs (${why.slice(0, 400)})` +
        (unknown.length > 0
          ? `\nit does not know: ${unknown.join(', ')}. This bench needs the simulator with the ` +
            'provider-shape knobs (limitShape, limitWindowMs, minuteMs, rateHeaders, …). ' +
            'For a smoke run against an older simulator pass --drop-unknown-knobs: the rows are ' +
            'then measured against whatever that simulator does and marked so.'
          : ''),
    );
  }
  const kept = Object.fromEntries(
    Object.entries(knobs).filter(([name]) => known.includes(name)),
  ) as Record<string, unknown>;
  const retry = await post(kept);
  if (!retry.ok) throw new Error(`simulator refused knobs: ${await retry.text()}`);
  return unknown;
}
