import { REQUEST_SHAPE } from '../rate/scenario.js';

/**
 * The rate bench's request (gpt-image-2, 64x64, quality low: the simulator's tiny-image path,
 * ~0.2 ms an image), at n=1 by default (`--n`), so items and images are the same count and
 * "per item" reads as "per image". The cheapest render keeps the provider out of the CPU figures.
 */
export const REQUEST = { ...REQUEST_SHAPE, n: 1 } as const;

/** How often the driver asks whether a batch (or the raw queue) is done: the timing granularity. */
export const POLL_MS = 50;

/** A catalog of distinct products: each prompt renders once, and a re-run asks for the same ones. */
export function catalogPrompt(repetition: number, index: number): string {
  const prompt = `catalog product ${index}: red ceramic mug, studio light`;
  // s3rver keeps its objects for the whole bench while Redis is emptied between repetitions:
  // a later repetition gets prompts of its own, so its first run really renders every image.
  return repetition === 1 ? prompt : `run ${repetition} ${prompt}`;
}

export const TARGETS = {
  cachedItemsPerSecond: 2_000,
  /** The cached re-run over raw BullMQ adding and processing as many no-op jobs. */
  ratioToRawBullmq: 0.3,
  workerCpuMsPerImage: 1,
} as const;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
