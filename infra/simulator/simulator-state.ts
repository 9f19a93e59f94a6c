import { knobsSchema, type RateDimension, type SimulatorKnobs } from './knobs.js';
import { RateLimits } from './rate-limits.js';
import { WindowPeak } from './window-peak.js';

/** What the simulator has seen and billed since it started or was last reset. */
export interface SimulatorStats {
  requests: number;
  /**
   * Requests by endpoint: the Images API's three, the Responses API, and the queued APIs'
   * submissions (`predictions` for Replicate, `queue` for fal; their status polls are not
   * counted here).
   */
  byEndpoint: {
    generations: number;
    edits: number;
    variations: number;
    responses: number;
    predictions: number;
    queue: number;
    /** Batch API: files uploaded. */
    files: number;
    /** Batch API: batches created. */
    batches: number;
  };
  /**
   * Batch API lines by their end. A completed line is billed here and in `billedImages`,
   * `billedImagesByPrompt`, `billedImagesByModel` and `billedTokens` alike: this is the share
   * billed at the batch price.
   */
  batch: {
    linesCompleted: number;
    linesFailed: number;
    linesExpired: number;
    linesCancelled: number;
    billedImages: number;
    billedTokens: { input: number; output: number };
  };
  byStatus: Record<string, number>;
  /** Rate-limit 429s (not `insufficient_quota` ones). */
  rateLimited: number;
  /** The rate-limit 429s by the dimension that refused them. */
  rateLimitedBy: Record<RateDimension, number>;
  /**
   * Per model, the most images the rate limit accepted (by arrival time) within any sliding
   * window of `limitWindowMs`: whether a client kept within the allowance, whatever the shape.
   */
  maxImagesInWindow: Record<string, number>;
  billedImages: number;
  billedImagesByPrompt: Record<string, number>;
  billedImagesByModel: Record<string, number>;
  billedTokens: { input: number; output: number };
  inFlight: number;
  maxInFlight: number;
  /** Epoch ms of the first image request since the last reset (null before any): lets a benchmark time the provider's side. */
  firstRequestAt: number | null;
  /** Epoch ms of the last answer (any status) to an image request since the last reset. */
  lastResponseAt: number | null;
  /** Epoch ms of the first rate-limit 429 since the last reset: at start-up or mid-run tells a burst from pacing drift. */
  firstRateLimitedAt: number | null;
}

/** The image endpoints, as counted in {@link SimulatorStats.byEndpoint}. */
export type ImageEndpoint = Exclude<keyof SimulatorStats['byEndpoint'], 'files' | 'batches'>;

/** The error the `failNext` knob asks for. */
export type FailNextSpec = NonNullable<SimulatorKnobs['failNext']>;

/** What one 200 answer billed. */
export interface BilledAnswer {
  prompt: string;
  modelId: string;
  images: number;
  /** Only for models billed per token. */
  tokens?: { input: number; output: number } | undefined;
}

/** A seeded PRNG (mulberry32): fault rates are reproducible for a given seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function emptyStats(): SimulatorStats {
  return {
    requests: 0,
    byEndpoint: {
      generations: 0,
      edits: 0,
      variations: 0,
      responses: 0,
      predictions: 0,
      queue: 0,
      files: 0,
      batches: 0,
    },
    batch: {
      linesCompleted: 0,
      linesFailed: 0,
      linesExpired: 0,
      linesCancelled: 0,
      billedImages: 0,
      billedTokens: { input: 0, output: 0 },
    },
    byStatus: {},
    rateLimited: 0,
    rateLimitedBy: { requests: 0, images: 0, tokens: 0 },
    maxImagesInWindow: {},
    billedImages: 0,
    billedImagesByPrompt: {},
    billedImagesByModel: {},
    billedTokens: { input: 0, output: 0 },
    inFlight: 0,
    maxInFlight: 0,
    firstRequestAt: null,
    lastResponseAt: null,
    firstRateLimitedAt: null,
  };
}

/**
 * The knobs in force, the rate limits, the fault PRNG and the counters of one simulator.
 * Requests read `knobs` afresh at each step, so a change made mid-request (by a test, through
 * `setKnobs`) applies to the steps that request has not reached yet.
 */
export class SimulatorState {
  readonly limits: RateLimits;
  private current: SimulatorKnobs;
  private counters = emptyStats();
  private nextRandom: () => number;
  private readonly peak = new WindowPeak();
  private readonly resetHooks: (() => void)[] = [];

  /**
   * @param initial knobs to start with; validated, missing ones take their defaults.
   * @param now the clock of the rate limits and their stats; injectable for tests.
   */
  constructor(
    initial: Partial<SimulatorKnobs>,
    private readonly now: () => number = Date.now,
  ) {
    this.current = knobsSchema.parse(initial);
    this.nextRandom = prng(this.current.seed);
    this.limits = new RateLimits(this.current, now);
  }

  /** The effective knobs: a new object after every change, never mutated in place. */
  get knobs(): SimulatorKnobs {
    return this.current;
  }

