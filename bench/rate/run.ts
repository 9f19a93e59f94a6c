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
  DEFAULT_HEADERS,
  DEFAULT_LIMITS,
  DEFAULT_SECONDS,
  DEFAULT_WORKERS,
  estimateSeconds,
  planCeilings,
  planScenarios,
  type Config,
} from './plan.js';
import {
  HEADER_NAMES,
  SHAPES,
  applyProviderKnobs,
  providerKnobs,
  type HeaderVariant,
  type LimitShape,
} from './provider.js';
import { clientLabel, markdownReport, markdownTable, verdict } from './report.js';
import { StatsSampler } from './sampler.js';
import {
  CLIENTS,
  REQUEST_SHAPE,
  SIMULATOR_LATENCY_MS,
  type ClientKind,
  type ClientRunner,
  type Scenario,
} from './scenario.js';
import { runBench } from '../support/run-bench.js';

/**
 * `npm run bench:rate [-- --seconds 15 --limits 5,600,3000 --workers 1,4
 *   --shapes bucket,sliding,fixed --headers none,all --clients rendermill,naive,bullmq
 *   --configs true,2x --real-minute --ceiling --list --drop-unknown-knobs]`
 *
 * Runs every client against the simulator, one scenario at a time on one shared stack (Redis
 * emptied and simulator reset in between), polling the simulator's counters through each, and
 * writes bench/results/rate-<date>.json and bench/results/rate-latest.md.
 */
const RUNNERS: Record<ClientKind, ClientRunner> = {
  rendermill: runRendermill,
  naive: runNaive,
  bullmq: runBullmqLimiter,
};

/** Pause between scenarios: stray connections close before the provider is reset. */
const SETTLE_MS = 1_000;
/** How often /_sim/stats is read: every 250 ms, every 100 ms on rows with calls ≥ 1 s apart. */
const SAMPLE_MS = 250;
const SLOW_SAMPLE_MS = 100;

const list = (value: string) =>
  value
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);

function pick<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const picked = value === 'every' ? [...allowed] : list(value);
  return picked.map((item) => {
    if (!(allowed as readonly string[]).includes(item))
      throw new Error(`--${flag}: unknown ${item} (${allowed.join(', ')}, or every)`);
    return item as T;
  });
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: String(DEFAULT_SECONDS) },
      limits: { type: 'string', default: DEFAULT_LIMITS.join(',') },
      workers: { type: 'string', default: DEFAULT_WORKERS.join(',') },
      shapes: { type: 'string', default: SHAPES.join(',') },
      headers: { type: 'string', default: DEFAULT_HEADERS.join(',') },
      clients: { type: 'string', default: CLIENTS.join(',') },
      configs: { type: 'string', default: CONFIGS.join(',') },
      'real-minute': { type: 'boolean', default: false },
      'real-minute-only': { type: 'boolean', default: false },
      ceiling: { type: 'boolean', default: false },
      'ceiling-only': { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      'drop-unknown-knobs': { type: 'boolean', default: false },
    },
  });
  const numbers = (flag: string, value: string) =>
    list(value).map((part) => {
      const parsed = Number(part);
      if (!Number.isInteger(parsed) || parsed <= 0)
        throw new Error(`--${flag}: ${part} is not a positive integer`);
      return parsed;
    });
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  const realMinuteOnly = values['real-minute-only'];
  return {
    plan: {
      seconds,
      limits: numbers('limits', values.limits),
      workers: numbers('workers', values.workers),
      shapes: pick<LimitShape>('shapes', values.shapes, SHAPES),
      headers: pick<HeaderVariant>('headers', values.headers, HEADER_NAMES),
      clients: pick<ClientKind>('clients', values.clients, CLIENTS),
      configs: pick<Config>('configs', values.configs, CONFIGS),
      realMinute: values['real-minute'] || realMinuteOnly,
    },
    realMinuteOnly,
    ceiling: values.ceiling || values['ceiling-only'],
    ceilingOnly: values['ceiling-only'],
    list: values.list,
    dropUnknownKnobs: values['drop-unknown-knobs'],
  };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

const describe = (s: Scenario) =>
  `${s.client}${s.client === 'rendermill' ? ` told ${s.configuredLimit}/min` : ''} · ${s.shape}` +
  `${s.client === 'rendermill' ? ` · headers ${s.headers}` : ''} · ${s.workers} workers · ` +
  `true limit ${s.trueLimit || 'none'}/min${s.minuteMs === 60_000 ? '' : ` (minute ${s.minuteMs / 1000} s)`}` +
  `${s.realMinute ? ' · REAL MINUTE' : ''} · ${s.items} items × n=${s.n} · concurrency ${s.concurrency}/worker`;

