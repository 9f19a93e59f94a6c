import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { PhaseMeter, otherLoadNote } from '../dedupe/load.js';
import { installCleanup, onInterrupt } from '../support/children.js';
import { machineLine, writeResults } from '../support/results.js';
import { startStack, type Stack } from '../support/stack.js';
import { startRendermill } from './deployment.js';
import { limitHeld, measureRun, type RunResult } from './measure.js';
import { ProviderSampler } from './provider-sampler.js';
import { markdownReport, markdownTable, scaling } from './report.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_IMAGES,
  DEFAULT_WORKERS,
  LATENCY,
  WINDOW_ALLOWANCE,
  LIMIT_PER_MINUTE,
  REQUEST,
  SAMPLE_MS,
  SETTLE_MS,
  promptFor,
  sleep,
} from './shape.js';
import { runBench } from '../support/run-bench.js';

/**
 * `npm run bench:scale [-- --workers 1,2,4 --images 2000 --concurrency 8]`
 *
 * One `rendermill api` and N `rendermill worker` processes against a provider that enforces
 * 3,000 images/min and answers in 300–800 ms; one batch per N. Does the shared limit hold with
 * four processes, and does throughput grow with the workers until it reaches the limit?
 * Writes bench/results/scale-<date>.json and bench/results/scale-latest.md.
 */

/** Generous: a run at a tenth of the limit still finishes; past that something is broken. */
const deadlineMs = (images: number) => ((images / (LIMIT_PER_MINUTE / 10)) * 60 + 60) * 1000;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: DEFAULT_WORKERS.join(',') },
      images: { type: 'string', default: String(DEFAULT_IMAGES) },
      concurrency: { type: 'string', default: String(DEFAULT_CONCURRENCY) },
    },
  });
  const positive = (flag: string, value: string, max: number) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed <= 0 || parsed > max)
      throw new Error(`--${flag}: ${value} is not an integer from 1 to ${max}`);
    return parsed;
  };
  return {
    workers: values.workers
      .split(',')
      .map((part) => part.trim())
      .filter(Boolean)
      .map((part) => positive('workers', part, 32)),
    // One POST takes at most 10,000 items.
    images: positive('images', values.images, 10_000),
    concurrency: positive('concurrency', values.concurrency, 256),
  };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

async function runOnce(
  stack: Stack,
  options: { workers: number; images: number; concurrency: number; runId: string },
): Promise<RunResult> {
  await stack.resetState();
  await stack.simulator.setKnobs({ imagesPerMinute: LIMIT_PER_MINUTE, ...LATENCY });
  const deployment = await startRendermill(stack, options);
  try {
    // Start-up traffic settles and the provider's bucket is full again.
    await sleep(SETTLE_MS);
    await stack.simulator.reset();

    const cpu = new PhaseMeter();
    cpu.track('api', deployment.api.pid);
    deployment.workers.forEach((worker, i) => cpu.track(`worker ${i + 1}`, worker.pid));
    cpu.track('simulator', stack.simulator.child.pid);
    cpu.track('s3rver', stack.s3.child.pid);
    cpu.track('redis', stack.redisPid);
    cpu.track('driver', process.pid);
    const loadBefore = os.loadavg()[0] ?? NaN;
    const sampler = await ProviderSampler.start(stack.simulator, SAMPLE_MS);

    const started = Date.now();
    const log = (text: string) =>
      process.stdout.write(
        `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`,
      );
    const items = Array.from({ length: options.images }, (_, i) => ({
      id: `item-${i}`,
      prompt: promptFor(options.runId, i),
    }));
    const run = await deployment.runBatch(items, deadlineMs(options.images), log);
    // Answers the poll raced are counted by the simulator; let them land.
    await sleep(300);
    const { samples, stats } = await sampler.finish();
    const cpuSeconds = cpu.finish();

    const notes = [...otherLoadNote('run', cpuSeconds, run.wallSeconds)];
    if (run.batch.status !== 'completed')
      notes.push(
        `batch ${run.batch.status} at the deadline (${deadlineMs(options.images) / 1000} s)`,
      );
    const errors = deployment.errorLines();
    if (errors.length > 0) notes.push(`${errors.length} error log lines, e.g. ${errors[0]}`);
    return measureRun({
      ...options,
      run,
      samples,
      stats,
      cpuSeconds,
      loadBefore,
      notes,
    });
  } finally {
    await deployment.stop();
  }
}

async function main() {
  const options = parseOptions();
  const commit = gitCommit();
  const machine = machineLine();
  const setting =
    `${options.images.toLocaleString('en-US')} items of ${REQUEST.model} ${REQUEST.size} n=${REQUEST.n} (distinct prompts) per run; ` +
    `simulator limit ${LIMIT_PER_MINUTE.toLocaleString('en-US')} images/min, latency ${LATENCY.latencyMs}–${LATENCY.latencyMs + LATENCY.latencyJitterMs} ms; ` +
    `rendermill RENDERMILL_IMAGES_PER_MINUTE=${LIMIT_PER_MINUTE} (${WINDOW_ALLOWANCE} images in any second), ` +
    `RENDERMILL_CONCURRENCY=${options.concurrency} per worker`;
  process.stdout.write(`scale bench · ${commit} · ${machine}\n${setting}\n`);

  installCleanup();
  const stack = await startStack({ latencyMs: LATENCY.latencyMs });
  onInterrupt(() => stack.stop());
  const date = new Date().toISOString();
  const results: RunResult[] = [];
  try {
    for (const [runIndex, workers] of options.workers.entries()) {
      process.stdout.write(
        `\n${workers} worker${workers === 1 ? '' : 's'} × concurrency ${options.concurrency} (load average ${os.loadavg()[0]?.toFixed(2)})\n`,
      );
      const result = await runOnce(stack, {
        workers,
        images: options.images,
        concurrency: options.concurrency,
        runId: `${runIndex + 1}/${workers}w`,
      });
      results.push(result);
      process.stdout.write(
        `  → ${result.wallSeconds.toFixed(1)} s, ${Math.round(result.imagesPerMinute)}/min overall, ` +
          `${result.steady ? Math.round(result.steady.imagesPerMinute) : '—'}/min steady; ` +
          `busiest 1 s ${result.busiest.oneSecond.lower}–${result.busiest.oneSecond.upper}, 60 s ${result.busiest.sixtySeconds.lower}–${result.busiest.sixtySeconds.upper}; ` +
          `${result.rateLimited} 429s; ${result.itemsNotSucceeded} items not succeeded; limit held: ${limitHeld(result) ? 'yes' : 'NO'}\n` +
          `    CPU s: ${JSON.stringify(result.cpuSeconds)}${result.notes.length > 0 ? `\n    notes: ${result.notes.join('; ')}` : ''}\n`,
      );
    }
  } finally {
    await stack.stop();
  }

  const jsonFile = await writeResults(
    'scale',
    { date, commit },
    {
      setting: {
        limitPerMinute: LIMIT_PER_MINUTE,
        windowAllowance: WINDOW_ALLOWANCE,
        simulatorLatency: LATENCY,
        request: REQUEST,
        sampleMs: SAMPLE_MS,
      },
      options,
      loadAverageAfter: os.loadavg(),
      scaling: scaling(results),
      results,
    },
    markdownReport(results, { date, commit, machine, setting }),
  );
  process.stdout.write(
    `\n${markdownTable(results)}\n\nwrote ${jsonFile} and bench/results/scale-latest.md\n`,
  );
}

runBench('bench:scale', main);
