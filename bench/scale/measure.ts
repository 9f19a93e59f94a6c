import type { SimulatorStats } from '../../infra/simulator/server.js';
import type { BatchRun } from './deployment.js';
import { LIMIT_PER_MINUTE, STEADY_FROM, STEADY_TO, WINDOW_ALLOWANCE } from './shape.js';
import {
  acceptedPerSecond,
  busiestWindow,
  steadyRate,
  type Sample,
  type WindowCount,
} from './windows.js';

/**
 * The most images a 1-second window can see from rendermill's limiter: its window's allowance,
 * which holds in any window however it is placed (rate-acquire.lua).
 */
export const ONE_SECOND_BOUND = WINDOW_ALLOWANCE;

/** One second of the provider's limit: what a 1-second window holds once the start is past. */
export const PROVIDER_SECOND = Math.ceil(LIMIT_PER_MINUTE / 60);

export interface RunResult {
  workers: number;
  concurrency: number;
  images: number;
  /** Items by status when the batch completed (or at the deadline). */
  counts: Record<string, number>;
  itemsNotSucceeded: number;
  /** POST → a poll sees the batch completed. */
  wallSeconds: number;
  /** Images succeeded ÷ wall time. */
  imagesPerMinute: number;
  /** The provider's first request → its last answer. */
  providerSeconds: number;
  /** Between the 10 % and the 90 % image the provider accepted. */
  steady: { imagesPerMinute: number; seconds: number } | null;
  /** Busiest windows of accepted images over the whole run. */
  busiest: { oneSecond: WindowCount; tenSeconds: WindowCount; sixtySeconds: WindowCount };
  /** Busiest 1-second window within the steady part (no start-up burst). */
  busiestSteadySecond: WindowCount | null;
  requests: number;
  rateLimited: number;
  byStatus: Record<string, number>;
  maxInFlight: number;
  /** CPU seconds per process (`worker 1` …), per role and `other` (the rest of the machine). */
  cpuSeconds: Record<string, number>;
  /** Every worker's CPU ÷ images rendered. */
  workerCpuMsPerImage: number;
  /** The machine's 1-minute load average just before the run. */
  loadBefore: number;
  /** Images the provider accepted in each second from its first request. */
  acceptedPerSecond: number[];
  sampleCount: number;
  /** The widest gap between two samples: the windows' resolution. */
  largestSampleGapMs: number;
  notes: string[];
}

export function measureRun(input: {
  workers: number;
  concurrency: number;
  images: number;
  run: BatchRun;
  samples: Sample[];
  stats: SimulatorStats;
  cpuSeconds: Record<string, number>;
  loadBefore: number;
  notes: string[];
}): RunResult {
  const { run, samples, stats, cpuSeconds } = input;
  const succeeded = (run.batch.counts.succeeded ?? 0) + (run.batch.counts.cached ?? 0);
  const steady = steadyRate(samples, input.images, STEADY_FROM, STEADY_TO);
  const steadySamples = steady
    ? samples.filter((sample) => sample.at >= steady.startMs && sample.at <= steady.endMs)
    : [];
  const workerCpu = Object.entries(cpuSeconds)
    .filter(([role]) => role.startsWith('worker '))
    .reduce((sum, [, seconds]) => sum + seconds, 0);
  const gaps = samples.slice(1).map((sample, i) => sample.at - samples[i]!.at);
  const { counts } = run.batch;
  return {
    workers: input.workers,
    concurrency: input.concurrency,
    images: input.images,
    counts,
    itemsNotSucceeded: input.images - succeeded,
    wallSeconds: run.wallSeconds,
    imagesPerMinute: (succeeded * 60) / run.wallSeconds,
    providerSeconds:
      stats.firstRequestAt !== null && stats.lastResponseAt !== null
        ? (stats.lastResponseAt - stats.firstRequestAt) / 1000
        : 0,
    steady: steady && {
      imagesPerMinute: steady.imagesPerMinute,
      seconds: (steady.endMs - steady.startMs) / 1000,
    },
    busiest: {
      oneSecond: busiestWindow(samples, 1_000),
      tenSeconds: busiestWindow(samples, 10_000),
      sixtySeconds: busiestWindow(samples, 60_000),
    },
    busiestSteadySecond: steadySamples.length > 1 ? busiestWindow(steadySamples, 1_000) : null,
    requests: stats.requests,
    rateLimited: stats.rateLimited,
    byStatus: stats.byStatus,
    maxInFlight: stats.maxInFlight,
    cpuSeconds,
    workerCpuMsPerImage: succeeded > 0 ? (workerCpu * 1000) / succeeded : NaN,
    loadBefore: input.loadBefore,
    acceptedPerSecond: acceptedPerSecond(samples, stats.firstRequestAt ?? run.postedAt),
    sampleCount: samples.length,
    largestSampleGapMs: Math.round(Math.max(0, ...gaps)),
    notes: input.notes,
  };
}

/** Whether the provider's limit held: no 429 and no window over what the limit allows. */
export function limitHeld(r: RunResult): boolean {
  return (
    r.rateLimited === 0 &&
    r.busiest.sixtySeconds.lower <= LIMIT_PER_MINUTE &&
    r.busiest.oneSecond.lower <= ONE_SECOND_BOUND
  );
}
