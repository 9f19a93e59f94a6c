import {
  CLIENTS,
  REQUEST_SHAPE,
  concurrencyFor,
  type ClientKind,
  type Scenario,
} from './scenario.js';

export const DEFAULT_LIMITS = [500, 10_000];
export const DEFAULT_WORKERS = [1, 4];
/** rendermill is run told the true limit, and told twice it (an account on a wrong tier). */
export const CONFIGS = ['true', '2x'] as const;
export type Config = (typeof CONFIGS)[number];

export interface PlanOptions {
  seconds: number;
  limits: number[];
  workers: number[];
  clients: ClientKind[];
  configs: Config[];
}

/** Items that take `seconds` at `limit` images per minute, REQUEST_SHAPE.n images each. */
export const itemsFor = (limit: number, seconds: number) =>
  Math.max(1, Math.round((limit * seconds) / 60 / REQUEST_SHAPE.n));

/** Every scenario of a run, grouped by limit then workers so related rows sit together. */
export function planScenarios(options: PlanOptions): Scenario[] {
  const scenarios: Scenario[] = [];
  for (const limit of options.limits) {
    for (const workers of options.workers) {
      for (const client of CLIENTS) {
        if (!options.clients.includes(client)) continue;
        // Only rendermill has a configured limit to get wrong; the anchors have one setting.
        const configs: Config[] = client === 'rendermill' ? options.configs : ['true'];
        for (const config of configs) {
          const configuredLimit = config === '2x' ? limit * 2 : limit;
          const label = client === 'rendermill' ? `${client}@${config}` : client;
          scenarios.push({
            id: `${label}-${workers}w-${limit}ipm-${Date.now().toString(36)}`,
            client,
            workers,
            trueLimit: limit,
            configuredLimit,
            items: itemsFor(limit, options.seconds),
            concurrency: concurrencyFor(limit, workers),
          });
        }
      }
    }
  }
  return scenarios;
}

/**
 * Ceiling probes: the simulator unlimited and rendermill told a limit it never reaches, to
 * measure what this machine's pipeline sustains (the feasibility check of the high limit).
 */
export function planCeilings(options: PlanOptions): Scenario[] {
  const limit = Math.max(...options.limits);
  return options.workers.map((workers) => ({
    id: `ceiling-${workers}w-${Date.now().toString(36)}`,
    client: 'rendermill',
    workers,
    trueLimit: 0,
    configuredLimit: 1_000_000,
    items: itemsFor(limit, options.seconds),
    concurrency: concurrencyFor(limit, workers),
  }));
}
