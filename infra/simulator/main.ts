import { parseArgs } from 'node:util';
import { startSimulator } from './server.js';

/**
 * Runs the provider simulator on its own:
 *   node dist/infra/simulator/main.js --port 4010 --images-per-minute 500 --latency-ms 50
 * Flags fall back to SIM_PORT, SIM_HOST, SIM_IMAGES_PER_MINUTE and SIM_LATENCY_MS.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.SIM_PORT ?? '4010' },
    host: { type: 'string', default: process.env.SIM_HOST ?? '127.0.0.1' },
    'images-per-minute': { type: 'string', default: process.env.SIM_IMAGES_PER_MINUTE ?? '500' },
    'latency-ms': { type: 'string', default: process.env.SIM_LATENCY_MS ?? '0' },
  },
});

const simulator = await startSimulator({
  port: Number(values.port),
  host: values.host,
  imagesPerMinute: Number(values['images-per-minute']),
  latencyMs: Number(values['latency-ms']),
});
process.stdout.write(
  `provider simulator listening: base URL ${simulator.url} (${simulator.knobs().imagesPerMinute} images/min); knobs at ${simulator.origin}/_sim/knobs\n`,
);
const stop = () => void simulator.stop().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
