import type { ItemWarning } from './render-spec.js';
import type { ModelSpec } from './registry-schema.js';

/**
 * Turns a model-neutral ask — an aspect ratio at a resolution — into a size the model renders,
 * so that one batch can name "16:9 at 2K" whatever model or route renders it.
 */

/** The long edge of each resolution class, in pixels. */
export const RESOLUTIONS = { '0.5K': 512, '1K': 1024, '2K': 2048, '4K': 3840 } as const;
export type Resolution = keyof typeof RESOLUTIONS;
export const DEFAULT_RESOLUTION: Resolution = '1K';
export const DEFAULT_ASPECT_RATIO = '1:1';

/** Both terms of a ratio stay small: "16:9", "21:9", not a size in disguise. */
export const MAX_RATIO_TERM = 100;

/**
 * A fixed size counts as the asked ratio within this much (as a difference of logarithms,
 * about 8%): models name a ratio by a size that only approaches it (Imagen's 3:4 is 896x1280).
 */
const FIXED_RATIO_TOLERANCE = Math.log(1.08);

export interface SizeAsk {
  size?: string | undefined;
  aspect_ratio?: string | undefined;
  resolution?: string | undefined;
}

export interface FittedSize {
  size: string;
  /** Set when the size differs from what was asked beyond rounding, or an ask was ignored. */
  warning?: ItemWarning;
}

