import type { FieldProblem } from '../errors.js';
import { cappedList } from '../request-validation.js';
import type { BatchItemInput } from '../contracts/batch-request.js';
import type { ItemWarning } from '../contracts/batch-records.js';
import {
  MAX_RATIO_TERM,
  RESOLUTIONS,
  fitSize,
  isResolution,
  parseAspectRatio,
} from '../models/fit-size.js';
import { controlCharacterProblem } from '../models/control-characters.js';
import { isRetired, type ModelRegistry } from '../models/model-registry.js';
import type { ModelSpec } from '../models/registry-schema.js';
import { CONTENT_TYPES, type ImageFormat, type RenderSpec } from '../models/render-spec.js';

export interface ValidationContext {
  registry: ModelRegistry;
  defaultModel: string;
  /** Refuse models OpenAI has retired (true when talking to OpenAI itself). */
  enforceRetirements: boolean;
  today: Date;
}

type Defaults = Omit<Partial<BatchItemInput>, 'id' | 'prompt' | 'image' | 'mask'>;

const list = (values: readonly string[]) => cappedList(values);

/** Every model takes every format: one a model cannot produce is converted with sharp. */
const OUTPUT_FORMATS = Object.keys(CONTENT_TYPES) as ImageFormat[];
/** The formats whose encoders take a quality, which output_compression sets. */
const COMPRESSED_FORMATS: readonly string[] = ['jpeg', 'webp', 'avif'];

/**
 * Resolves one batch item against the batch's defaults and checks it against the model
 * registry. Returns the render spec with what it does differently from the ask (`warnings`:
 * a nearer size, a converted format), or every problem found, each naming the field (as
 * `items[3].size` when the item set it, `size` when the batch default did).
 */
