import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MAX_ITEMS_PER_REQUEST } from '../../src/contracts/batch-request.js';
import { installCleanup, onInterrupt } from '../support/children.js';
import { startStack, type Stack } from '../support/stack.js';
import { machineLine, writeResults } from '../support/results.js';
import { runCatalog } from './catalog.js';
import { otherLoadNote } from './load.js';
import { figures, rerunServedFromCache, type Repetition } from './figures.js';
import { runRawBullmq } from './raw-bullmq.js';
import { markdownReport, markdownTable } from './report.js';
import { POLL_MS, REQUEST, TARGETS, sleep } from './shape.js';
import { runBench } from '../support/run-bench.js';

/**
 * `npm run bench:dedupe [-- --items 10000 --runs 3 --workers 1 --concurrency 16]`
 *
 * A catalog rendered once, then re-submitted unchanged, against a zero-latency unlimited
 * simulator; next to it raw BullMQ adding and processing as many no-op jobs on the same Redis.
 * Writes bench/results/dedupe-<date>.json and bench/results/dedupe-latest.md.
 */

/** The simulator answers at once: what is left is rendermill's own cost per item. */
const SIMULATOR_LATENCY_MS = 0;
/** After Redis is emptied: stray connections close before anything is timed. */
const SETTLE_MS = 2_000;
/** Past this a batch (or the raw queue) is reported unfinished and the bench goes on. */
const DEADLINE_MS = 300_000;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      items: { type: 'string', default: String(MAX_ITEMS_PER_REQUEST) },
      runs: { type: 'string', default: '3' },
      workers: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '16' },
      n: { type: 'string', default: '1' },
    },
  });
  const positive = (flag: string, value: string, max = Infinity) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed <= 0 || parsed > max)
      throw new Error(
        `--${flag}: ${value} is not an integer from 1${max === Infinity ? '' : ` to ${max}`}`,
      );
    return parsed;
  };
  return {
    // One POST carries the whole catalog, as a client re-running it would send it.
    items: positive('items', values.items, MAX_ITEMS_PER_REQUEST),
    runs: positive('runs', values.runs),
    workers: positive('workers', values.workers),
    // rendermill's own bound (RENDERMILL_CONCURRENCY).
    concurrency: positive('concurrency', values.concurrency, 256),
    // Images per item: CPU per image falls as the per-request work is shared by more images.
    n: positive('n', values.n, 10),
  };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

async function runRepetition(
  stack: Stack,
  options: ReturnType<typeof parseOptions>,
  repetition: number,
): Promise<Repetition> {
  const started = Date.now();
  const log = (line: string) =>
    process.stdout.write(
      `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
    );
  await stack.resetState();
  await sleep(SETTLE_MS);
  const catalog = await runCatalog(stack, { ...options, repetition, deadlineMs: DEADLINE_MS }, log);

  await stack.resetState();
  await sleep(SETTLE_MS);
  log(`raw BullMQ: ${options.items} no-op jobs`);
  const raw = await runRawBullmq(
    stack,
    { jobs: options.items, concurrency: options.concurrency, deadlineMs: DEADLINE_MS },
    log,
  );
  log(
    `raw BullMQ: ${raw.seconds.toFixed(2)} s = ${Math.round(raw.itemsPerSecond)} jobs/s, ` +
      `worker CPU ${raw.workerCpuMsPerJob.toFixed(3)} ms/job`,
  );
  const notes = [...catalog.notes, ...otherLoadNote('raw BullMQ', raw.cpuSeconds, raw.seconds)];
  if (raw.completed < raw.jobs)
    notes.push(`raw BullMQ: ${raw.completed}/${raw.jobs} completed (${raw.failed} failed)`);
  return {
    repetition,
    first: catalog.first,
    rerun: catalog.rerun,
    raw,
    ratio: catalog.rerun.itemsPerSecond / raw.itemsPerSecond,
    notes,
  };
}

async function main() {
  const options = parseOptions();
  const commit = gitCommit();
  const machine = machineLine();
  const parameters =
    `${options.items.toLocaleString('en-US')} items of n=${options.n} × ${REQUEST.model} ${REQUEST.size} ${REQUEST.quality} · ` +
    `${options.workers} worker process(es) × concurrency ${options.concurrency} · ` +
    `simulator unlimited, latency ${SIMULATOR_LATENCY_MS} ms · poll every ${POLL_MS} ms · ${options.runs} repetition(s)`;
  process.stdout.write(`dedupe bench · ${commit} · ${machine}\n${parameters}\n`);

  installCleanup();
  const stack = await startStack({ latencyMs: SIMULATOR_LATENCY_MS });
  onInterrupt(() => stack.stop());
  const repetitions: Repetition[] = [];
  try {
    for (let repetition = 1; repetition <= options.runs; repetition++) {
      process.stdout.write(`\n[${repetition}/${options.runs}]\n`);
      const result = await runRepetition(stack, options, repetition);
      repetitions.push(result);
      for (const note of result.notes) process.stdout.write(`    note: ${note}\n`);
    }
  } finally {
    await stack.stop();
  }

  const summary = figures(repetitions);
  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'dedupe',
    { date, commit },
    {
      parameters: {
        ...options,
        request: { ...REQUEST, n: options.n },
        simulatorLatencyMs: SIMULATOR_LATENCY_MS,
        pollMs: POLL_MS,
      },
      targets: TARGETS,
      medians: Object.fromEntries(summary.map((f) => [f.key, f.median])),
      targetsMet: Object.fromEntries(
        summary.filter((f) => f.met !== null).map((f) => [f.key, f.met]),
      ),
      figures: summary,
      rerunServedFromCache: rerunServedFromCache(repetitions, options.items),
      repetitions,
    },
    markdownReport(summary, repetitions, {
      date,
      commit,
      machine,
      parameters,
      items: options.items,
    }),
  );
  process.stdout.write(
    `\n${markdownTable(summary, repetitions, options.items)}\n\n` +
      `Times include up to ${POLL_MS} ms of poll granularity. ` +
      `wrote ${jsonFile} and bench/results/dedupe-latest.md\n`,
  );
}

runBench('bench:dedupe', main);