  /** The live counters (not a copy): a reset replaces them with a fresh object. */
  get stats(): SimulatorStats {
    return this.counters;
  }

  /** Validates `changes` merged over the current knobs and applies them, or throws leaving all as it was. */
  setKnobs(changes: Partial<SimulatorKnobs>): void {
    const next = knobsSchema.parse({ ...this.current, ...changes });
    // Only a new seed restarts the sequence: setting other knobs keeps a run reproducible.
    if (next.seed !== this.current.seed) this.nextRandom = prng(next.seed);
    this.limits.configure(next);
    this.current = next;
  }

  /** The next number in [0, 1) of the seeded sequence behind the rate-based faults. */
  random(): number {
    return this.nextRandom();
  }

  /** Uses up one of `failNext`'s count, returning the error the current request must get (if any). */
  takeFailNext(): FailNextSpec | undefined {
    const fail = this.current.failNext;
    if (!fail || fail.count <= 0) return undefined;
    // Not through setKnobs: this is the knob running down, not a change to validate.
    this.current = {
      ...this.current,
      failNext: fail.count > 1 ? { ...fail, count: fail.count - 1 } : undefined,
    };
    return fail;
  }

  /**
   * Uses up one of `batchDropAnswers`' count for `endpoint`: whether the Files or Batches call
   * just carried out must lose its answer.
   */
  takeDroppedAnswer(endpoint: 'files' | 'batches'): boolean {
    const drops = this.current.batchDropAnswers;
    if (drops[endpoint] <= 0) return false;
    // Not through setKnobs, as failNext: the knob running down, not a change to validate.
    this.current = {
      ...this.current,
      batchDropAnswers: { ...drops, [endpoint]: drops[endpoint] - 1 },
    };
    return true;
  }

  /** Zeroes the counters and refills every rate-limit window; the knobs stay. */
  reset(): void {
    this.counters = emptyStats();
    this.peak.clear();
    this.limits.reset();
    for (const hook of this.resetHooks) hook();
  }

  /** Has `hook` run at every reset: what other parts keep (the Batch API's files) goes too. */
  onReset(hook: () => void): void {
    this.resetHooks.push(hook);
  }

  /** Counts an image request arriving at `endpoint`. */
  requestStarted(endpoint: ImageEndpoint): void {
    const stats = this.counters;
    stats.requests += 1;
    stats.firstRequestAt ??= Date.now();
    stats.byEndpoint[endpoint] += 1;
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
  }

  /**
   * Counts an image request done, whatever became of it. One that was in flight across a
   * reset is taken off the fresh counters, whose `inFlight` dips below zero until it is done.
   */
  requestFinished(): void {
    this.counters.inFlight -= 1;
    this.counters.lastResponseAt = Date.now();
  }

  /** Counts an answer by its HTTP status. */
  answered(status: number): void {
    this.counters.byStatus[status] = (this.counters.byStatus[status] ?? 0) + 1;
  }

  /** Counts a Files or Batches API creation. */
  batchApiCalled(endpoint: 'files' | 'batches'): void {
    this.counters.byEndpoint[endpoint] += 1;
  }

  /** Counts a batch line by its end; a completed one was billed by {@link bill} and also here. */
  batchLineEnded(end: 'completed' | 'failed' | 'expired' | 'cancelled', billed?: BilledAnswer) {
    const batch = this.counters.batch;
    if (end === 'completed') batch.linesCompleted += 1;
    else if (end === 'failed') batch.linesFailed += 1;
    else if (end === 'expired') batch.linesExpired += 1;
    else batch.linesCancelled += 1;
    if (!billed) return;
    batch.billedImages += billed.images;
    batch.billedTokens.input += billed.tokens?.input ?? 0;
    batch.billedTokens.output += billed.tokens?.output ?? 0;
  }

  /** Counts a request refused by the rate limit of `dimension`. */
  rateLimited(dimension: RateDimension): void {
    this.counters.rateLimited += 1;
    this.counters.rateLimitedBy[dimension] += 1;
    this.counters.firstRateLimitedAt ??= Date.now();
  }

  /** Counts `images` of `modelId` the rate limit accepted, towards `maxImagesInWindow`. */
  acceptedByLimit(modelId: string, images: number): void {
    const inWindow = this.peak.record(modelId, images, this.now(), this.current.limitWindowMs);
    const peaks = this.counters.maxImagesInWindow;
    peaks[modelId] = Math.max(peaks[modelId] ?? 0, inWindow);
  }

  /** Adds a 200 answer to the bill: every image asked for, even those `dropImages` withheld. */
  bill(answer: BilledAnswer): void {
    const stats = this.counters;
    stats.billedImages += answer.images;
    stats.billedImagesByPrompt[answer.prompt] =
      (stats.billedImagesByPrompt[answer.prompt] ?? 0) + answer.images;
    stats.billedImagesByModel[answer.modelId] =
      (stats.billedImagesByModel[answer.modelId] ?? 0) + answer.images;
    if (answer.tokens) {
      stats.billedTokens.input += answer.tokens.input;
      stats.billedTokens.output += answer.tokens.output;
    }
  }
}