export function resolveItem(
  item: BatchItemInput,
  index: number,
  defaults: Defaults,
  ctx: ValidationContext,
):
  | { spec: RenderSpec; problems: []; warnings: ItemWarning[] }
  | { spec?: undefined; problems: FieldProblem[]; warnings?: undefined } {
  const problems: FieldProblem[] = [];
  const warnings: ItemWarning[] = [];
  const fieldOf = (name: keyof BatchItemInput) =>
    item[name] !== undefined ||
    !(name in defaults) ||
    defaults[name as keyof Defaults] === undefined
      ? `items[${index}].${name}`
      : name;
  const pick = <K extends keyof Defaults>(name: K) => item[name] ?? defaults[name];
  const problem = (name: keyof BatchItemInput, message: string) =>
    problems.push({ field: fieldOf(name), message });

  const modelId = pick('model') ?? ctx.defaultModel;
  const model = ctx.registry.get(modelId);
  if (!model) {
    problem('model', `unknown model "${modelId}"; known models: ${list(ctx.registry.ids())}`);
    return { problems };
  }
  if (ctx.enforceRetirements && isRetired(model, ctx.today)) {
    const instead = model.successor ? `; use ${model.successor}` : '';
    problem('model', `${model.id} was retired by OpenAI on ${model.retired_on}${instead}`);
    return { problems };
  }

  const operation = pick('operation') ?? 'generate';
  if (!model.operations.includes(operation)) {
    problem('operation', `${model.id} cannot ${operation}; it supports: ${list(model.operations)}`);
    return { problems };
  }

  const prompt = item.prompt;
  if (operation === 'variation') {
    if (prompt !== undefined) problem('prompt', 'a variation takes no prompt');
  } else if (prompt === undefined || prompt.trim() === '') {
    problem('prompt', `a prompt is required for ${operation}`);
  } else if (prompt.length > model.prompt_max_chars) {
    problem(
      'prompt',
      `prompt is ${prompt.length} characters; ${model.id} allows at most ${model.prompt_max_chars}`,
    );
  } else {
    const controlProblem = controlCharacterProblem(prompt);
    if (controlProblem) problem('prompt', controlProblem);
  }

  const size = resolveSize(item, defaults, model, problem, warnings);
  if (size !== undefined) {
    const sizeProblem = checkSize(model, size);
    if (sizeProblem) problem('size', sizeProblem);
  }

  const n = pick('n') ?? 1;
  if (n < model.n.min || n > model.n.max) {
    problem('n', `n must be between ${model.n.min} and ${model.n.max} for ${model.id}, got ${n}`);
  }

  const quality = checkChoice('quality', pick('quality'), model.qualities, model, problem);
  const style = checkChoice('style', pick('style'), model.styles, model, problem);
  const background = checkChoice(
    'background',
    pick('background'),
    model.backgrounds,
    model,
    problem,
  );
  const outputFormat = checkOutputFormat(pick('output_format'), model, problem, warnings);
  const compression = pick('output_compression');
  if (compression !== undefined && !COMPRESSED_FORMATS.includes(outputFormat ?? 'png')) {
    problem(
      'output_compression',
      'output_compression applies only to output_format jpeg, webp or avif',
    );
  }
  if (background === 'transparent' && outputFormat === 'jpeg') {
    problem('background', 'a transparent background needs output_format png, webp or avif');
  }

  const images = item.image === undefined ? [] : [item.image].flat();
  if (operation === 'generate') {
    if (images.length > 0)
      problem('image', 'image is only used by operation "edit" or "variation"');
  } else if (images.length === 0) {
    problem('image', `operation "${operation}" needs an input image (an S3 key or an http(s) URL)`);
  } else {
    const max = operation === 'variation' ? 1 : (model.edit_input?.max_images ?? 1);
    if (images.length > max) {
      problem('image', `${model.id} takes at most ${max} input image(s) for ${operation}`);
    }
  }
  if (item.mask !== undefined && (operation !== 'edit' || !model.edit_input?.mask)) {
    problem('mask', `a mask is only accepted by edits of models that support one`);
  }

  if (problems.length > 0 || size === undefined) return { problems };
  const spec: RenderSpec = { operation, model: model.id, size, n };
  if (prompt !== undefined) spec.prompt = prompt;
  if (quality !== undefined) spec.quality = quality;
  if (style !== undefined) spec.style = style;
  if (background !== undefined) spec.background = background;
  if (outputFormat !== undefined) spec.output_format = outputFormat;
  if (compression !== undefined) spec.output_compression = compression;
  if (images.length > 0) spec.images = images;
  if (item.mask !== undefined) spec.mask = item.mask;
  return { spec, problems: [], warnings };
}

/**
 * The size to render: `size` as given, else the nearest the model has to `aspect_ratio` at
 * `resolution` (default 1:1 at 1K, which is 1024x1024 wherever the model has it). An item that
 * asks a ratio or resolution of its own is not given the batch's default `size`: the more
 * specific ask wins. Undefined when the ratio or resolution is malformed (a problem says so).
 */
function resolveSize(
  item: BatchItemInput,
  defaults: Defaults,
  model: ModelSpec,
  problem: (name: keyof BatchItemInput, message: string) => void,
  warnings: ItemWarning[],
): string | undefined {
  const ownShape = item.aspect_ratio !== undefined || item.resolution !== undefined;
  const size = item.size ?? (ownShape ? undefined : defaults.size);
  const aspectRatio = item.aspect_ratio ?? defaults.aspect_ratio;
  const resolution = item.resolution ?? defaults.resolution;
  let malformed = false;
  if (aspectRatio !== undefined && !parseAspectRatio(aspectRatio)) {
    problem(
      'aspect_ratio',
      `aspect_ratio must be W:H with whole numbers from 1 to ${MAX_RATIO_TERM}, e.g. 16:9; got "${aspectRatio}"`,
    );
    malformed = true;
  }
  if (resolution !== undefined && !isResolution(resolution)) {
    problem(
      'resolution',
      `resolution must be one of ${list(Object.keys(RESOLUTIONS))}; got "${resolution}"`,
    );
    malformed = true;
  }
  if (malformed) return undefined;
  const fitted = fitSize(model, { size, aspect_ratio: aspectRatio, resolution });
  if (fitted.warning) warnings.push(fitted.warning);
  return fitted.size;
}

