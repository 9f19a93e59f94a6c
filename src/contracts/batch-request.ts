import { z } from 'zod';
import { ROUTING_STRATEGIES } from '../config/route-kinds.js';
import { OPERATIONS } from '../models/registry-schema.js';
import { MAX_DERIVATIONS, deriveSpecSchema } from './derive-spec.js';

/**
 * The shape of `POST /v1/batches` (and of a catalog turned into a batch by the CLI).
 * Item fields override the batch's defaults. Model-specific rules (sizes, n, prompt length …)
 * are checked afterwards against the model registry, in validate-item.ts.
 */

/** An input image for an edit or variation: an S3 key in rendermill's bucket, or an http(s) URL. */
const imageRef = z.string().min(1).max(2048);

const renderOptions = {
  operation: z.enum(OPERATIONS).optional(),
  model: z.string().min(1).max(100).optional(),
  size: z.string().max(20).optional(),
  /**
   * "W:H" (e.g. "16:9") with `resolution` ("0.5K", "1K", "2K", "4K": the long edge): a size
   * any model can be asked, fitted to the nearest it renders (a warning says when it differs).
   * `size` wins when both are given. Checked in validate-item.ts.
   */
  aspect_ratio: z.string().max(20).optional(),
  resolution: z.string().max(20).optional(),
  n: z.number().int().optional(),
  quality: z.string().max(20).optional(),
  style: z.string().max(20).optional(),
  background: z.string().max(20).optional(),
  /** png, jpeg, webp or avif for every model: sharp converts what a model cannot produce. */
  output_format: z.string().max(10).optional(),
  output_compression: z.number().int().min(0).max(100).optional(),
};

export const batchItemSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .max(200)
      // eslint-disable-next-line no-control-regex -- control characters are exactly what we refuse
      .regex(/^[^\u0000-\u001f]+$/, 'must not contain control characters'),
    prompt: z.string().optional(),
    image: z.union([imageRef, z.array(imageRef).min(1)]).optional(),
    mask: imageRef.optional(),
    ...renderOptions,
  })
  .strict();

export const MAX_ITEMS_PER_REQUEST = 10_000;

/**
 * How a batch is rendered: `realtime` (each image as soon as the route's limit allows, full
 * price), `provider_batch` (through the provider's own Batch API: half price, within 24 h), or
 * `auto` (provider batch when `complete_by` leaves room for its 24 h window and every item can
 * go in one, realtime otherwise).
 */
export const BATCH_MODES = ['realtime', 'provider_batch', 'auto'] as const;
export type BatchMode = (typeof BATCH_MODES)[number];

/** What becomes of items a provider batch never reached before it expired. */
export const ON_EXPIRY = ['fail', 'realtime'] as const;

const modeOptions = {
  mode: z.enum(BATCH_MODES).optional(),
  /** `auto` only: when the batch must be complete (ISO 8601 with an offset). */
  complete_by: z.iso.datetime({ offset: true }).optional(),
  /**
   * `fail` (default): items an expired provider batch never reached fail, saying so.
   * `realtime`: they are rendered realtime, within what is left of the budget.
   */
  on_expiry: z.enum(ON_EXPIRY).optional(),
};

export const batchRequestSchema = z
  .object({
    ...renderOptions,
    budget_usd: z.number().positive().max(1_000_000).optional(),
    /**
     * How items choose among the routes that can render them: `priority` (the configured
     * order), `cheapest` (the least money), `spread` (the least time). Default: the providers
     * file's `routing`.
     */
    routing: z.enum(ROUTING_STRATEGIES).optional(),
    ...modeOptions,
    /**
     * `reuse` (default): an image already rendered for the same request is reused at $0.
     * `refresh`: render anew; the new images replace the cached ones for later batches.
     */
    cache: z.enum(['reuse', 'refresh']).optional(),
    /** Smaller copies of every image, made with sharp at $0 and stored beside it. */
    derive: z
      .array(deriveSpecSchema)
      .max(MAX_DERIVATIONS, `at most ${MAX_DERIVATIONS} derived copies per image`)
      .optional(),
    metadata: z.record(z.string(), z.string().max(500)).optional(),
    /**
     * Receives one signed event when the batch ends: `batch.completed`, `batch.budget_exhausted`,
     * `batch.failed` or `batch.cancelled` (Standard Webhooks).
     */
    webhook_url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    items: z
      .array(batchItemSchema)
      .min(1, 'a batch needs at least one item')
      .max(MAX_ITEMS_PER_REQUEST, `at most ${MAX_ITEMS_PER_REQUEST} items per request`),
  })
  .strict();

/**
 * A catalog's batch options, given as query parameters of `POST /v1/batches` when the body is
 * a CSV or JSON Lines file. Query values are text: numbers are read from it.
 */
export const catalogOptionsSchema = z
  .object({
    template: z
      .string()
      .min(1)
      .max(32_000)
      .optional()
      .describe(
        'Prompt template with {{column}} placeholders; without it, a `prompt` column is used.',
      ),
    id_column: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('The column naming each row; default `sku`, else `id`, else the line number.'),
    on_invalid: z
      .enum(['reject', 'skip'])
      .optional()
      .describe(
        '`reject` (default): any bad row refuses the batch. `skip`: bad rows are reported and the rest accepted.',
      ),
    ...renderOptions,
    n: z.coerce.number().int().optional(),
    output_compression: z.coerce.number().int().min(0).max(100).optional(),
    budget_usd: z.coerce.number().positive().max(1_000_000).optional(),
    routing: z
      .enum(ROUTING_STRATEGIES)
      .optional()
      .describe('`priority`, `cheapest` or `spread`; default: the providers file’s routing.'),
    mode: modeOptions.mode.describe(
      '`realtime` (default), `provider_batch` (the provider’s Batch API, half price, within 24 h) or `auto` (with complete_by).',
    ),
    complete_by: modeOptions.complete_by.describe(
      'With mode=auto: when the batch must be complete (ISO 8601); a provider batch is used only if its 24 h window fits.',
    ),
    on_expiry: modeOptions.on_expiry.describe(
      '`fail` (default) or `realtime`: what becomes of items an expired provider batch never reached.',
    ),
    cache: z.enum(['reuse', 'refresh']).optional(),
    webhook_url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
  })
  .strict();

export type BatchItemInput = z.infer<typeof batchItemSchema>;
export type BatchRequest = z.infer<typeof batchRequestSchema>;
