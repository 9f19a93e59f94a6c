import { z } from 'zod';
import { ROUTE_KINDS } from '../config/route-kinds.js';

/** The shape of a model registry file (models.json, or the file named by RENDERMILL_MODELS_FILE). */

export const OPERATIONS = ['generate', 'edit', 'variation'] as const;
export type Operation = (typeof OPERATIONS)[number];

export { ROUTE_KINDS, type RouteKind } from '../config/route-kinds.js';

const sizeSpec = z.union([
  z.object({ fixed: z.array(z.string().regex(/^\d+x\d+$/)).min(1) }).strict(),
  z
    .object({
      any: z
        .object({
          multiple_of: z.number().int().positive(),
          max_long_edge: z.number().int().positive(),
          max_short_edge: z.number().int().positive(),
        })
        .strict(),
    })
    .strict(),
]);

const editInput = z
  .object({
    max_images: z.number().int().positive(),
    formats: z.array(z.enum(['png', 'jpeg', 'webp'])).min(1),
    square: z.boolean(),
    max_bytes: z.number().int().positive(),
    mask: z.boolean(),
  })
  .strict();

const perImagePricing = z
  .object({
    kind: z.literal('per_image'),
    /**
     * quality → size → USD per image. Models without qualities use the key "standard"; the
     * size "*" prices every size the row does not name (a flat price per image).
     */
    usd: z.record(z.string(), z.record(z.string(), z.number().nonnegative())),
  })
  .strict();

const perTokenPricing = z
  .object({
    kind: z.literal('per_token'),
    $comment: z.string().optional(),
    usd_per_million_tokens: z
      .object({
        text_input: z.number().nonnegative(),
        image_input: z.number().nonnegative(),
        image_output: z.number().nonnegative(),
      })
      .strict(),
    /** quality → size → output tokens per image. A size not listed is priced by area against 1024x1024. */
    output_tokens: z.record(z.string(), z.record(z.string(), z.number().int().positive())),
    /** Upper bound of the input tokens one input image costs, used to reserve budget for edits. */
    max_input_tokens_per_image: z.number().int().nonnegative(),
  })
  .strict();

/** OpenAI's usage tiers that may use the Images API (the free tier cannot). */
export const USAGE_TIERS = ['1', '2', '3', '4', '5'] as const;
export type UsageTierKey = (typeof USAGE_TIERS)[number];

/**
 * Rows by usage tier ("1" … "5"). Any other key is refused by name, saying what a tier is (a
 * plain enum key would only report an "unrecognized key").
 */
const byUsageTier = <T extends z.ZodType>(row: T) =>
  z
    .record(z.string(), row)
    .superRefine((tiers, ctx) => {
      for (const key of Object.keys(tiers)) {
        if (!(USAGE_TIERS as readonly string[]).includes(key)) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `"${key}" is not a usage tier: a usage tier is 1, 2, 3, 4 or 5`,
          });
        }
      }
    })
    .transform((tiers) => tiers as Partial<Record<UsageTierKey, z.infer<T>>>);

/** One usage tier's limits for one model. */
const tierLimits = z
  .object({
    images_per_minute: z.number().int().positive(),
    /** Absent for models OpenAI limits by images only (DALL·E). */
    tokens_per_minute: z.number().int().positive().optional(),
  })
  .strict();

/**
 * A model's usage-tier rate limits, which OpenAI sets per model: where they were read and when,
 * and each tier's row. A tier without a row cannot render the model (rendermill says so).
 */
const rateLimits = z
  .object({
    /** A URL or the name of the document the figures come from. */
    source: z.string().min(1),
    /** The day the figures were last checked against their source (YYYY-MM-DD). */
    checked_on: z.iso.date(),
    tiers: byUsageTier(tierLimits).refine((tiers) => Object.keys(tiers).length > 0, {
      message: 'give at least one tier',
    }),
  })
  .strict();

