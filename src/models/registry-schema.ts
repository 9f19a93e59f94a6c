import { z } from 'zod';

/** The shape of a model registry file (models.json, or the file named by RENDERMILL_MODELS_FILE). */

export const OPERATIONS = ['generate', 'edit', 'variation'] as const;
export type Operation = (typeof OPERATIONS)[number];

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
    /** quality → size → USD per image. Models without qualities use the key "standard". */
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

export const modelSpecSchema = z
  .object({
    id: z.string().min(1),
    operations: z.array(z.enum(OPERATIONS)).min(1),
    sizes: sizeSpec,
    n: z.object({ min: z.number().int().positive(), max: z.number().int().positive() }).strict(),
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
    /** The day OpenAI stopped serving the model (YYYY-MM-DD). Gateways may still serve it. */
    retired_on: z.iso.date().optional(),
    successor: z.string().optional(),
  })
  .strict();

export const registryFileSchema = z
  .object({ $comment: z.string().optional(), models: z.array(modelSpecSchema) })
  .strict();

export type ModelSpec = z.infer<typeof modelSpecSchema>;
export type PerTokenPricing = z.infer<typeof perTokenPricing>;
