import type { CpuMeter } from '../support/cpu.js';
import type { Stack } from '../support/stack.js';

export const CLIENTS = ['rendermill', 'naive', 'bullmq'] as const;
export type ClientKind = (typeof CLIENTS)[number];

/**
 * One request shape for every client: n=4 (a rendermill item of limiter weight 4) of the
 * cheapest thing the registry allows to render and bill, so the provider's limit, not image
 * work, is what the bench measures. gpt-image-2 takes any size in multiples of 16 and bills
 * by area; 64x64 at quality low is cheap to bill and, being "tiny" to the simulator (both
 * sides up to 64 px), is encoded without sharp: ~0.2 ms of CPU an image instead of ~3 ms at
 * 256x256, which on a 2-core machine is the difference between measuring the limit and
 * measuring the simulator (see bench/README.md).
 */
export const REQUEST_SHAPE = {
  model: 'gpt-image-2',
  size: '64x64',
  quality: 'low',
  n: 4,
} as const;

/** The simulator's answer time: a fast provider, so pacing (not latency) decides throughput. */
export const SIMULATOR_LATENCY_MS = 100;

export interface Scenario {
  /** e.g. "rendermill 2x tier · 4 workers · 500/min", also used in prompts so runs never share a cache. */
  id: string;
  client: ClientKind;
  workers: number;
  /** The limit the simulator enforces. */
  trueLimit: number;
  /** The limit the client is told (rendermill only: the same as trueLimit, or twice it). */
  configuredLimit: number;
  /** Items of REQUEST_SHAPE.n images each. */
  items: number;
  /** Jobs (or calls) one worker process runs at once. */
  concurrency: number;
}

/**
 * Per-process concurrency: enough calls in flight for the whole limit to pass through the
 * workers with ~400 ms per call (100 ms latency, rendering, S3 and Redis, with headroom), and
 * never below rendermill's default of 8. Every client gets the same figure.
 */
export function concurrencyFor(limit: number, workers: number): number {
  const requestsPerSecond = limit / 60 / REQUEST_SHAPE.n;
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
