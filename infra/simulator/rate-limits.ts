import { RATE_DIMENSIONS, type RateDimension, type SimulatorKnobs } from './knobs.js';
import { createWindow, type RateWindow, type WindowSpec } from './rate-window.js';

/** The knobs that shape the rate limits. */
export type LimitKnobs = Pick<
  SimulatorKnobs,
  | 'imagesPerMinute'
  | 'tokensPerMinute'
  | 'requestsPerMinute'
  | 'minuteMs'
  | 'limitShape'
  | 'limitWindowMs'
  | 'modelLimits'
>;

/** What a request weighs in each dimension: 1 request, n images, its input + output tokens. */
export type Weights = Record<RateDimension, number>;

/** One limited dimension as a request saw it; what the `x-ratelimit-*` headers report. */
export interface DimensionView {
  perMinute: number;
  remaining: number;
  msUntilFull: number;
}

/** Each dimension of a request's limits; absent when that dimension is unlimited. */
export type LimitsView = Partial<Record<RateDimension, DimensionView>>;

/** A request refused: the dimension whose wait is longest, and the figures its 429 names. */
export interface Refusal {
  dimension: RateDimension;
  /** Until every dimension would admit the request; Infinity if one never can. */
  waitMs: number;
  weight: number;
  allowance: number;
  perMinute: number;
}

export type LimitDecision =
  { ok: true; view: LimitsView } | { ok: false; view: LimitsView; refusal: Refusal };

/** A window and the spec it was built from, to tell whether a knob change concerns it. */
interface Slot {
  key: string;
  spec: WindowSpec;
  window: RateWindow;
}

/** The counters one set of limits keeps: the shared ones, or one listed model's own. */
type Group = Partial<Record<RateDimension, Slot>>;

const SHARED = Symbol('shared');

/**
 * Every rate limit of a simulator: for each dimension with a limit, one window for the models
 * that share the global limits and one per model listed in `modelLimits` (OpenAI counts per
 * model). A request passes only if every dimension of its group has room, and only then takes
 * from all of them, so a refusal never leaves a partial take behind.
 */
export class RateLimits {
  private groups = new Map<string | typeof SHARED, Group>();
  private knobs: LimitKnobs;

  /** @param now the clock; injectable so tests can step time instead of sleeping. */
  constructor(
    knobs: LimitKnobs,
    private readonly now: () => number = Date.now,
  ) {
    this.knobs = knobs;
    this.configure(knobs);
  }

  /**
   * Applies changed knobs. A window whose limit, shape, window or minute changed starts afresh
   * (full); the others keep their state, so an unrelated knob change does not refill them.
   */
  configure(knobs: LimitKnobs): void {
    this.knobs = knobs;
    const next = new Map<string | typeof SHARED, Group>();
    next.set(
      SHARED,
      this.build(this.groups.get(SHARED), (d) => this.globalLimit(d)),
    );
    for (const [model, limits] of Object.entries(knobs.modelLimits)) {
      next.set(
        model,
        this.build(this.groups.get(model), (d) => limits[perMinuteKnob[d]] ?? this.globalLimit(d)),
      );
    }
    this.groups = next;
  }

  /** Every window full again, as at start. */
  reset(): void {
    this.groups = new Map();
    this.configure(this.knobs);
  }

  /** Takes `weights` from `modelId`'s limits if every dimension has room, else takes nothing. */
  take(modelId: string, weights: Weights): LimitDecision {
    const group = this.groupOf(modelId);
    const now = this.now();
    let refusal: Refusal | undefined;
    for (const dimension of RATE_DIMENSIONS) {
      const slot = group[dimension];
      if (!slot) continue;
      const weight = weights[dimension];
      const checked = slot.window.check(weight, now);
      // The longest wait is the one after which the request would pass every dimension.
      if (!checked.ok && (!refusal || checked.waitMs > refusal.waitMs)) {
        const { allowance } = slot.window;
        refusal = {
          dimension,
          waitMs: checked.waitMs,
          weight,
          allowance,
          perMinute: slot.spec.perMinute,
        };
      }
    }
    if (refusal) return { ok: false, view: this.viewOf(group, now), refusal };
    for (const dimension of RATE_DIMENSIONS) group[dimension]?.window.take(weights[dimension], now);
    return { ok: true, view: this.viewOf(group, now) };
  }

  /** `modelId`'s limits as they are now, for the headers of answers that took nothing. */
  view(modelId: string): LimitsView {
    return this.viewOf(this.groupOf(modelId), this.now());
  }

  private groupOf(modelId: string): Group {
    return this.groups.get(modelId) ?? this.groups.get(SHARED)!;
  }

  private globalLimit(dimension: RateDimension): number {
    return this.knobs[perMinuteKnob[dimension]];
  }

  private build(previous: Group | undefined, limitOf: (d: RateDimension) => number): Group {
    const group: Group = {};
    const { limitShape: shape, limitWindowMs: windowMs, minuteMs } = this.knobs;
    for (const dimension of RATE_DIMENSIONS) {
      const perMinute = limitOf(dimension);
      if (perMinute === 0) continue;
      const spec: WindowSpec = { shape, perMinute, windowMs, minuteMs };
      const key = JSON.stringify(spec);
      const kept = previous?.[dimension];
      group[dimension] =
        kept?.key === key ? kept : { key, spec, window: createWindow(spec, this.now()) };
    }
    return group;
  }

  private viewOf(group: Group, now: number): LimitsView {
    const view: LimitsView = {};
    for (const dimension of RATE_DIMENSIONS) {
      const slot = group[dimension];
      if (!slot) continue;
      view[dimension] = {
        perMinute: slot.spec.perMinute,
        remaining: slot.window.remaining(now),
        msUntilFull: slot.window.msUntilFull(now),
      };
    }
    return view;
  }
}

const perMinuteKnob = {
  requests: 'requestsPerMinute',
  images: 'imagesPerMinute',
  tokens: 'tokensPerMinute',
} as const satisfies Record<RateDimension, keyof LimitKnobs>;
