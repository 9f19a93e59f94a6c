import { REQUEST_SHAPE, type ClientOutcome, type Scenario } from './scenario.js';
import { maxImagesInWindow, windowAllowance, type ProviderStats } from './provider.js';
import { acceptedCallTimes, billedAt, lastRiseAt, type StatsSample } from './sampler.js';

export interface ScenarioResult {
  scenario: Scenario;
  /** Images the provider rendered and billed. */
  images: number;
  /** From the provider's first request to its last answer. */
  elapsedSeconds: number;
  /** Over the whole run, per minute of scenario.minuteMs. */
  imagesPerMinute: number;
  /** Where the steady part starts, seconds after the first request (see {@link measure}). */
  steadyFromSeconds: number | null;
  /** Images per minute (of minuteMs) over the steady part. */
  steadyImagesPerMinute: number | null;
  /** steadyImagesPerMinute ÷ the true limit. */
  steadyFraction: number | null;
  requests: number;
  rateLimited: number;
  /** 429s ÷ requests. */
  rateLimitedFraction: number;
  firstRateLimitedAfterSeconds: number | null;
  /** Seconds from the first request to the last 429 (sampled: late by at most one interval); null without 429s. */
  lastRateLimitedAfterSeconds: number | null;
  byStatus: Record<string, number>;
  itemsSucceeded: number;
  itemsLost: number;
  /** CPU seconds used per role during the scenario. */
  cpuSeconds: Record<string, number>;
  /** The client's own CPU (rendermill: api + workers; anchors: their worker processes) per billed image. */
  clientCpuMsPerImage: number | null;
  /** Images the provider's window allows, and the most it accepted in one (null if not reported). */
  windowMs: number;
  windowAllowance: number;
  maxImagesInWindow: number | null;
  /** Seconds between accepted calls (slow rows only): what the real-minute row is judged on. */
  callGapsSeconds: { count: number; min: number; median: number; max: number } | null;
  /** Knobs the simulator did not know and were left out (a smoke run against an older simulator). */
  knobsIgnored: string[];
  /** The time series, for anyone who wants to draw it: [ms after first request, requests, billed, 429s]. */
  series: [number, number, number, number][];
  notes: string[];
}

/** Skipped at the start of the steady part: the provider's first window, which starts full. */
const STEADY_SKIP_MS = 1_000;
/** Slow rows (at least this many ms between calls at the limit) get call gaps. */
const SLOW_CALL_MS = 1_000;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * The figures are the provider's, not the client's: the simulator counts every request, 429
 * and billed image, and times the first request and the last answer; the sampled time series
 * places the last 429 and the images billed by any moment. Every client is measured the same
 * way, whatever it believes about itself.
 *
 * Steady part: from S to the last answer, S = the later of (first request + 1 s) and (last
 * 429 + 1 s), but never later than the run's midpoint, so the second half is always measured
 * (a client still drawing 429s there has them in its steady figure). On slow rows (calls ≥ 1 s
 * apart at the limit) the steady rate is images between the first and the last accepted call
 * after S ÷ the time between them.
 */
export function measure(
  scenario: Scenario,
  stats: ProviderStats,
  samples: StatsSample[],
  outcome: ClientOutcome,
  cpuSeconds: Record<string, number>,
  knobsIgnored: string[],
): ScenarioResult {
  const first = stats.firstRequestAt;
  const last = stats.lastResponseAt;
  const elapsedMs = first !== null && last !== null ? last - first : 0;
  const perMinute = (images: number, ms: number) =>
    ms > 0 ? (images * scenario.minuteMs) / ms : 0;
  const lastRateLimitedAt = lastRiseAt(samples, 'rateLimited', stats.rateLimited);
  const slow = scenario.trueLimit > 0 && scenario.minuteMs / scenario.trueLimit >= SLOW_CALL_MS;

  let steadyFromSeconds: number | null = null;
  let steadyImagesPerMinute: number | null = null;
  if (first !== null && last !== null && elapsedMs > 0) {
    const midpoint = first + elapsedMs / 2;
    const start = Math.min(
      midpoint,
      Math.max(
        first + STEADY_SKIP_MS,
        lastRateLimitedAt === null ? 0 : lastRateLimitedAt + STEADY_SKIP_MS,
      ),
    );
    steadyFromSeconds = (start - first) / 1000;
    steadyImagesPerMinute = perMinute(stats.billedImages - billedAt(samples, start), last - start);
    if (slow) {
      // Calls seconds apart: one call more or less in the window would swing the figure by
      // 20 %, so the rate is taken between the first and the last accepted call after S.
      const calls = samples.filter(
        (sample, i) =>
          sample.at >= start && sample.billedImages > (samples[i - 1]?.billedImages ?? 0),
      );
      if (calls.length >= 2)
        steadyImagesPerMinute = perMinute(
          calls.at(-1)!.billedImages - calls[0]!.billedImages,
          calls.at(-1)!.at - calls[0]!.at,
        );
    }
  }

  const { windowMs, allowance } = windowAllowance(scenario.trueLimit, scenario.minuteMs);
  const clientCpu = (cpuSeconds.api ?? 0) + (cpuSeconds.workers ?? 0);

  let callGapsSeconds: ScenarioResult['callGapsSeconds'] = null;
  if (slow) {
    const times = acceptedCallTimes(samples);
    const gaps = times.slice(1).map((at, i) => (at - times[i]!) / 1000);
    if (gaps.length > 0)
      callGapsSeconds = {
        count: times.length,
        min: Math.min(...gaps),
        median: median(gaps),
        max: Math.max(...gaps),
      };
  }

  return {
    scenario,
    images: stats.billedImages,
    elapsedSeconds: elapsedMs / 1000,
    imagesPerMinute: perMinute(stats.billedImages, elapsedMs),
    steadyFromSeconds,
    steadyImagesPerMinute,
    steadyFraction:
      steadyImagesPerMinute === null || scenario.trueLimit === 0
        ? null
        : steadyImagesPerMinute / scenario.trueLimit,
    requests: stats.requests,
    rateLimited: stats.rateLimited,
    rateLimitedFraction: stats.requests > 0 ? stats.rateLimited / stats.requests : 0,
    firstRateLimitedAfterSeconds:
      stats.firstRateLimitedAt !== null && first !== null
        ? (stats.firstRateLimitedAt - first) / 1000
        : null,
    lastRateLimitedAfterSeconds:
      lastRateLimitedAt !== null && first !== null
        ? Math.max(0, lastRateLimitedAt - first) / 1000
        : null,
    byStatus: stats.byStatus,
    itemsSucceeded: outcome.itemsSucceeded,
    itemsLost: outcome.itemsLost,
    cpuSeconds,
    clientCpuMsPerImage: stats.billedImages > 0 ? (clientCpu * 1000) / stats.billedImages : null,
    windowMs,
    windowAllowance: allowance,
    maxImagesInWindow: maxImagesInWindow(stats, REQUEST_SHAPE.model),
    callGapsSeconds,
    knobsIgnored,
    series: samples.map((s) => [
      first === null ? 0 : s.at - first,
      s.requests,
      s.billedImages,
      s.rateLimited,
    ]),
    notes: outcome.notes,
  };
}
