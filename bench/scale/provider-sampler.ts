import type { SimulatorStats } from '../../infra/simulator/server.js';
import type { SimulatorControl } from '../support/simulator-control.js';
import type { Sample } from './windows.js';

/**
 * Images the provider's bucket let through so far. Every generation request the simulator
 * counts either passes its bucket or is answered before it: a rate-limit 429 (`rateLimited`)
 * or a 4xx from the checks that come first (key, model, size …). Both are counted before the
 * handler's first await, so at any instant the rest passed the bucket. With n=1, requests are
 * images. (5xx faults come after the bucket and count as accepted: none are configured here.)
 */
export function acceptedImages(stats: SimulatorStats): number {
  const refusedBefore = Object.entries(stats.byStatus)
    .filter(([status]) => Number(status) >= 400 && Number(status) < 500)
    .reduce((sum, [, count]) => sum + count, 0);
  // `byStatus` includes the rate-limit 429s already; `rateLimited` is their share of them.
  return stats.requests - refusedBefore;
}

/**
 * Reads the simulator's counters every `intervalMs` (one request at a time, never piling up)
 * until stopped. Each sample is stamped with the middle of its round trip: on loopback the
 * counters were read within a millisecond or two of it.
 */
export class ProviderSampler {
  private readonly samples: Sample[] = [];
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private lastStats: SimulatorStats | undefined;

  private constructor(
    private readonly simulator: SimulatorControl,
    private readonly intervalMs: number,
  ) {}

  /** Resolves once the first sample is in: start it before the first request can be sent. */
  static async start(simulator: SimulatorControl, intervalMs: number): Promise<ProviderSampler> {
    const sampler = new ProviderSampler(simulator, intervalMs);
    await sampler.sampleOnce();
    sampler.loop = sampler.run();
    return sampler;
  }

  private async run(): Promise<void> {
    let next = Date.now() + this.intervalMs;
    while (!this.stopped) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
      next = Date.now() + this.intervalMs;
      if (!this.stopped) await this.sampleOnce();
    }
  }

  private async sampleOnce(): Promise<void> {
    const sent = Date.now();
    const stats = await this.simulator.stats();
    const at = (sent + Date.now()) / 2;
    this.lastStats = stats;
    this.samples.push({
      at,
      accepted: acceptedImages(stats),
      rateLimited: stats.rateLimited,
      billed: stats.billedImages,
    });
  }

  /** Stops sampling after one last sample, and returns every sample and the last counters. */
  async finish(): Promise<{ samples: Sample[]; stats: SimulatorStats }> {
    this.stopped = true;
    await this.loop;
    await this.sampleOnce();
    return { samples: this.samples, stats: this.lastStats! };
  }
}
