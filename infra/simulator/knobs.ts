import { z } from 'zod';

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
    /** Images per minute; 0 = unlimited. A bucket of one second's worth, refilled continuously. */
    imagesPerMinute: z.number().int().min(0).default(500),
    /** Which wait hints a 429 carries. */
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
    urlTtlMs: z.number().int().positive().default(3_600_000),
  })
  .strict();

export type SimulatorKnobs = z.infer<typeof knobsSchema>;
