import type { SimulatorControl } from '../support/simulator-control.js';
import type { ProviderStats } from './provider.js';

/** One reading of the simulator's counters. */
export interface StatsSample {
  /** Epoch ms halfway through the stats call. */
  at: number;
  requests: number;
  billedImages: number;
  rateLimited: number;
}

/**
 * Polls `/_sim/stats` through a scenario: the simulator keeps only totals and the first 429's
 * time, so the last 429, the images billed by a given moment and the arrival of each accepted
 * call come from this time series (to within one polling interval). One small HTTP call per
 * interval: cheap beside the traffic being measured. Calls never overlap.
 */
export class StatsSampler {
  readonly samples: StatsSample[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly simulator: SimulatorControl,
    readonly intervalMs: number,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const asked = Date.now();
      try {
        const stats: ProviderStats = await this.simulator.stats();
        const answered = Date.now();
        this.samples.push({
          at: Math.round((asked + answered) / 2),
          requests: stats.requests,
          billedImages: stats.billedImages,
          rateLimited: stats.rateLimited,
        });
      } catch {
        // A missed reading only coarsens the series.
      }
      const wait = this.intervalMs - (Date.now() - asked);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async stop(): Promise<StatsSample[]> {
    this.stopped = true;
    await this.loop;
    return this.samples;
  }
}

/**
 * When the counter last went up: the first sample showing its final value (an upper bound,
 * late by at most one interval). null when it never rose above zero.
 */
export function lastRiseAt(
  samples: StatsSample[],
  field: 'rateLimited' | 'billedImages',
  finalValue: number,
): number | null {
  if (finalValue <= 0) return null;
  for (const sample of samples) if (sample[field] >= finalValue) return sample.at;
  return samples.at(-1)?.at ?? null;
}

/** Images billed by `at`, interpolated linearly between the samples around it. */
export function billedAt(samples: StatsSample[], at: number): number {
  let before: StatsSample | undefined;
  for (const sample of samples) {
    if (sample.at <= at) before = sample;
    else {
      if (!before) return 0;
      const share = (at - before.at) / (sample.at - before.at);
      return before.billedImages + share * (sample.billedImages - before.billedImages);
    }
  }
  return before?.billedImages ?? 0;
}

/**
 * When accepted calls were answered: the time of every sample at which billedImages rose. For
 * the slow rows, where calls are seconds apart and the sampler polls every 100 ms, each rise
 * is one call (whatever n the client chose), timed to within 100 ms.
 */
export function acceptedCallTimes(samples: StatsSample[]): number[] {
  const times: number[] = [];
  let seen = 0;
  for (const sample of samples) {
    if (sample.billedImages > seen) times.push(sample.at);
    seen = Math.max(seen, sample.billedImages);
  }
  return times;
}
