import type { SimulatorStats } from '../../infra/simulator/server.js';
import type { ClientOutcome, Scenario } from './scenario.js';

export interface ScenarioResult {
  scenario: Scenario;
  /** Images the provider rendered and billed (200 answers × n). */
  images: number;
  /** From the provider's first request to its last answer. */
  elapsedSeconds: number;
  imagesPerMinute: number;
  /** imagesPerMinute ÷ the true limit; null when the simulator enforced none (a ceiling probe). */
  fractionOfLimit: number | null;
  requests: number;
  rateLimited: number;
  /** 429s ÷ requests. */
  rateLimitedFraction: number;
  /** Seconds from the first request to the first 429 (null without one): a start-up burst or pacing drift. */
  firstRateLimitedAfterSeconds: number | null;
  byStatus: Record<string, number>;
  itemsSucceeded: number;
  itemsLost: number;
  /** CPU seconds used per role during the scenario. */
  cpuSeconds: Record<string, number>;
  notes: string[];
}

/**
 * The figures are the provider's, not the client's: the simulator counts every request, 429
 * and billed image, and times the first request and the last answer, so every client is
 * measured the same way whatever it believes about itself.
 */
export function measure(
  scenario: Scenario,
  stats: SimulatorStats,
  outcome: ClientOutcome,
  cpuSeconds: Record<string, number>,
): ScenarioResult {
  const elapsedMs =
    stats.firstRequestAt !== null && stats.lastResponseAt !== null
      ? stats.lastResponseAt - stats.firstRequestAt
      : 0;
  const elapsedSeconds = elapsedMs / 1000;
  const imagesPerMinute = elapsedMs > 0 ? (stats.billedImages * 60_000) / elapsedMs : 0;
  return {
    scenario,
    images: stats.billedImages,
    elapsedSeconds,
    imagesPerMinute,
    fractionOfLimit: scenario.trueLimit > 0 ? imagesPerMinute / scenario.trueLimit : null,
    requests: stats.requests,
    rateLimited: stats.rateLimited,
    rateLimitedFraction: stats.requests > 0 ? stats.rateLimited / stats.requests : 0,
    firstRateLimitedAfterSeconds:
      stats.firstRateLimitedAt !== null && stats.firstRequestAt !== null
        ? (stats.firstRateLimitedAt - stats.firstRequestAt) / 1000
        : null,
    byStatus: stats.byStatus,
    itemsSucceeded: outcome.itemsSucceeded,
    itemsLost: outcome.itemsLost,
    cpuSeconds,
    notes: outcome.notes,
  };
}
