import {
  HEADER_NAMES,
  REAL_MINUTE_MS,
  SHAPES,
  windowAllowance,
  type HeaderVariant,
  type LimitShape,
} from './provider.js';
import {
  CLIENTS,
  concurrencyFor,
  requestImages,
  type ClientKind,
  type Scenario,
} from './scenario.js';

export const DEFAULT_LIMITS = [5, 600, 3_000];
export const DEFAULT_WORKERS = [1, 4];
/**
 * The default header variants: the two ends. The other two (`requests`, `images`) are run with
 * `--headers requests,images` (or `--headers every`); all four in one run take ~55 minutes.
 */
export const DEFAULT_HEADERS: HeaderVariant[] = ['none', 'all'];
/** 15 s scenarios: the default matrix then takes ~32 minutes; each has a ≥ 7.5 s steady part. */
export const DEFAULT_SECONDS = 15;
/** rendermill is run told the true limit, and told twice it (an account on a wrong tier). */
export const CONFIGS = ['true', '2x'] as const;
export type Config = (typeof CONFIGS)[number];

/**
 * Limits under this many images per minute run on a shortened minute on both sides (the clock
 * knobs), so that a 15 s scenario still sees a dozen calls: 5/min over a 6 s minute is one
 * image per 1.2 s. `--real-minute` adds one row on a real minute.
 */
export const SHORT_MINUTE_BELOW = 60;
export const SHORT_MINUTE_MS = 6_000;
/** The real-minute row: rendermill told the truth at 5/min, two items of n=4 (8 calls ~12 s apart). */
export const REAL_MINUTE_LIMIT = 5;
export const REAL_MINUTE_ITEMS = 2;

export interface PlanOptions {
  seconds: number;
  limits: number[];
  workers: number[];
  shapes: LimitShape[];
  headers: HeaderVariant[];
  clients: ClientKind[];
  configs: Config[];
  realMinute: boolean;
}

export const minuteFor = (limit: number) =>
  limit > 0 && limit < SHORT_MINUTE_BELOW ? SHORT_MINUTE_MS : REAL_MINUTE_MS;

/** Items that take `seconds` at `limit` images per minute of `minuteMs`, n images each. */
export const itemsFor = (limit: number, seconds: number, n: number, minuteMs: number) =>
  Math.max(1, Math.round((limit * seconds * 1000) / minuteMs / n));

/**
 * Generous enough for a client at a quarter of the limit to finish; past that it has lost.
 * A row whose requests are larger than the provider's window is refused whatever the pacing
 * (the anchors at 5/min): it is stopped after 10 s, as waiting longer changes nothing.
 */
export const DOOMED_DEADLINE_MS = 10_000;
const deadlineFor = (seconds: number, doomed: boolean) =>
  doomed ? DOOMED_DEADLINE_MS : (seconds * 4 + 60) * 1000;

let sequence = 0;
const idFor = (label: string) => `${label}-${Date.now().toString(36)}-${(sequence++).toString(36)}`;

/**
 * Every scenario of a run, grouped by limit, then shape, then workers, so related rows sit
 * together. The anchors ignore rate headers, so they run once per shape × workers × limit
 * (under the first header variant asked for), not once per header variant; they have no
 * configured limit to get wrong, so they run once, with the true one.
 */
