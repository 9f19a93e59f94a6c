import { parseArgs } from 'node:util';

/**
 * The providers bench's matrix: every routing strategy over every provider shape, three
 * routes (an OpenAI-compatible gateway, a Replicate-shaped and a fal-shaped provider), each a
 * simulator process of its own with its own limit and price.
 */

export const ROUTES = ['gateway', 'replicate', 'fal'] as const;
export type RouteName = (typeof ROUTES)[number];

export const STRATEGIES = ['spread', 'cheapest', 'priority'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** `queued`: bucket limits, and Replicate and fal keep every prediction queued for `queuedMs`. */
export const SHAPES = ['bucket', 'sliding', 'fixed', 'queued'] as const;
export type Shape = (typeof SHAPES)[number];

/** Price per flux-schnell image on each route, USD. Distinct, so cheapest has one answer. */
export const PRICES: Record<RouteName, number> = { gateway: 0.005, replicate: 0.003, fal: 0.004 };

/** The one model every item renders: served by all three routes. */
export const MODEL = 'flux-schnell';

export interface Options {
  seconds: number;
  limits: Record<RouteName, number>;
  strategies: Strategy[];
  shapes: Shape[];
  queuedMs: number;
  followMs: number;
  recheckMs: number;
  concurrency: number;
  workers: number;
  latencyMs: number;
  /** Seconds cut from each end of the provider-side run for the steady rate. */
  trimSeconds: number;
  list: boolean;
  /** Serve the worker's /metrics and scrape it every 2 s (limiter headroom, call times, event-loop lag). */
  scrapeMetrics: boolean;
}

export interface Row {
  id: string;
  strategy: Strategy;
  shape: Shape;
  /** The routes the strategy should render on. */
  expectedRoutes: RouteName[];
  /** Σ of their limits, images per second. */
  targetPerSecond: number;
  items: number;
  deadlineMs: number;
}

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const parts = value === 'every' ? [...allowed] : value.split(',').map((part) => part.trim());
  for (const part of parts) {
    if (!allowed.includes(part as T))
      throw new Error(`--${flag}: ${part} is not one of ${allowed.join(', ')}`);
  }
  return parts as T[];
}

function positive(flag: string, value: string, allowZero = false): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || (!allowZero && parsed === 0))
    throw new Error(`--${flag}: ${value} is not a positive number`);
  return parsed;
}

export function parseOptions(argv = process.argv.slice(2)): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '20' },
      limits: { type: 'string', default: '600,600,1200' },
      strategies: { type: 'string', default: STRATEGIES.join(',') },
      shapes: { type: 'string', default: SHAPES.join(',') },
      'queued-ms': { type: 'string', default: '2500' },
      'follow-ms': { type: 'string', default: '500' },
      'recheck-ms': { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '48' },
      workers: { type: 'string', default: '1' },
      'latency-ms': { type: 'string', default: '100' },
      trim: { type: 'string', default: '3' },
      list: { type: 'boolean', default: false },
      'scrape-metrics': { type: 'boolean', default: false },
    },
  });
  const limitParts = values.limits.split(',').map((part) => positive('limits', part.trim()));
  if (limitParts.length !== 3)
    throw new Error('--limits: three values, images/min of gateway,replicate,fal');
  return {
    seconds: positive('seconds', values.seconds),
    limits: { gateway: limitParts[0]!, replicate: limitParts[1]!, fal: limitParts[2]! },
    strategies: list('strategies', values.strategies, STRATEGIES),
    shapes: list('shapes', values.shapes, SHAPES),
    queuedMs: positive('queued-ms', values['queued-ms'], true),
    followMs: positive('follow-ms', values['follow-ms'], true),
    recheckMs: positive('recheck-ms', values['recheck-ms']),
    concurrency: Math.round(positive('concurrency', values.concurrency)),
    workers: Math.round(positive('workers', values.workers)),
    latencyMs: positive('latency-ms', values['latency-ms'], true),
    trimSeconds: positive('trim', values.trim, true),
    list: values.list,
    scrapeMetrics: values['scrape-metrics'],
  };
}

/** Which routes a strategy should fill: spread all; cheapest the lowest price; priority the first. */
export function expectedRoutes(strategy: Strategy): RouteName[] {
  if (strategy === 'spread') return [...ROUTES];
  if (strategy === 'priority') return [ROUTES[0]];
  const cheapest = [...ROUTES].sort((a, b) => PRICES[a] - PRICES[b])[0]!;
  return [cheapest];
}

export function planRows(options: Options): Row[] {
  const rows: Row[] = [];
  const stamp = Date.now().toString(36);
  for (const shape of options.shapes) {
    for (const strategy of options.strategies) {
      const routes = expectedRoutes(strategy);
      const targetPerSecond = routes.reduce((sum, route) => sum + options.limits[route], 0) / 60;
      const items = Math.max(10, Math.round(targetPerSecond * options.seconds));
      rows.push({
        id: `${stamp}-${strategy}-${shape}`,
        strategy,
        shape,
        expectedRoutes: routes,
        targetPerSecond,
        items,
        deadlineMs: Math.max(60_000, 4 * options.seconds * 1000),
      });
    }
  }
  return rows;
}

/** Rough wall time: the rendering, plus start-up, settling and stopping (~7 s a row). */
export const estimateSeconds = (rows: Row[], options: Options) =>
  rows.length * (options.seconds + 7) + 10;
