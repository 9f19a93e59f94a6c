import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { SimulatorKnobs } from './knobs.js';
import { startSimulator } from './server.js';

/**
 * Runs the provider simulator on its own:
 *   node dist/infra/simulator/main.js --port 4010 --images-per-minute 500 --latency-ms 50
 * Flags fall back to SIM_PORT, SIM_HOST, SIM_IMAGES_PER_MINUTE and SIM_LATENCY_MS. The rate
 * limit's other flags (--tokens-per-minute, --requests-per-minute, --limit-shape
 * bucket|sliding|fixed, --limit-window-ms, --minute-ms) take the knobs' defaults when absent.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.SIM_PORT ?? '4010' },
    host: { type: 'string', default: process.env.SIM_HOST ?? '127.0.0.1' },
    'images-per-minute': { type: 'string', default: process.env.SIM_IMAGES_PER_MINUTE ?? '500' },
    'latency-ms': { type: 'string', default: process.env.SIM_LATENCY_MS ?? '0' },
    'tokens-per-minute': { type: 'string' },
    'requests-per-minute': { type: 'string' },
    'limit-shape': { type: 'string' },
    'limit-window-ms': { type: 'string' },
    'minute-ms': { type: 'string' },
  },
});

/** A flag given as a number, or absent; a typo reaches the knobs' validation as NaN. */
const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));

const knobs = {
  imagesPerMinute: Number(values['images-per-minute']),
  latencyMs: Number(values['latency-ms']),
  tokensPerMinute: number(values['tokens-per-minute']),
  requestsPerMinute: number(values['requests-per-minute']),
  limitShape: values['limit-shape'] as SimulatorKnobs['limitShape'] | undefined,
  limitWindowMs: number(values['limit-window-ms']),
  minuteMs: number(values['minute-ms']),
};
// Absent flags are left out, so the knobs' defaults apply rather than an explicit undefined.
const given = Object.fromEntries(Object.entries(knobs).filter(([, v]) => v !== undefined));

const simulator = await startSimulator({
  port: Number(values.port),
  host: values.host,
  ...given,
}).catch((error: unknown) => {
  if (!(error instanceof z.ZodError)) throw error;
  process.stderr.write(`provider simulator: invalid flags\n${z.prettifyError(error)}\n`);
  process.exit(2);
});
const k = simulator.knobs();
process.stdout.write(
  `provider simulator listening: base URL ${simulator.url} (${k.imagesPerMinute} images/min, ${k.limitShape} over ${k.limitWindowMs} ms); knobs at ${simulator.origin}/_sim/knobs\n`,
);
const stop = () => void simulator.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
