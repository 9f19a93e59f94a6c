import type { SimulatorKnobs, SimulatorStats } from '../../infra/simulator/server.js';

/**
 * The simulator runs as its own process (its rendering must not share the driver's event
 * loop), so the bench drives it over its HTTP control endpoints.
 */
export class SimulatorControl {
  constructor(readonly origin: string) {}

  get baseUrl(): string {
    return `${this.origin}/v1`;
  }

  async setKnobs(knobs: Partial<SimulatorKnobs>): Promise<void> {
    const response = await fetch(`${this.origin}/_sim/knobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(knobs),
    });
    if (!response.ok) throw new Error(`simulator refused knobs: ${await response.text()}`);
  }

  async stats(): Promise<SimulatorStats> {
    const response = await fetch(`${this.origin}/_sim/stats`);
    if (!response.ok) throw new Error(`simulator stats: HTTP ${response.status}`);
    return (await response.json()) as SimulatorStats;
  }

  /** Zeroes the counters and refills the bucket. */
  async reset(): Promise<void> {
    const response = await fetch(`${this.origin}/_sim/reset`, { method: 'POST' });
    if (!response.ok) throw new Error(`simulator reset: HTTP ${response.status}`);
  }
}