/**
 * Any of png, jpeg, webp or avif. When the model cannot produce the format itself, it renders
 * its own (png where it can) and sharp converts: a warning says so.
 */
function checkOutputFormat(
  format: string | undefined,
  model: ModelSpec,
  problem: (name: keyof BatchItemInput, message: string) => void,
  warnings: ItemWarning[],
): ImageFormat | undefined {
  if (format === undefined) return undefined;
  if (!(OUTPUT_FORMATS as string[]).includes(format)) {
    problem(
      'output_format',
      `output_format must be one of ${list(OUTPUT_FORMATS)}; got "${format}"`,
    );
    return undefined;
  }
  const native = model.output_formats ?? ['png'];
  if (!(native as string[]).includes(format)) {
    const rendered = native.includes('png') ? 'png' : (native[0] as string);
    warnings.push({
      field: 'output_format',
      asked: format,
      done: `rendered as ${rendered} and converted with sharp`,
      message: `${model.id} cannot produce ${format} (it gives ${list(native)}); the image is rendered as ${rendered} and converted to ${format} with sharp`,
    });
  }
  return format as ImageFormat;
}

function checkSize(model: ModelSpec, size: string): string | undefined {
  if ('fixed' in model.sizes) {
    return model.sizes.fixed.includes(size)
      ? undefined
      : `size "${size}" is not offered by ${model.id}; allowed: ${list(model.sizes.fixed)}`;
  }
  const rule = model.sizes.any;
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!match) return `size must look like WIDTHxHEIGHT, e.g. 1024x1024; got "${size}"`;
  const [w, h] = [Number(match[1]), Number(match[2])];
  const [long, short] = w >= h ? [w, h] : [h, w];
  if (w === 0 || h === 0 || w % rule.multiple_of !== 0 || h % rule.multiple_of !== 0) {
    return `${model.id} needs both sides of size divisible by ${rule.multiple_of}; got ${size}`;
  }
  if (long > rule.max_long_edge || short > rule.max_short_edge) {
    return `size ${size} is larger than ${model.id} allows (${rule.max_long_edge}x${rule.max_short_edge} either way)`;
  }
  return undefined;
}

function checkChoice(
  name: 'quality' | 'style' | 'background',
  value: string | undefined,
  allowed: readonly string[] | undefined,
  model: ModelSpec,
  problem: (name: keyof BatchItemInput, message: string) => void,
): string | undefined {
  if (value === undefined) return undefined;
  if (!allowed) {
    problem(name, `${model.id} takes no ${name}`);
  } else if (!allowed.includes(value)) {
    problem(name, `${name} "${value}" is not offered by ${model.id}; allowed: ${list(allowed)}`);
  }
  return value;
}

/**
 * Why `model` cannot render what an already-validated spec asks for — used when a fallback
 * account would render an item with its own model — or undefined if it can. The spec is
 * checked exactly as a submitted item naming that model would be.
 */
export function whyModelCannotRender(
  spec: RenderSpec,
  model: ModelSpec,
  registry: ModelRegistry,
): string | undefined {
  const item: BatchItemInput = {
    id: 'fallback',
    model: model.id,
    operation: spec.operation,
    size: spec.size,
    n: spec.n,
    ...(spec.prompt !== undefined && { prompt: spec.prompt }),
    ...(spec.quality !== undefined && { quality: spec.quality }),
    ...(spec.style !== undefined && { style: spec.style }),
    ...(spec.background !== undefined && { background: spec.background }),
    ...(spec.output_format !== undefined && { output_format: spec.output_format }),
    ...(spec.output_compression !== undefined && {
      output_compression: spec.output_compression,
    }),
    ...(spec.images !== undefined && { image: spec.images }),
    ...(spec.mask !== undefined && { mask: spec.mask }),
  };
  const { problems } = resolveItem(
    item,
    0,
    {},
    {
      registry,
      defaultModel: model.id,
      enforceRetirements: false,
      today: new Date(),
    },
  );
  return problems.length > 0 ? problems.map((p) => p.message).join('; ') : undefined;
}