export function planScenarios(options: PlanOptions): Scenario[] {
  const scenarios: Scenario[] = [];
  for (const limit of options.limits) {
    const n = requestImages(limit);
    const minuteMs = minuteFor(limit);
    const items = itemsFor(limit, options.seconds, n, minuteMs);
    for (const shape of options.shapes) {
      for (const workers of options.workers) {
        const concurrency = concurrencyFor(limit, workers, n, minuteMs);
        const base = { workers, trueLimit: limit, shape, minuteMs, n, items, concurrency };
        for (const client of CLIENTS) {
          if (!options.clients.includes(client)) continue;
          if (client !== 'rendermill') {
            const doomed = n > windowAllowance(limit, minuteMs).allowance;
            scenarios.push({
              ...base,
              id: idFor(`${client}-${shape}-${workers}w-${limit}ipm`),
              client,
              configuredLimit: limit,
              headers: options.headers[0]!,
              realMinute: false,
              deadlineMs: deadlineFor(options.seconds, doomed),
            });
            continue;
          }
          for (const headers of options.headers) {
            for (const config of options.configs) {
              scenarios.push({
                ...base,
                id: idFor(`rendermill@${config}-${shape}-${headers}-${workers}w-${limit}ipm`),
                client,
                configuredLimit: config === '2x' ? limit * 2 : limit,
                headers,
                realMinute: false,
                deadlineMs: deadlineFor(options.seconds, false),
              });
            }
          }
        }
      }
    }
  }
  if (options.realMinute) {
    const limit = REAL_MINUTE_LIMIT;
    const n = requestImages(limit);
    const workers = Math.max(...options.workers);
    // Eight calls 12 s apart take ~84 s; give it twice that.
    const expectedMs = (REAL_MINUTE_ITEMS * n * REAL_MINUTE_MS) / limit;
    scenarios.push({
      id: idFor(`rendermill@true-real-minute-${workers}w-${limit}ipm`),
      client: 'rendermill',
      workers,
      trueLimit: limit,
      configuredLimit: limit,
      shape: options.shapes[0]!,
      headers: options.headers[0]!,
      minuteMs: REAL_MINUTE_MS,
      n,
      items: REAL_MINUTE_ITEMS,
      concurrency: concurrencyFor(limit, workers, n, REAL_MINUTE_MS),
      realMinute: true,
      deadlineMs: expectedMs * 2 + 60_000,
    });
  }
  return scenarios;
}

/**
 * Ceiling probes: the simulator unlimited and rendermill told a limit it never reaches, to
 * measure what this machine's pipeline sustains (the feasibility check of the high limit).
 */
export function planCeilings(options: PlanOptions): Scenario[] {
  const limit = Math.max(...options.limits);
  const n = requestImages(limit);
  return options.workers.map((workers) => ({
    id: idFor(`ceiling-${workers}w`),
    client: 'rendermill',
    workers,
    trueLimit: 0,
    configuredLimit: 1_000_000,
    shape: options.shapes[0]!,
    headers: options.headers[0]!,
    minuteMs: REAL_MINUTE_MS,
    n,
    items: itemsFor(limit, options.seconds, n, REAL_MINUTE_MS),
    concurrency: concurrencyFor(limit, workers, n, REAL_MINUTE_MS),
    realMinute: false,
    deadlineMs: deadlineFor(options.seconds, false),
  }));
}

/**
 * Seconds a scenario adds to a run beyond its own length (start-up, settling, stopping), fitted
 * to a 16-scenario run on a 2-core machine (estimated within a few per cent): rendermill ~3 s
 * plus 1 s a worker, an anchor ~3–4 s.
 */
const overheadSeconds = (s: Scenario) =>
  s.client === 'rendermill' ? 3 + s.workers : s.client === 'naive' ? 4 : 3;

/**
 * What a plan should take, for `--list` and the banner. The naive client does not pace: it
 * spends its items in a few seconds, losing most of them.
 */
export function estimateSeconds(scenarios: Scenario[], seconds: number): number {
  return scenarios.reduce((total, s) => {
    const own = s.realMinute
      ? (s.items * s.n * s.minuteMs) / s.trueLimit / 1000
      : s.deadlineMs === DOOMED_DEADLINE_MS
        ? s.deadlineMs / 1000
        : s.client === 'naive'
          ? Math.min(seconds, 3)
          : seconds;
    return total + own + overheadSeconds(s);
  }, 0);
}

export const ALL_SHAPES = SHAPES;
export const ALL_HEADERS = HEADER_NAMES;
