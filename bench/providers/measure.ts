import type { SimulatorStats } from '../../infra/simulator/server.js';
import { PRICES, ROUTES, type RouteName, type Row } from './plan.js';

/**
 * One sample of every simulator: [ms epoch, billed gateway, replicate, fal, in flight gateway,
 * replicate, fal].
 */
export type BilledSample = [number, number, number, number, number, number, number];

export interface RowResult {
  row: Row;
  batchStatus: string;
  itemsSucceeded: number;
  itemsNotSucceeded: number;
  /** Items by the route the manifest says rendered them. */
  itemsByRoute: Record<RouteName, number>;
  /** Images each simulator billed. */
  billedByRoute: Record<RouteName, number>;
  /** 429s each simulator answered. */
  rateLimitedByRoute: Record<RouteName, number>;
  requestsByRoute: Record<RouteName, number>;
  /** Each simulator's answers to image requests by HTTP status. */
  statusByRoute: Record<RouteName, Record<string, number>>;
  /** Provider side: first image request to last answer over all simulators, seconds. */
  elapsedSeconds: number;
  /** Images billed per second over the middle of the run (first and last trim seconds cut). */
  steadyPerSecond: number | null;
  steadyWindowSeconds: [number, number] | null;
  /** steady ÷ Σ limits of the routes the strategy should use. */
  steadyFraction: number | null;
  /** Images per second over the whole provider-side run. */
  overallPerSecond: number;
  /** Per route, images per second over the same steady window, and its share of the route's limit. */
  steadyByRoute: Record<RouteName, number | null>;
  /** Prompts billed once / more than once / never (over all simulators), vs items. */
  promptsBilledOnce: number;
  promptsBilledTwiceOrMore: number;
  itemsNeverBilled: number;
  /** Spend the batch reports, and Σ route price × images billed, in micro-dollars. */
  spendMicros: number;
  expectedSpendMicros: number;
  spendMatches: boolean;
  /** CPU seconds of rendermill's processes (api + workers) over the row, and per image rendered. */
  cpuSeconds: Record<string, number>;
  cpuMsPerImage: number | null;
  /** Queued rows: items seen handed back (running with a pending prediction) at least once. */
  itemsHandedBack: number | null;
  wallSeconds: number;
  /** The samples, ms after the first request: [t, billed gw, r8, fal, in flight gw, r8, fal]. */
  series: BilledSample[];
  /** rendermill's render queue, ms after the first request: [t, active, waiting, delayed]. */
  queueSeries?: [number, number, number, number][];
  /** With --scrape-metrics: the worker's /metrics lines of interest, every 2 s. */
  metricsScrapes?: { t: number; lines: string[] }[];
  /**
   * The machine over the row: cores busy (every process on it, from /proc/stat), cores used by
   * the processes this bench started and itself, the core count, and the 1-minute load average
   * at the end. busy − own is other work sharing the machine.
   */
  machine?: { busyCores: number; ownCores: number; cores: number; loadAverage1m: number };
  notes: string[];
}

/** Billed images (all routes summed) at time t, linearly between samples. */
function billedAt(samples: BilledSample[], t: number, pick: (s: BilledSample) => number): number {
  if (samples.length === 0) return 0;
  if (t <= samples[0]![0]) return pick(samples[0]!);
  for (let i = 1; i < samples.length; i++) {
    const b = samples[i]!;
    if (t <= b[0]) {
      const a = samples[i - 1]!;
      const span = b[0] - a[0];
      return span === 0 ? pick(b) : pick(a) + ((pick(b) - pick(a)) * (t - a[0])) / span;
    }
  }
  return pick(samples[samples.length - 1]!);
}

