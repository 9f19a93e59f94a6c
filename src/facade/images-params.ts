import { z } from 'zod';
import { ENV_DEFAULTS } from '../config/env-schema.js';
import { ROUTING_STRATEGIES } from '../config/route-kinds.js';
import type { ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec, Operation } from '../models/registry-schema.js';
import { invalidRequest, type OpenAiError } from './openai-error.js';

/**
 * The parameters of OpenAI's three image endpoints, as the openai SDK sends them, and their
 * translation into a one-item rendermill batch. Model rules (sizes, n, prompt length …) are
 * not checked here: the batch is validated like any other, against the model registry.
 */

const model = z.string().min(1).max(100).nullish().describe('Default: RENDERMILL_DEFAULT_MODEL.');
const n = z.number().int().nullish();
const size = z
  .string()
  .max(20)
  .nullish()
  .describe('WIDTHxHEIGHT; `auto` (or none) is the model’s default, 1024x1024.');
const option = (max: number) => z.string().max(max).nullish();
const responseFormat = z
  .enum(['url', 'b64_json'])
  .nullish()
  .describe(
    '`url`: a presigned S3 URL, for any model, valid RENDERMILL_URL_TTL_SECONDS ' +
      `(${ENV_DEFAULTS.RENDERMILL_URL_TTL_SECONDS} s by default). ` +
      'Default: `url` for DALL·E models, `b64_json` for the others, as OpenAI does.',
  );
const stream = z
  .boolean()
  .nullish()
  .describe('Only `false`: rendermill answers with the finished images, never a stream.');
const outputCompression = z.number().int().min(0).max(100).nullish();
const partialImages = z.number().int().min(0).max(3).nullish().describe('Ignored (no streaming).');
const user = z.string().max(256).nullish().describe('Ignored.');
/** rendermill's own fields, sent by the SDK as extra body parameters (`extra_body`). */
const rendermillFields = {
  routing: z
    .enum(ROUTING_STRATEGIES)
    .nullish()
    .describe(
      'rendermill: `priority`, `cheapest` or `spread` among the routes; default the configured routing.',
    ),
  aspect_ratio: z
    .string()
    .max(20)
    .nullish()
    .describe('rendermill: `W:H`, mapped to the nearest size the model takes (`size` wins).'),
  resolution: z
    .string()
    .max(10)
    .nullish()
    .describe('rendermill: `0.5K`, `1K`, `2K` or `4K`, with aspect_ratio.'),
};

export const generationParamsSchema = z
  .object({
    prompt: z.string(),
    model,
    n,
    size,
    quality: option(20),
    style: option(20),
    background: option(20),
    output_format: option(10),
    output_compression: outputCompression,
    response_format: responseFormat,
    stream,
    moderation: z
      .enum(['low', 'auto'])
      .nullish()
      .describe('Ignored: the provider’s default applies.'),
    partial_images: partialImages,
    user,
    ...rendermillFields,
  })
  .strict();

export const editParamsSchema = z
  .object({
    prompt: z.string(),
    model,
    n,
    size,
    quality: option(20),
    background: option(20),
    output_format: option(10),
    output_compression: outputCompression,
    response_format: responseFormat,
    stream,
    input_fidelity: z
      .enum(['high', 'low'])
      .nullish()
      .describe('Ignored: the provider’s default applies.'),
    partial_images: partialImages,
    user,
    ...rendermillFields,
  })
  .strict();

export const variationParamsSchema = z
  .object({
    model,
    n,
    size,
    response_format: responseFormat,
    user,
    routing: rendermillFields.routing,
  })
  .strict();

export type GenerationParams = z.infer<typeof generationParamsSchema>;
export type EditParams = z.infer<typeof editParamsSchema>;
export type VariationParams = z.infer<typeof variationParamsSchema>;
export type ImageParams = GenerationParams | EditParams | VariationParams;

const binary = z.string().meta({ format: 'binary' });

/** The multipart forms, for the OpenAPI document: the parameters plus their files. */
export const editFormSchema = editParamsSchema.extend({
  image: binary.describe('The image to edit; several as `image[]` (gpt-image: up to 16).'),
  mask: binary.optional().describe('PNG whose transparent pixels mark the area to repaint.'),
});
export const variationFormSchema = variationParamsSchema.extend({
  image: binary.describe('A square PNG under 4 MB (dall-e-2).'),
});

/** Form fields whose values are numbers or booleans: multipart sends every value as text. */
const NUMERIC_FIELDS = new Set(['n', 'output_compression', 'partial_images']);

/**
 * Multipart text values as the JSON the schemas expect: `"2"` → 2, `"false"` → false. Text
 * that is not a number stays text, so the schema names the field that is wrong.
 */
