import { z } from 'zod';

/** The three things a provider may limit per minute; also the `x-ratelimit-*-{family}` names. */
export const RATE_DIMENSIONS = ['requests', 'images', 'tokens'] as const;
export type RateDimension = (typeof RATE_DIMENSIONS)[number];
const RATE_FIELDS = ['limit', 'remaining', 'reset'] as const;

const perMinute = z.number().int().min(0);

const errorSpec = z.object({
  count: z.number().int().positive(),
  status: z.number().int().min(400).max(599),
  code: z.string().optional(),
  type: z.string().optional(),
  message: z.string().optional(),
});

/** What the simulator can be told to do: limits, latency and faults. Validated wherever set. */
export const knobsSchema = z
  .object({
    /**
     * Images per minute (per `minuteMs`); 0 = unlimited. A request for n images weighs n.
     * Counted as `limitShape` says, over windows of `limitWindowMs`.
     */
    imagesPerMinute: perMinute.default(500),
    /**
     * Tokens per minute; 0 = unlimited. A request weighs its input + output tokens, known on
     * arrival (gpt-image models); models priced per image weigh 0.
     */
    tokensPerMinute: perMinute.default(0),
    /** Requests per minute; 0 = unlimited. Every request weighs 1. */
    requestsPerMinute: perMinute.default(0),
    /**
     * The length of a "minute" in ms, for every per-minute limit: a test can run a 5-per-minute
     * limit in seconds. Header limits still say "per minute", i.e. per this.
     */
    minuteMs: z.number().int().positive().default(60_000),
    /**
     * How each limit is counted over a window of `limitWindowMs`: `bucket` holds one window's
     * allowance refilled continuously (with a 5 ms early-arrival grace); `sliding` admits a
     * request if what was accepted in the last window plus it fits; `fixed` counts per
     * clock-aligned window (floor(now / window)) and resets at its edge.
     */
    limitShape: z.enum(['bucket', 'sliding', 'fixed']).default('bucket'),
    /**
     * The window each limit is counted over. Its allowance is floor(limit × limitWindowMs /
     * minuteMs); when that is below 1 (5/min over 1 s windows) the window stretches to
     * ceil(minuteMs / limit) ms holding exactly 1. A request heavier than the allowance is
     * refused as never fitting.
     */
    limitWindowMs: z.number().int().positive().default(1000),
    /**
     * Per-model limits, as OpenAI's are: a model listed here has its own counters, and a field
     * it omits takes the global knob. Models not listed share the global counters.
     */
    modelLimits: z
      .record(
        z.string(),
        z
          .object({
            imagesPerMinute: perMinute.optional(),
            tokensPerMinute: perMinute.optional(),
            requestsPerMinute: perMinute.optional(),
          })
          .strict(),
      )
      .default({}),
    /**
     * Which `x-ratelimit-{field}-{family}` headers every answer carries (200s, 429s and other
     * errors); `families: []` sends none. A family whose limit is 0 sends none of its own. The
     * `requests` family reports `requestsPerMinute` when set, else the images limit, as
     * OpenAI-compatible image providers often do. On a rate-limit 429 the `reset` headers are
     * decided by `retryHeaders` instead.
     */
    rateHeaders: z
      .object({
        families: z.array(z.enum(RATE_DIMENSIONS)).default([...RATE_DIMENSIONS]),
        fields: z.array(z.enum(RATE_FIELDS)).default([...RATE_FIELDS]),
      })
      .strict()
      .default({ families: [...RATE_DIMENSIONS], fields: [...RATE_FIELDS] }),
    /**
     * Which wait hints a rate-limit 429 carries: `retry-after-ms`, `retry-after` and
     * `x-ratelimit-reset-requests` (the wait). With `all` or `x-ratelimit-reset-requests` the
     * 429 also keeps the other `x-ratelimit-reset-*` that `rateHeaders` asks for; otherwise it
     * carries none, whatever `rateHeaders` says.
     */
    retryHeaders: z
      .enum(['all', 'retry-after-ms', 'retry-after', 'x-ratelimit-reset-requests', 'none'])
      .default('all'),
    latencyMs: z.number().min(0).default(0),
    latencyJitterMs: z.number().min(0).default(0),
    /** Fraction of requests that take `slowMs` extra. */
    slowRate: z.number().min(0).max(1).default(0),
    slowMs: z.number().min(0).default(0),
    /** Fraction of requests answered 500/502/503. */
    errorRate: z.number().min(0).max(1).default(0),
    /** Fraction of requests whose connection is dropped without an answer. */
    resetRate: z.number().min(0).max(1).default(0),
    /** Answer with this many images fewer than asked for, still billing all (a faulty gateway). */
    dropImages: z.number().int().min(0).default(0),
    /** The next `count` image requests get this error. */
    failNext: errorSpec.optional(),
    /** Prompts matching this (case-insensitive) are refused as content-policy violations. */
    contentPolicyPattern: z.string().optional(),
    insufficientQuota: z.boolean().default(false),
    retiredModels: z.array(z.string()).default([]),
    /** When set, only these keys are accepted (401 otherwise). */
    apiKeys: z.array(z.string()).optional(),
    /** Keys answered 403. */
    forbiddenKeys: z.array(z.string()).default([]),
    seed: z.number().int().default(1),
    /**
     * Queued APIs (Replicate's predictions, fal's queue): how long a prediction stays queued or
     * processing before it ends, on top of the latency knobs. `Prefer: wait` holds the answer up
     * to its own limit; status polls see it running until then.
     */
    queuedMs: z.number().min(0).default(0),
    /** Queued APIs: the share of predictions that end `failed` (not billed), e.g. an NSFW filter. */
    queuedFailRate: z.number().min(0).max(1).default(0),
    urlTtlMs: z.number().int().positive().default(3_600_000),
    /** Batch API: how long a batch stays `validating` before its input file is checked. */
    batchValidatingMs: z.number().int().min(0).default(0),
    /** Batch API: the time each line takes, on top of rendering it; lines run one after another. */
    batchLineMs: z.number().int().min(0).default(5),
    /** Batch API: how long a batch stays `finalizing` (and `cancelling`) before it ends. */
    batchFinalizingMs: z.number().int().min(0).default(0),
    /** Batch API: a batch not done this long after its creation expires (OpenAI's window: 24 h). */
    batchExpireMs: z.number().int().positive().default(86_400_000),
    /** Batch API: the most lines an input file may hold (OpenAI: 50,000). */
    batchMaxLines: z.number().int().positive().default(50_000),
    /** Batch API: the largest input file a batch accepts, in bytes (OpenAI: 200 MB). */
    batchMaxBytes: z
      .number()
      .int()
      .positive()
      .default(200 * 1024 * 1024),
    /** Batch API: the share of lines that fail with a 500 `server_error` (not billed). */
    batchLineFailRate: z.number().min(0).max(1).default(0),
    /**
     * Batch API: the enqueued-token limit per model (OpenAI's batch queue limit): the input +
     * output tokens of the lines of its batches not yet ended. Absent or 0 = unlimited.
     */
    batchQueueTokens: z.record(z.string(), z.number().int().min(0)).default({}),
    /**
     * Batch API: the next `files` uploads and `batches` creations are carried out — the file
     * stored, the batch created and run — and then their connection is dropped without an
     * answer, as a network failure after the provider acted would. Each count runs down.
     */
    batchDropAnswers: z
      .object({
        files: z.number().int().min(0).default(0),
        batches: z.number().int().min(0).default(0),
      })
      .strict()
      .default({ files: 0, batches: 0 }),
  })
  .strict();

export type SimulatorKnobs = z.infer<typeof knobsSchema>;
