import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { installCleanup, onInterrupt } from '../support/children.js';
import { CpuMeter } from '../support/cpu.js';
import { startStack, type Stack } from '../support/stack.js';
import { machineLine, writeResults } from '../support/results.js';
import { runBullmqLimiter } from './clients/bullmq.js';
import { runNaive } from './clients/naive.js';
import { runRendermill } from './clients/rendermill.js';
import { measure, type ScenarioResult } from './measure.js';
import {
  CONFIGS,
  DEFAULT_LIMITS,
  DEFAULT_WORKERS,
  planCeilings,
  planScenarios,
  type Config,
} from './plan.js';
import { markdownReport, markdownTable, verdict } from './report.js';
import {
  CLIENTS,
  REQUEST_SHAPE,
  SIMULATOR_LATENCY_MS,
  type ClientKind,
  type ClientRunner,
  type Scenario,
} from './scenario.js';

/**
 * `npm run bench:rate [-- --seconds 30 --limits 500,10000 --workers 1,4
 *   --clients rendermill,naive,bullmq --configs true,2x --ceiling]`
 *
 * Runs every client against the simulator's quantized limit, one scenario at a time on one
 * shared stack (Redis emptied and simulator reset in between), and writes
 * bench/results/rate-<date>.json and bench/results/rate-latest.md.
 */
const RUNNERS: Record<ClientKind, ClientRunner> = {
  rendermill: runRendermill,
  naive: runNaive,
  bullmq: runBullmqLimiter,
};

/** Pause between scenarios: stray connections close and the bucket is full again (it refills in 1 s). */
const SETTLE_MS = 2_000;

const list = (value: string) =>
  value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

function parseOptions() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '30' },
      limits: { type: 'string', default: DEFAULT_LIMITS.join(',') },
      workers: { type: 'string', default: DEFAULT_WORKERS.join(',') },
      clients: { type: 'string', default: CLIENTS.join(',') },
      configs: { type: 'string', default: CONFIGS.join(',') },
      ceiling: { type: 'boolean', default: false },
      'ceiling-only': { type: 'boolean', default: false },
    },
  });
  const numbers = (flag: string, value: string) =>
    list(value).map((part) => {
      const parsed = Number(part);
      if (!Number.isInteger(parsed) || parsed <= 0)
        throw new Error(`--${flag}: ${part} is not a positive integer`);
      return parsed;
    });
  const clients = list(values.clients).map((client) => {
    if (!(CLIENTS as readonly string[]).includes(client))
      throw new Error(`--clients: unknown client ${client} (${CLIENTS.join(', ')})`);
    return client as ClientKind;
  });
  const configs = list(values.configs).map((config) => {
    if (!(CONFIGS as readonly string[]).includes(config))
      throw new Error(`--configs: unknown ${config} (${CONFIGS.join(', ')})`);
    return config as Config;
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  return {
    plan: {
      seconds,
      limits: numbers('limits', values.limits),
      workers: numbers('workers', values.workers),
      clients,
      configs,
    },
    ceiling: values.ceiling || values['ceiling-only'],
    ceilingOnly: values['ceiling-only'],
  };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

async function runScenario(
  stack: Stack,
  scenario: Scenario,
  seconds: number,
): Promise<ScenarioResult> {
  await stack.resetState();
  await stack.simulator.setKnobs({
    imagesPerMinute: scenario.trueLimit,
    latencyMs: SIMULATOR_LATENCY_MS,
  });
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  await stack.simulator.reset();

  const cpu = new CpuMeter();
  cpu.track('simulator', stack.simulator.child.pid);
  cpu.track('s3rver', stack.s3.child.pid);
  cpu.track('redis', stack.redisPid);
  cpu.track('driver', process.pid);
  const started = Date.now();
  const log = (line: string) =>
    process.stdout.write(
      `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
    );
  const outcome = await RUNNERS[scenario.client]({
    stack,
    scenario,
    cpu,
    log,
    // Generous: a client at a quarter of the limit still finishes; past that it has lost.
    deadlineMs: (seconds * 4 + 60) * 1000,
  });
  // Answers still in flight when the client returned are counted by the simulator; let them land.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return measure(scenario, await stack.simulator.stats(), outcome, cpu.finish());
}

async function main() {
  const options = parseOptions();
  const scenarios = [
    ...(options.ceiling ? planCeilings(options.plan) : []),
    ...(options.ceilingOnly ? [] : planScenarios(options.plan)),
  ];
  if (scenarios.length === 0) throw new Error('no scenario matches the filters');
  const commit = gitCommit();
  const machine = machineLine();
  const shape = `n=${REQUEST_SHAPE.n} × ${REQUEST_SHAPE.model} ${REQUEST_SHAPE.size} ${REQUEST_SHAPE.quality}, simulator latency ${SIMULATOR_LATENCY_MS} ms`;
  process.stdout.write(
    `rate bench: ${scenarios.length} scenarios · ${commit} · ${machine}\n${shape}\n`,
  );

  installCleanup();
  const stack = await startStack({ latencyMs: SIMULATOR_LATENCY_MS });
  onInterrupt(() => stack.stop());
  const results: ScenarioResult[] = [];
  try {
    for (const [index, scenario] of scenarios.entries()) {
      process.stdout.write(
        `\n[${index + 1}/${scenarios.length}] ${scenario.client} · ${scenario.workers} workers · true limit ${scenario.trueLimit || 'none'}/min · configured ${scenario.configuredLimit}/min · ${scenario.items} items × ${REQUEST_SHAPE.n} · concurrency ${scenario.concurrency}/worker\n`,
      );
      const result = await runScenario(stack, scenario, options.plan.seconds);
      results.push(result);
      const share =
        result.fractionOfLimit === null
          ? ''
          : ` (${(result.fractionOfLimit * 100).toFixed(1)} % of limit)`;
      process.stdout.write(
        `  → ${result.images} images in ${result.elapsedSeconds.toFixed(1)} s = ${Math.round(result.imagesPerMinute)}/min${share}; ` +
          `${result.requests} requests, ${result.rateLimited} 429s${result.firstRateLimitedAfterSeconds === null ? '' : ` (first after ${result.firstRateLimitedAfterSeconds.toFixed(2)} s)`}; ${result.itemsLost} items lost ${verdict(result)}\n` +
          `    CPU s: ${JSON.stringify(result.cpuSeconds)}${result.notes.length > 0 ? `\n    notes: ${result.notes.join('; ')}` : ''}\n`,
      );
    }
  } finally {
    await stack.stop();
  }

  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'rate',
    { date, commit },
    {
      requestShape: REQUEST_SHAPE,
      simulatorLatencyMs: SIMULATOR_LATENCY_MS,
      options: options.plan,
      results,
    },
    markdownReport(results, { date, commit, machine, shape }),
  );
  process.stdout.write(
    `\n${markdownTable(results)}\n\nwrote ${jsonFile} and bench/results/rate-latest.md\n`,
  );
}

main().then(
  // Every child is stopped by now; exit rather than wait on a library's stray timer.
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `bench:rate failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