export function formValues(fields: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(fields).map(([name, value]) => {
      if (NUMERIC_FIELDS.has(name) && /^-?\d+(\.\d+)?$/.test(value.trim()))
        return [name, Number(value)];
      if (name === 'stream' && (value === 'true' || value === 'false'))
        return [name, value === 'true'];
      return [name, value];
    }),
  );
}

/**
 * Parses an endpoint's parameters, or throws OpenAI's 400 naming the parameter: an unknown one
 * as OpenAI words it (`Unknown parameter: 'colour'.`). `stream: true` is refused: rendermill
 * renders through its queue and answers with finished images.
 */
export function parseImageParams<S extends z.ZodType>(schema: S, data: unknown): z.infer<S> {
  const parsed = schema.safeParse(data ?? {});
  if (!parsed.success) throw paramsError(parsed.error);
  const params = parsed.data as { stream?: boolean | null };
  if (params.stream === true) {
    throw invalidRequest(
      'stream: streaming is not supported by rendermill, which renders through its queue and ' +
        'answers with the finished images; leave stream unset or false',
      'stream',
      'unsupported_parameter',
    );
  }
  return parsed.data;
}

function paramsError(error: z.ZodError): OpenAiError {
  const [issue] = error.issues as [z.core.$ZodIssue];
  if (issue.code === 'unrecognized_keys') {
    const [key] = issue.keys as [string];
    return invalidRequest(`Unknown parameter: '${key}'.`, key, 'unknown_parameter');
  }
  const param = issue.path.length > 0 ? String(issue.path[0]) : null;
  return invalidRequest(param ? `${param}: ${issue.message}` : issue.message, param);
}

export interface FacadeContext {
  registry: ModelRegistry;
  /** RENDERMILL_DEFAULT_MODEL. */
  defaultModel: string;
}

/**
 * The model of a request that names none: rendermill's default model when it can do the
 * operation, else the first model of the registry that can (variations: dall-e-2).
 */
export function modelFor(
  operation: Operation,
  requested: string | null | undefined,
  ctx: FacadeContext,
) {
  if (requested) return requested;
  if (ctx.registry.get(ctx.defaultModel)?.operations.includes(operation)) return ctx.defaultModel;
  return (
    ctx.registry.ids().find((id) => ctx.registry.get(id)?.operations.includes(operation)) ??
    ctx.defaultModel
  );
}

/**
 * How images are answered: as asked, else as OpenAI does for the model — `url` for DALL·E
 * models (the first of their `response_formats`), `b64_json` for gpt-image models.
 */
export function responseFormatFor(
  params: ImageParams,
  spec: ModelSpec | undefined,
): 'url' | 'b64_json' {
  return params.response_format ?? spec?.response_formats?.[0] ?? 'b64_json';
}

/** The id of the façade's one item in its batch. */
export const FACADE_ITEM_ID = 'image';

/**
 * The one-item batch an Images API request becomes. OpenAI's `auto` values that rendermill's
 * registry does not list for the model are left out, so the model's default applies:
 * `size: "auto"` everywhere, and `quality: "auto"` or `"standard"` where the model takes no
 * such quality (dall-e-2 takes none; OpenAI accepts `standard` for it).
 */
export function batchBodyFor(
  endpoint: 'generations' | 'edits' | 'variations',
  params: ImageParams,
  modelId: string,
  spec: ModelSpec | undefined,
  inputs: { images?: string[]; mask?: string } = {},
) {
  const operation: Operation =
    endpoint === 'generations' ? 'generate' : endpoint === 'edits' ? 'edit' : 'variation';
  const item: Record<string, unknown> = { id: FACADE_ITEM_ID, operation, model: modelId };
  const given = params as Partial<GenerationParams & EditParams>;
  if (given.prompt !== undefined) item.prompt = given.prompt;
  if (given.aspect_ratio != null) item.aspect_ratio = given.aspect_ratio;
  if (given.resolution != null) item.resolution = given.resolution;
  if (given.n != null) item.n = given.n;
  if (given.size != null && given.size !== 'auto') item.size = given.size;
  if (given.quality != null && !isDefaultQuality(given.quality, spec)) item.quality = given.quality;
  if (given.style != null) item.style = given.style;
  if (given.background != null) item.background = given.background;
  if (given.output_format != null) item.output_format = given.output_format;
  if (given.output_compression != null) item.output_compression = given.output_compression;
  if (inputs.images && inputs.images.length > 0) item.image = inputs.images;
  if (inputs.mask !== undefined) item.mask = inputs.mask;
  return {
    metadata: { source: 'images-api', endpoint },
    ...(given.routing != null && { routing: given.routing }),
    items: [item],
  };
}

/** Whether OpenAI's `quality` means "the model's default" for a model that does not list it. */
function isDefaultQuality(quality: string, spec: ModelSpec | undefined): boolean {
  if (!spec || spec.qualities?.includes(quality)) return false;
  return quality === 'auto' || (quality === 'standard' && spec.qualities === undefined);
}