async function runScenario(
  stack: Stack,
  scenario: Scenario,
  dropUnknownKnobs: boolean,
): Promise<ScenarioResult> {
  await stack.resetState();
  const knobsIgnored = await applyProviderKnobs(
    stack.simulator.origin,
    providerKnobs({
      trueLimit: scenario.trueLimit,
      minuteMs: scenario.minuteMs,
      shape: scenario.shape,
      headers: scenario.headers,
      latencyMs: SIMULATOR_LATENCY_MS,
    }),
    dropUnknownKnobs,
  );
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  await stack.simulator.reset();

  const cpu = new CpuMeter();
  cpu.track('simulator', stack.simulator.child.pid);
  cpu.track('s3rver', stack.s3.child.pid);
  cpu.track('redis', stack.redisPid);
  cpu.track('driver', process.pid);
  const slow = scenario.trueLimit > 0 && scenario.minuteMs / scenario.trueLimit >= 1_000;
  const sampler = new StatsSampler(stack.simulator, slow ? SLOW_SAMPLE_MS : SAMPLE_MS);
  const started = Date.now();
  const log = (line: string) =>
    process.stdout.write(
      `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
    );
  let outcome;
  try {
    outcome = await RUNNERS[scenario.client]({
      stack,
      scenario,
      cpu,
      log,
      deadlineMs: scenario.deadlineMs,
    });
    // Answers still in flight when the client returned are counted by the simulator; let them land.
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    await sampler.stop();
  }
  return measure(
    scenario,
    await stack.simulator.stats(),
    sampler.samples,
    outcome,
    cpu.finish(),
    knobsIgnored,
  );
}

async function main() {
  const options = parseOptions();
  const scenarios = [
    ...(options.ceiling ? planCeilings(options.plan) : []),
    ...(options.ceilingOnly ? [] : planScenarios(options.plan)),
  ].filter((s) => !options.realMinuteOnly || s.realMinute);
  if (scenarios.length === 0) throw new Error('no scenario matches the filters');
  const estimate = estimateSeconds(scenarios, options.plan.seconds);
  const commit = gitCommit();
  const machine = machineLine();
  const shape = `${REQUEST_SHAPE.model} ${REQUEST_SHAPE.size} ${REQUEST_SHAPE.quality}, n=2 (n=4 below 60/min), simulator latency ${SIMULATOR_LATENCY_MS} ms, ${options.plan.seconds} s scenarios`;
  process.stdout.write(
    `rate bench: ${scenarios.length} scenarios, ~${Math.ceil(estimate / 60)} min · ${commit} · ${machine}\n${shape}\n`,
  );
  if (options.list) {
    for (const [index, scenario] of scenarios.entries())
      process.stdout.write(`${String(index + 1).padStart(4)}. ${describe(scenario)}\n`);
    return;
  }

  installCleanup();
  const stack = await startStack({ latencyMs: SIMULATOR_LATENCY_MS });
  onInterrupt(() => stack.stop());
  const results: ScenarioResult[] = [];
  try {
    for (const [index, scenario] of scenarios.entries()) {
      process.stdout.write(`\n[${index + 1}/${scenarios.length}] ${describe(scenario)}\n`);
      const r = await runScenario(stack, scenario, options.dropUnknownKnobs);
      results.push(r);
      const steady =
        r.steadyFraction === null
          ? ''
          : `, steady ${(r.steadyFraction * 100).toFixed(1)} % of limit`;
      const gaps = r.callGapsSeconds
        ? `\n    gaps between accepted calls: min ${r.callGapsSeconds.min.toFixed(2)} s, median ${r.callGapsSeconds.median.toFixed(2)} s, max ${r.callGapsSeconds.max.toFixed(2)} s`
        : '';
      process.stdout.write(
        `  → ${clientLabel(r)}: ${r.images} images in ${r.elapsedSeconds.toFixed(1)} s${steady}; ` +
          `${r.requests} requests, ${r.rateLimited} 429s` +
          `${r.lastRateLimitedAfterSeconds === null ? '' : ` (last after ${r.lastRateLimitedAfterSeconds.toFixed(1)} s)`}; ` +
          `${r.itemsLost} items lost; max ${r.maxImagesInWindow ?? '?'} images in a window of ${r.windowAllowance} ${verdict(r)}${gaps}\n` +
          `    CPU s: ${JSON.stringify(r.cpuSeconds)}${r.clientCpuMsPerImage === null ? '' : ` (client ${r.clientCpuMsPerImage.toFixed(2)} ms/image)`}` +
          `${r.knobsIgnored.length > 0 ? `\n    simulator ignored: ${r.knobsIgnored.join(', ')}` : ''}` +
          `${r.notes.length > 0 ? `\n    notes: ${r.notes.join('; ')}` : ''}\n`,
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

runBench('bench:rate', main);