/**
 * A correction to a model's rate limits in a user's registry file: each tier's fields given
 * replace the model's, the others stay.
 */
const rateLimitsPatch = z
  .object({
    source: z.string().min(1).optional(),
    tiers: byUsageTier(
      z
        .object({
          images_per_minute: z.number().int().positive().optional(),
          tokens_per_minute: z.number().int().positive().optional(),
        })
        .strict(),
    ),
  })
  .strict();

export const modelSpecSchema = z
  .object({
    id: z.string().min(1),
    operations: z.array(z.enum(OPERATIONS)).min(1),
    sizes: sizeSpec,
    n: z.object({ min: z.number().int().positive(), max: z.number().int().positive() }).strict(),
    /**
     * The most images one provider call returns (default `n.max`). An item asking more is
     * rendered by several calls and its images gathered.
     */
    images_per_call: z.number().int().positive().optional(),
    /**
     * The `aspect_ratio` values the model's ratio-sized APIs take (Replicate's), when not
     * FLUX's eleven: a size is sent as the nearest of them.
     */
    aspect_ratios: z
      .array(z.string().regex(/^\d+:\d+$/))
      .min(1)
      .optional(),
    /**
     * The model's own id on each kind of route, where it differs from `id` (Replicate's
     * `owner/name`, fal's `fal-ai/…`). A route's `remote` in the providers file wins.
     */
    remote_ids: z.partialRecord(z.enum(ROUTE_KINDS), z.string().min(1)).optional(),
    /** Where the model's sizes, formats and price were read, and when (models not from OpenAI). */
    checked: z
      .object({ source: z.string().min(1), checked_on: z.iso.date() })
      .strict()
      .optional(),
    prompt_max_chars: z.number().int().positive(),
    qualities: z.array(z.string()).min(1).optional(),
    styles: z.array(z.string()).min(1).optional(),
    backgrounds: z.array(z.string()).min(1).optional(),
    output_formats: z
      .array(z.enum(['png', 'jpeg', 'webp']))
      .min(1)
      .optional(),
    /** Present for DALL·E models, which can answer with a URL; gpt-image models always answer b64. */
    response_formats: z
      .array(z.enum(['url', 'b64_json']))
      .min(1)
      .optional(),
    edit_input: editInput.optional(),
    pricing: z.discriminatedUnion('kind', [perImagePricing, perTokenPricing]),
    /**
     * The provider's own Batch API (OpenAI's `/v1/batches`) takes this model's requests at
     * `price_factor` × its price (½ for GPT Image): a route offering it may render batches in
     * `provider_batch` mode. Absent: the model is not offered in batches.
     */
    batch: z
      .object({
        price_factor: z.number().positive().max(1),
        source: z.string().min(1),
        checked_on: z.iso.date(),
      })
      .strict()
      .optional(),
    /** The model's limits at each OpenAI usage tier (src/models/rate-limits.ts reads them). */
    rate_limits: rateLimits,
    /** The day OpenAI stopped serving the model (YYYY-MM-DD). Gateways may still serve it. */
    retired_on: z.iso.date().optional(),
    successor: z.string().optional(),
  })
  .strict();

export const registryFileSchema = z
  .object({
    $comment: z.string().optional(),
    /** A user's file that only corrects rate limits may leave this out. */
    models: z.array(modelSpecSchema).default(() => []),
    /**
     * Model id → corrections to its rate limits, applied after `models` (a user's file can fix
     * or add a tier's row without restating the whole model).
     */
    rate_limits: z.record(z.string().min(1), rateLimitsPatch).optional(),
  })
  .strict();

export type ModelSpec = z.infer<typeof modelSpecSchema>;
export type PerTokenPricing = z.infer<typeof perTokenPricing>;
export type RateLimits = z.infer<typeof rateLimits>;
export type TierLimits = z.infer<typeof tierLimits>;
export type RateLimitsPatch = z.infer<typeof rateLimitsPatch>;
