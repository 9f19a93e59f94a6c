import type { CpuMeter } from '../support/cpu.js';
import type { Stack } from '../support/stack.js';
import type { HeaderVariant, LimitShape } from './provider.js';

export const CLIENTS = ['rendermill', 'naive', 'bullmq'] as const;
export type ClientKind = (typeof CLIENTS)[number];

/**
 * One request shape for every client, but for n: the cheapest thing the registry allows to
 * render and bill, so the provider's limit, not image work, is what the bench measures.
 * gpt-image-2 takes any size in multiples of 16 and bills by area; 64x64 at quality low is
 * cheap to bill and, being "tiny" to the simulator (both sides up to 64 px), is encoded without
 * sharp: ~0.2 ms of CPU an image instead of ~3 ms at 256x256, which on a 2-core machine is the
 * difference between measuring the limit and measuring the simulator (see bench/README.md).
 * n is per scenario: {@link requestImages}.
 */
export const REQUEST_SHAPE = {
  model: 'gpt-image-2',
  size: '64x64',
  quality: 'low',
} as const;

/**
 * Images per request. A provider window holds floor(limit × window / minute) images and no
 * client can fill it with requests that do not divide it: at 600/min (10 images a second) n=4
 * fits at most 8 of 10 in every window, whatever the pacing. n=2 divides both 10 (600/min) and
 * 50 (3,000/min). At the 5/min rows the window holds 1 image and n=4 on purpose: a request
 * larger than the window must be split, which only rendermill does; the anchors are refused.
 */
export function requestImages(limit: number): number {
  return limit > 0 && limit < 60 ? 4 : 2;
}

/** The simulator's answer time: a fast provider, so pacing (not latency) decides throughput. */
export const SIMULATOR_LATENCY_MS = 100;

export interface Scenario {
  /** Also used in prompts so runs never share a cache. */
  id: string;
  client: ClientKind;
  workers: number;
  /** The limit the simulator enforces, images per minute (of minuteMs). */
  trueLimit: number;
  /** The limit the client is told (rendermill only: the same as trueLimit, or twice it). */
  configuredLimit: number;
  /** How the provider counts. */
  shape: LimitShape;
  /** Which rate headers its answers carry (anchors ignore them). */
  headers: HeaderVariant;
  /** The length of a "minute" on both sides (the clock knobs); 60,000 is a real one. */
  minuteMs: number;
  /** Images per request ({@link requestImages}). */
  n: number;
  /** Items of n images each. */
  items: number;
  /** Jobs (or calls) one worker process runs at once. */
  concurrency: number;
  /** The real-minute row: judged on the seconds between accepted calls. */
  realMinute: boolean;
  /** Give up after this long (items not done by then count as lost). */
  deadlineMs: number;
}

/**
 * Per-process concurrency: enough calls in flight for the whole limit to pass through the
 * workers with ~400 ms per call (100 ms latency, rendering, S3 and Redis, with headroom), and
 * never below rendermill's default of 8. Every client gets the same figure.
 */
export function concurrencyFor(limit: number, workers: number, n: number, minuteMs: number) {
  const requestsPerSecond = (limit * 1000) / minuteMs / n;
  return Math.max(8, Math.ceil((requestsPerSecond * 0.4) / workers));
}

/** What a client reports: how many items ended with their images, how many did not. */
export interface ClientOutcome {
  itemsSucceeded: number;
  itemsLost: number;
  /** Anything worth reading next to the figures (e.g. why items were lost). */
  notes: string[];
}

export interface ClientContext {
  stack: Stack;
  scenario: Scenario;
  cpu: CpuMeter;
  log(line: string): void;
  /** Give up on a scenario after this long (items not done by then count as lost). */
  deadlineMs: number;
}

export type ClientRunner = (context: ClientContext) => Promise<ClientOutcome>;

/** Unique prompts: no result cache or dedupe can ever make an item free. */
export const promptFor = (scenario: Scenario, index: number) =>
  `bench ${scenario.id} item ${index}`;
