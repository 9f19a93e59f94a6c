import { windowAllowance } from '../../src/limits/redis-rate-limiter.js';

/**
 * The scale bench's fixed setting: one provider limit, enforced by the simulator and told to
 * rendermill alike, and a provider slow enough that worker slots, not the limit, cap one worker.
 */

/** Images per minute: the simulator enforces it (real 429s) and rendermill is configured with it. */
export const LIMIT_PER_MINUTE = 3_000;

/** The images rendermill's rate window lets through in any second at that limit. */
export const WINDOW_ALLOWANCE = windowAllowance(LIMIT_PER_MINUTE);

/**
 * The simulator answers each accepted request after 300 ms plus up to 500 ms of uniform jitter
 * (mean 550 ms): a provider that takes its time, as image models do, so that a worker's
 * throughput is its concurrency over the call time.
 */
export const LATENCY = { latencyMs: 300, latencyJitterMs: 500 } as const;

/**
 * Jobs one worker runs at once. A job is a ~550 ms provider call plus the worker's own work
 * (decoding, the S3 upload, Redis; tens of ms, more when the cores are busy): ~600 ms, so 12
 * slots carry ~20 images/s ≈ 1,200/min per worker. One worker reaches ~40 % of the limit and
 * two ~80 %, so neither can reach it; four would do ~4,800/min, so with four the limiter, not
 * the slots, decides. With rendermill's default of 8 (~800/min a worker) four would want only
 * ~3,200/min, a margin the CPU of a shared 2-core machine eats (a first run reached 2,569/min):
 * it measured the machine, not whether the limit holds against more demand than it allows.
 */
export const DEFAULT_CONCURRENCY = 12;
export const DEFAULT_WORKERS = [1, 2, 4];
export const DEFAULT_IMAGES = 2_000;

/**
 * The request of every item: DALL·E 2 at its smallest size, one image each, so items and images
 * count alike and a request weighs 1 in the limiter. 256x256 goes through sharp in the
 * simulator (~3 ms of CPU an image): at 50 images/s that is a sixth of a core, affordable.
 */
export const REQUEST = { model: 'dall-e-2', size: '256x256', n: 1 } as const;

/** How often the simulator's counters are read: the resolution of the sliding windows. */
export const SAMPLE_MS = 50;
/** How often the batch is polled: the resolution of the wall time. */
export const BATCH_POLL_MS = 100;
/** Pause between runs: stray connections close and the provider's bucket is full again. */
export const SETTLE_MS = 2_000;

/** The share of the images that counts as steady state: from the 10 % image to the 90 % one. */
export const STEADY_FROM = 0.1;
export const STEADY_TO = 0.9;

/**
 * Scaling is judged against the ideal: N workers should reach N times one worker's rate, until
 * the limit caps it. Met when the steady rate is at least this share of min(N × rate₁, limit).
 */
export const SCALING_TARGET = 0.9;

/**
 * Distinct prompts: no result cache can serve an item, and runs never share one. Short on
 * purpose: the simulator's counters list every billed prompt, and the driver reads them 20
 * times a second.
 */
export const promptFor = (runId: string, index: number) => `scale ${runId} product ${index}`;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