export function measureRow(input: {
  row: Row;
  limits: Record<RouteName, number>;
  trimSeconds: number;
  stats: Record<RouteName, SimulatorStats>;
  samples: BilledSample[];
  batch: { status: string; counts: Record<string, number>; spend_usd: number };
  manifestItems: { id: string; status: string; route: string | null; prompt: string | null }[];
  prompts: string[];
  cpuSeconds: Record<string, number>;
  itemsHandedBack: number | null;
  wallSeconds: number;
  notes: string[];
}): RowResult {
  const { row, stats, samples, trimSeconds } = input;
  const per = <T>(f: (route: RouteName) => T) =>
    Object.fromEntries(ROUTES.map((route) => [route, f(route)])) as Record<RouteName, T>;

  const firsts = ROUTES.map((r) => stats[r].firstRequestAt).filter((t): t is number => t !== null);
  const lasts = ROUTES.map((r) => stats[r].lastResponseAt).filter((t): t is number => t !== null);
  const first = firsts.length ? Math.min(...firsts) : null;
  const last = lasts.length ? Math.max(...lasts) : null;
  const elapsedSeconds = first !== null && last !== null ? (last - first) / 1000 : 0;
  const billedTotal = ROUTES.reduce((sum, route) => sum + stats[route].billedImages, 0);

  let steadyPerSecond: number | null = null;
  let steadyWindowSeconds: [number, number] | null = null;
  const steadyByRoute = per<number | null>(() => null);
  if (first !== null && last !== null) {
    const from = first + trimSeconds * 1000;
    const to = last - trimSeconds * 1000;
    if (to - from >= 2000) {
      const total = (s: BilledSample) => s[1] + s[2] + s[3];
      const seconds = (to - from) / 1000;
      steadyPerSecond = (billedAt(samples, to, total) - billedAt(samples, from, total)) / seconds;
      steadyWindowSeconds = [trimSeconds, (to - first) / 1000];
      ROUTES.forEach((route, i) => {
        const pick = (s: BilledSample) => s[i + 1]!;
        steadyByRoute[route] =
          (billedAt(samples, to, pick) - billedAt(samples, from, pick)) / seconds;
      });
    }
  }

  const byPrompt = new Map<string, number>();
  for (const route of ROUTES) {
    for (const [prompt, count] of Object.entries(stats[route].billedImagesByPrompt)) {
      byPrompt.set(prompt, (byPrompt.get(prompt) ?? 0) + count);
    }
  }
  let once = 0;
  let more = 0;
  let never = 0;
  for (const prompt of input.prompts) {
    const count = byPrompt.get(prompt) ?? 0;
    if (count === 1) once++;
    else if (count > 1) more++;
    else never++;
  }
  const stray = [...byPrompt.keys()].filter((p) => !input.prompts.includes(p));
  const notes = [...input.notes];
  if (stray.length > 0) notes.push(`${stray.length} prompts billed that are not this row's`);

  const itemsByRoute = per(() => 0);
  for (const item of input.manifestItems) {
    if (item.status === 'succeeded' && item.route && item.route in itemsByRoute)
      itemsByRoute[item.route as RouteName]++;
  }
  const itemsSucceeded = input.batch.counts.succeeded ?? 0;
  const spendMicros = Math.round(input.batch.spend_usd * 1e6);
  const expectedSpendMicros = ROUTES.reduce(
    (sum, route) => sum + Math.round(PRICES[route] * 1e6) * stats[route].billedImages,
    0,
  );
  const rendermillCpu = Object.entries(input.cpuSeconds)
    .filter(([role]) => role.startsWith('rendermill'))
    .reduce((sum, [, seconds]) => sum + seconds, 0);
  const images = input.manifestItems.filter((item) => item.status === 'succeeded').length;
  return {
    row,
    batchStatus: input.batch.status,
    itemsSucceeded,
    itemsNotSucceeded: row.items - itemsSucceeded,
    itemsByRoute,
    billedByRoute: per((route) => stats[route].billedImages),
    rateLimitedByRoute: per((route) => stats[route].rateLimited),
    requestsByRoute: per((route) => stats[route].requests),
    statusByRoute: per((route) => stats[route].byStatus),
    elapsedSeconds,
    steadyPerSecond,
    steadyWindowSeconds,
    steadyFraction: steadyPerSecond === null ? null : steadyPerSecond / row.targetPerSecond,
    overallPerSecond: elapsedSeconds > 0 ? billedTotal / elapsedSeconds : 0,
    steadyByRoute,
    promptsBilledOnce: once,
    promptsBilledTwiceOrMore: more,
    itemsNeverBilled: never,
    spendMicros,
    expectedSpendMicros,
    spendMatches: spendMicros === expectedSpendMicros,
    cpuSeconds: input.cpuSeconds,
    cpuMsPerImage: images > 0 ? (rendermillCpu * 1000) / images : null,
    itemsHandedBack: input.itemsHandedBack,
    wallSeconds: input.wallSeconds,
    series: samples.map(([t, ...rest]) => [t - (first ?? t), ...rest] as BilledSample),
    notes,
  };
}
