import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { installCleanup, onInterrupt, startChild, type Child } from '../support/children.js';
import { cpuSeconds } from '../support/cpu.js';
import { waitForWorkers } from '../support/rendermill-api.js';
import { machineLine, writeResults } from '../support/results.js';
import { cleanEnv, startStack, type Stack } from '../support/stack.js';
import { markdownReport, markdownTable, type PhaseResult } from './report.js';
import { runBench } from '../support/run-bench.js';

/**
 * `npm run bench:idle [-- --workers 0,1,4 --seconds 30 --warmup 60]`
 *
 * What idle `rendermill worker` processes cost while nothing is queued: the stack (a private
 * redis-server, s3rver, the simulator), then N workers started as the rate bench starts them,
 * a warm-up once every one has registered with Redis, then CPU read from /proc over the
 * measuring window for each worker and for redis-server. 0 workers measures Redis alone.
 * Writes bench/results/idle-<date>.json and bench/results/idle-latest.md.
 */

const CLI = path.resolve('dist/src/cli/main.js');

function parseOptions() {
  const { values } = parseArgs({
    options: {
      workers: { type: 'string', default: '0,1,4' },
      seconds: { type: 'string', default: '30' },
      warmup: { type: 'string', default: '60' },
    },
  });
  const workers = values.workers.split(',').map((part) => {
    const parsed = Number(part.trim());
    if (!Number.isInteger(parsed) || parsed < 0)
      throw new Error(`--workers: ${part} is not a whole number`);
    return parsed;
  });
  const seconds = Number(values.seconds);
  const warmup = Number(values.warmup);
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number');
  if (!(warmup >= 0)) throw new Error('--warmup must be a number of seconds');
  return { workers, seconds, warmup };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function commandsProcessed(stack: Stack): Promise<number> {
  const info = await stack.redisClient.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
}

const median = (values: number[]) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function measurePhase(
  stack: Stack,
  workerCount: number,
  options: { seconds: number; warmup: number },
): Promise<PhaseResult> {
  await stack.redisClient.flushall();
  // The same environment as the rate bench's rendermill workers; nothing is ever queued.
  const env = cleanEnv({
    ...stack.rendermillEnv(),
    RENDERMILL_IMAGES_PER_MINUTE: '600',
    RENDERMILL_CONCURRENCY: '8',
    RENDERMILL_METRICS_PORT: '0',
  });
  const workers: Child[] = Array.from({ length: workerCount }, (_, i) =>
    startChild(`rendermill worker ${i + 1}`, process.execPath, [CLI, 'worker'], env),
  );
  try {
    if (workerCount > 0) {
      try {
        await waitForWorkers(stack.redis.url, workerCount);
      } catch (error) {
        const outputs = workers.map((w) => `${w.name}:\n${w.output() || '(no output)'}`);
        throw new Error(
          `${error instanceof Error ? error.message : String(error)}\n${outputs.join('\n')}`,
        );
      }
    }
    process.stdout.write(
      `  ${workerCount} workers up; ${options.warmup} s warm-up, then ${options.seconds} s measured\n`,
    );
    await sleep(options.warmup * 1000);

    const pids = { redis: stack.redisPid, workers: workers.map((w) => w.pid) };
    const startedAt = Date.now();
    const commandsBefore = await commandsProcessed(stack);
    const redisBefore = cpuSeconds(pids.redis);
    const workersBefore = pids.workers.map((pid) => cpuSeconds(pid));
    await sleep(options.seconds * 1000);
    const redisAfter = cpuSeconds(pids.redis);
    const workersAfter = pids.workers.map((pid) => cpuSeconds(pid));
    const commandsAfter = await commandsProcessed(stack);
    const elapsed = (Date.now() - startedAt) / 1000;

    const msPerSecond = (before: number | undefined, after: number | undefined) =>
      before === undefined || after === undefined ? null : ((after - before) * 1000) / elapsed;
    const perWorker = workersBefore.map((before, i) => msPerSecond(before, workersAfter[i]));
    const gone = perWorker.filter((value) => value === null).length;
    const known = perWorker.filter((value): value is number => value !== null);
    return {
      workers: workerCount,
      measuredSeconds: elapsed,
      workerMsPerSecond: perWorker,
      workerMedian: median(known),
      workerMax: known.length > 0 ? Math.max(...known) : null,
      redisMsPerSecond: msPerSecond(redisBefore, redisAfter),
      // Less the driver's own first INFO call (the second is counted after it answers).
      redisCommandsPerSecond: (commandsAfter - commandsBefore - 1) / elapsed,
      notes: gone > 0 ? [`${gone} workers exited during the measurement`] : [],
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

async function main() {
  const options = parseOptions();
  const commit = gitCommit();
  const machine = machineLine();
  process.stdout.write(
    `idle bench: workers ${options.workers.join(', ')} · ${options.warmup} s warm-up + ${options.seconds} s each · ${commit} · ${machine}\n`,
  );
  installCleanup();
  const stack = await startStack({ latencyMs: 100 });
  onInterrupt(() => stack.stop());
  const results: PhaseResult[] = [];
  try {
    for (const count of options.workers) {
      process.stdout.write(`\n[${count} idle workers]\n`);
      const result = await measurePhase(stack, count, options);
      results.push(result);
      const fmt = (value: number | null) => (value === null ? '—' : value.toFixed(2));
      process.stdout.write(
        `  → worker ms/s median ${fmt(result.workerMedian)}, max ${fmt(result.workerMax)}; ` +
          `redis ${fmt(result.redisMsPerSecond)} ms/s, ${result.redisCommandsPerSecond.toFixed(1)} commands/s\n`,
      );
    }
  } finally {
    await stack.stop();
  }
  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'idle',
    { date, commit },
    { options, results },
    markdownReport(results, { date, commit, machine, options }),
  );
  process.stdout.write(
    `\n${markdownTable(results)}\n\nwrote ${jsonFile} and bench/results/idle-latest.md\n`,
  );
}

runBench('bench:idle', main);