/** The ratio's two terms, or undefined when it is not W:H with terms from 1 to MAX_RATIO_TERM. */
export function parseAspectRatio(text: string): { w: number; h: number } | undefined {
  const match = /^(\d{1,3}):(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const [w, h] = [Number(match[1]), Number(match[2])];
  if (w < 1 || h < 1 || w > MAX_RATIO_TERM || h > MAX_RATIO_TERM) return undefined;
  return { w, h };
}

export function isResolution(text: string): text is Resolution {
  return Object.hasOwn(RESOLUTIONS, text);
}

const parseSize = (size: string) => size.split('x').map(Number) as [number, number];
const logRatio = (w: number, h: number) => Math.log(w / h);

/**
 * The size to render for `ask`. A `size` wins (an aspect_ratio or resolution also given is
 * ignored, with a warning). Otherwise the target is the ratio (default 1:1) with the
 * resolution's long edge (default 1K): a model with fixed sizes gets the one nearest in ratio
 * (then in long edge); a model with free sizes gets the target rounded to its multiple and kept
 * within its edges. Callers validate `aspect_ratio` and `resolution` first.
 */
export function fitSize(model: ModelSpec, ask: SizeAsk): FittedSize {
  if (ask.size !== undefined) return { size: ask.size, ...ignoredAsk(ask, ask.size) };

  const ratio = parseAspectRatio(ask.aspect_ratio ?? DEFAULT_ASPECT_RATIO);
  if (!ratio) throw new Error(`aspect_ratio "${ask.aspect_ratio}" is not W:H`);
  const resolution = ask.resolution ?? DEFAULT_RESOLUTION;
  if (!isResolution(resolution)) throw new Error(`resolution "${resolution}" is not known`);
  const target = { logRatio: logRatio(ratio.w, ratio.h), longEdge: RESOLUTIONS[resolution] };

  const size =
    'fixed' in model.sizes
      ? nearestFixedSize(model.sizes.fixed, target)
      : freeSize(model.sizes.any, ratio, target.longEdge);
  const [w, h] = parseSize(size);

  const ratioTolerance =
    'fixed' in model.sizes
      ? FIXED_RATIO_TOLERANCE
      : // What rounding each side to the model's multiple can move the ratio by.
        Math.log1p(model.sizes.any.multiple_of / Math.min(w, h));
  const ratioMissed =
    ask.aspect_ratio !== undefined &&
    Math.abs(logRatio(w, h) - target.logRatio) > ratioTolerance + 1e-9;
  // A fixed size is judged by its class (the model renders what it renders at "1K"); a free
  // size must have the asked long edge, give or take the rounding to the model's multiple.
  const resolutionMissed =
    ask.resolution !== undefined &&
    ('fixed' in model.sizes
      ? resolutionClass(Math.max(w, h)) !== resolution
      : Math.abs(Math.max(w, h) - target.longEdge) > model.sizes.any.multiple_of);
  if (!ratioMissed && !resolutionMissed) return { size };

  const asked = [ask.aspect_ratio, ask.resolution].filter((v) => v !== undefined).join(' at ');
  const missed = [ratioMissed && 'aspect ratio', resolutionMissed && 'resolution']
    .filter(Boolean)
    .join(' and ');
  return {
    size,
    warning: {
      field: ratioMissed ? 'aspect_ratio' : 'resolution',
      asked,
      done: size,
      message: `${model.id} cannot render ${asked} (${missed}); rendered ${size}, the nearest it offers`,
    },
  };
}

/** The warning for an aspect_ratio or resolution given beside a size. */
function ignoredAsk(ask: SizeAsk, size: string): Pick<FittedSize, 'warning'> {
  const ignored = (['aspect_ratio', 'resolution'] as const).filter((f) => ask[f] !== undefined);
  const [first] = ignored;
  if (first === undefined) return {};
  return {
    warning: {
      field: first,
      asked: ignored.map((f) => ask[f]).join(' at '),
      done: size,
      message: `size ${size} was given, so ${ignored.join(' and ')} ${ignored.length > 1 ? 'were' : 'was'} ignored`,
    },
  };
}

function nearestFixedSize(
  sizes: readonly string[],
  target: { logRatio: number; longEdge: number },
): string {
  const scored = sizes.map((size) => {
    const [w, h] = parseSize(size);
    return {
      size,
      ratioGap: Math.abs(logRatio(w, h) - target.logRatio),
      edgeGap: Math.abs(Math.max(w, h) - target.longEdge),
    };
  });
  scored.sort((a, b) =>
    Math.abs(a.ratioGap - b.ratioGap) > 1e-9 ? a.ratioGap - b.ratioGap : a.edgeGap - b.edgeGap,
  );
  return (scored[0] as (typeof scored)[number]).size;
}

/**
 * The target in a model that renders any size: the long edge as asked, the short one from the
 * ratio, both scaled down together when an edge exceeds the model's limits (keeping the ratio
 * rather than the edge), then rounded to the model's multiple.
 */
function freeSize(
  rule: { multiple_of: number; max_long_edge: number; max_short_edge: number },
  ratio: { w: number; h: number },
  longEdge: number,
): string {
  const wide = ratio.w >= ratio.h;
  const [longTerm, shortTerm] = wide ? [ratio.w, ratio.h] : [ratio.h, ratio.w];
  let long = longEdge;
  let short = (longEdge * shortTerm) / longTerm;
  const scale = Math.min(1, rule.max_long_edge / long, rule.max_short_edge / short);
  long *= scale;
  short *= scale;
  const round = (edge: number, max: number) =>
    Math.min(
      Math.floor(max / rule.multiple_of) * rule.multiple_of,
      Math.max(rule.multiple_of, Math.round(edge / rule.multiple_of) * rule.multiple_of),
    );
  const [l, s] = [round(long, rule.max_long_edge), round(short, rule.max_short_edge)];
  return wide ? `${l}x${s}` : `${s}x${l}`;
}

/**
 * The resolution class a long edge belongs to: the nearest by ratio of edges, so a fixed ~1 MP
 * size (1344x768) counts as 1K.
 */
function resolutionClass(longEdge: number): Resolution {
  let best: Resolution = DEFAULT_RESOLUTION;
  let bestGap = Infinity;
  for (const [name, edge] of Object.entries(RESOLUTIONS) as [Resolution, number][]) {
    const gap = Math.abs(Math.log(longEdge / edge));
    if (gap < bestGap) [best, bestGap] = [name, gap];
  }
  return best;
}
