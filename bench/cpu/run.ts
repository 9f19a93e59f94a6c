import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { otherLoadNote } from '../dedupe/load.js';
import { runRawBullmq } from '../dedupe/raw-bullmq.js';
import { installCleanup, onInterrupt } from '../support/children.js';
import { machineLine, writeResults } from '../support/results.js';
import { runBench } from '../support/run-bench.js';
import { startStack, type Stack } from '../support/stack.js';
import { figures, type Run } from './figures.js';
import {
  measureMemoryRow,
  measureRendermillRows,
  measurePacedSdkAnchor,
  measureSdkAnchor,
  MODEL,
  QUALITY,
  sleep,
  startBenchProvider,
  startRendermillUnderTest,
  type BenchProvider,
  type MemoryRowResult,
  type RendermillRowResult,
  type SdkAnchorRow,
} from './measure.js';
import { summariseProfile } from './profile.js';
import type { AnswerForm } from './provider.js';
import { markdownReport, markdownTable, type ProfileRun } from './report.js';

/**
 * `npm run bench:cpu [-- --runs 3 --images-256 600 --images-1024 200 --profile --memory]`
 *
 * rendermill's CPU per image (api + 1 worker, as `rendermill api` / `rendermill worker` run)
 * for generate at 256x256 and 1024x1024, b64 and url answers, cache misses and hits, against
 * anchors run in the same repetition: raw BullMQ no-op jobs, and the unavoidable work — one
 * `openai` SDK call and one PutObject of the same bytes — in one process. The provider is the
 * bench's own (bench/cpu/provider.ts): pre-rendered PNGs, unlimited, in a process of its own
 * whose CPU is not counted. Writes bench/results/cpu-<date>.json and cpu-latest.md.
 */

const SIZES = ['256x256', '1024x1024'] as const;
const ANSWERS: AnswerForm[] = ['b64', 'url'];
/** rendermill's limiter must never wait in the unlimited rows. */
const UNLIMITED_PER_MINUTE = 1_000_000;
const WARMUP_IMAGES = 30;
const SETTLE_MS = 1_000;
const here = path.dirname(fileURLToPath(import.meta.url));

function parseOptions() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      'images-256': { type: 'string', default: '600' },
      'images-1024': { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '8' },
      'multi-workers': { type: 'string', default: '4' },
      'multi-per-minute': { type: 'string', default: '3000' },
      profile: { type: 'boolean', default: false },
      'profile-answer': { type: 'string', default: 'b64' },
      'keep-profiles': { type: 'string' },
      memory: { type: 'boolean', default: false },
      'skip-matrix': { type: 'boolean', default: false },
      'memory-items': { type: 'string', default: '1000' },
      'memory-concurrency': { type: 'string', default: '1000' },
      'memory-latency-ms': { type: 'string', default: '10000' },
    },
  });
  const whole = (flag: keyof typeof values, min = 1) => {
    const parsed = Number(values[flag]);
    if (!Number.isInteger(parsed) || parsed < min)
      throw new Error(`--${flag}: ${String(values[flag])} is not an integer ≥ ${min}`);
    return parsed;
  };
  return {
    runs: whole('runs'),
    images: { '256x256': whole('images-256'), '1024x1024': whole('images-1024') } as Record<
      string,
      number
    >,
    // rendermill's default RENDERMILL_CONCURRENCY: what a new user runs.
    concurrency: whole('concurrency'),
    multiWorkers: whole('multi-workers', 0),
    multiPerMinute: whole('multi-per-minute'),
    profile: values.profile === true,
    /** Which 256x256 miss row the profile runs: b64 or url answers. */
    profileAnswer: answerKind(values['profile-answer']),
    /** Where to keep the .cpuprofile files (for a flame view); by default they are removed. */
    keepProfiles: values['keep-profiles'],
    memory: values.memory === true,
    matrix: values['skip-matrix'] !== true,
    memoryItems: whole('memory-items'),
    memoryConcurrency: whole('memory-concurrency'),
    memoryLatencyMs: whole('memory-latency-ms', 0),
  };
}
type Options = ReturnType<typeof parseOptions>;

function answerKind(value: string | undefined): 'b64' | 'url' {
  if (value === 'b64' || value === 'url') return value;
  throw new Error(`--profile-answer: ${String(value)} is neither b64 nor url`);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

function logger(started: number) {
  return (line: string) =>
    process.stdout.write(
      `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`,
    );
}

async function freshState(stack: Stack, provider: BenchProvider) {
  await stack.resetState();
  await provider.reset();
  await sleep(SETTLE_MS);
}

async function runOnce(
  stack: Stack,
  provider: BenchProvider,
  options: Options,
  run: number,
): Promise<Run> {
  const log = logger(Date.now());
  const notes: string[] = [];
  const label = `run ${run} ${Date.now()}`;
  await freshState(stack, provider);

  const rendermill: RendermillRowResult[] = [];
  const single = await startRendermillUnderTest(stack, provider, {
    workers: 1,
    concurrency: options.concurrency,
    imagesPerMinute: UNLIMITED_PER_MINUTE,
  });
  try {
    // Module loading, JIT and first connections are start-up, not per-image work.
    await measureRendermillRows(
      single,
      provider,
      {
        size: '256x256',
        answer: 'b64',
        images: WARMUP_IMAGES,
        label: `warm-up ${label}`,
        hits: false,
      },
      () => undefined,
    );
    for (const size of SIZES)
      for (const answer of ANSWERS)
        rendermill.push(
          ...(await measureRendermillRows(
            single,
            provider,
            {
              size,
              answer,
              images: options.images[size]!,
              label: `${label} ${size} ${answer}`,
              hits: true,
            },
            log,
          )),
        );
  } finally {
    await single.stop();
  }

  // Starting five processes at once is what a busy shared machine fails first (the 30 s
  // readiness bound): then the row is a note and the run's other rows stand.
  const multi =
    options.multiWorkers > 0
      ? await startRendermillUnderTest(stack, provider, {
          workers: options.multiWorkers,
          concurrency: options.concurrency,
          imagesPerMinute: options.multiPerMinute,
        }).catch((error: unknown) => {
          notes.push(
            `${options.multiWorkers} workers did not start: ${String(error).split('\n')[0]}`,
          );
          return undefined;
        })
      : undefined;
  if (multi) {
    try {
      await measureRendermillRows(
        multi,
        provider,
        {
          size: '256x256',
          answer: 'b64',
          images: WARMUP_IMAGES * options.multiWorkers,
          label: `warm-up multi ${label}`,
          hits: false,
        },
        () => undefined,
      );
      rendermill.push(
        ...(await measureRendermillRows(
          multi,
          provider,
          {
            size: '256x256',
            answer: 'b64',
            images: options.images['256x256']!,
            label: `${label} multi`,
            hits: false,
          },
          log,
        )),
      );
    } finally {
      await multi.stop();
    }
  }

  await freshState(stack, provider);
  const raw = await runRawBullmq(
    stack,
    { jobs: options.images['256x256']!, concurrency: options.concurrency, deadlineMs: 300_000 },
    log,
  );
  const rawCpuMsPerJob =
    (((raw.cpuSeconds.workers ?? 0) + (raw.cpuSeconds.producer ?? 0)) * 1000) /
    Math.max(1, raw.completed);
  log(`raw BullMQ: ${rawCpuMsPerJob.toFixed(3)} ms / job (producer + worker)`);
  notes.push(...otherLoadNote('raw BullMQ', raw.cpuSeconds, raw.seconds));

  const sdk: SdkAnchorRow[] = [];
  for (const size of SIZES)
    for (const answer of ANSWERS)
      for (const concurrency of [...new Set([1, options.concurrency])])
        sdk.push(
          await measureSdkAnchor(
            stack,
            provider,
            {
              size,
              answer,
              images: options.images[size]!,
              concurrency,
              label: `${label}-${size}-${answer}-${concurrency}`,
            },
            log,
          ),
        );
  const paced =
    options.multiWorkers > 0
      ? await measurePacedSdkAnchor(
          stack,
          provider,
          {
            processes: options.multiWorkers,
            perMinute: options.multiPerMinute,
            images: options.images['256x256']!,
            concurrency: options.concurrency,
            label,
          },
          log,
        )
      : undefined;
  for (const row of rendermill)
    notes.push(
      ...otherLoadNote(
        `rendermill ${row.size} ${row.answer} ${row.cache} ×${row.workers}`,
        { other: row.otherCpuSeconds },
        row.seconds,
      ),
    );
  for (const row of rendermill)
    if (row.succeeded < row.images)
      notes.push(
        `${row.size} ${row.answer} ${row.cache} ×${row.workers}: ${row.succeeded}/${row.images} images`,
      );
  return {
    run,
    rendermill,
    rawBullmq: { ...raw, cpuMsPerJob: rawCpuMsPerJob },
    sdk,
    paced,
    notes,
  };
}

/**
 * The 256x256 miss row (b64, or url with --profile-answer url) with rendermill's processes under the V8 profiler
 * (profiler-preload.mjs): one profile of start-up and the warm-up, one of exactly the row.
 */
async function runProfile(
  stack: Stack,
  provider: BenchProvider,
  options: Options,
): Promise<ProfileRun[]> {
  const log = logger(Date.now());
  await freshState(stack, provider);
  const dir = options.keepProfiles
    ? path.resolve(options.keepProfiles)
    : await mkdtemp(path.join(os.tmpdir(), 'rendermill-cpu-prof-'));
  await mkdir(dir, { recursive: true });
  const preload = pathToFileURL(path.join(here, 'profiler-preload.mjs')).href;
  const rendermill = await startRendermillUnderTest(stack, provider, {
    workers: 1,
    concurrency: options.concurrency,
    imagesPerMinute: UNLIMITED_PER_MINUTE,
    env: { NODE_OPTIONS: `--import ${preload}`, BENCH_PROFILE_DIR: dir },
  });
  const images = options.images['256x256']!;
  const processes = [rendermill.api, ...rendermill.workers];
  const nextPhase = async () => {
    for (const child of processes) child.process.kill('SIGUSR2');
    // The handlers run on the processes' next turn; a moment later the new phase has begun.
    await sleep(300);
  };
  try {
    await measureRendermillRows(
      rendermill,
      provider,
      {
        size: '256x256',
        answer: options.profileAnswer,
        images: WARMUP_IMAGES,
        label: `profile warm-up ${Date.now()}`,
        hits: false,
      },
      () => undefined,
    );
    await nextPhase();
    await measureRendermillRows(
      rendermill,
      provider,
      {
        size: '256x256',
        answer: options.profileAnswer,
        images,
        label: `profile ${Date.now()}`,
        hits: false,
      },
      log,
    );
    await nextPhase();
  } finally {
    await rendermill.stop();
  }
  const profiles: ProfileRun[] = [];
  for (const [role, child] of [
    ['rendermill worker', rendermill.workers[0]!],
    ['rendermill api', rendermill.api],
  ] as const) {
    const file = (phase: number) => path.join(dir, `${child.pid}.${phase}.cpuprofile`);
    const row = summariseProfile(file(1));
    const startup = summariseProfile(file(0));
    log(`${role}: ${row.busyMs} ms busy in the row; top area ${row.byArea[0]?.name ?? '—'}`);
    profiles.push({
      role,
      images,
      answer: options.profileAnswer,
      row,
      startup,
      warmupImages: WARMUP_IMAGES,
    });
  }
  // The profiles are megabytes each; their summaries are what the results keep.
  if (!options.keepProfiles) await rm(dir, { recursive: true, force: true });
  return profiles;
}

async function main() {
  const options = parseOptions();
  const commit = gitCommit();
  const machine = machineLine();
  const parameters =
    `generate ${MODEL} quality ${QUALITY}, n=1; ${options.images['256x256']} images at 256x256, ` +
    `${options.images['1024x1024']} at 1024x1024 per row; rendermill = api + 1 worker at ` +
    `RENDERMILL_CONCURRENCY=${options.concurrency}, limiter ${UNLIMITED_PER_MINUTE.toLocaleString('en-US')}/min` +
    (options.multiWorkers
      ? `; plus ${options.multiWorkers} workers at ${options.multiPerMinute}/min`
      : '') +
    `; provider: the bench's own, pre-rendered PNGs (~140 KB at 256, ~2.2 MB at 1024), no latency; ` +
    `${options.runs} run(s); CPU of rendermill's processes from /proc/<pid>/stat, of the SDK anchor from process.cpuUsage()`;
  process.stdout.write(`cpu bench · ${commit} · ${machine}\n${parameters}\n`);

  installCleanup();
  const stack = await startStack({ latencyMs: 0 });
  onInterrupt(() => stack.stop());
  const provider = await startBenchProvider();
  const runs: Run[] = [];
  const failures: string[] = [];
  let profiles: ProfileRun[] = [];
  let memory: MemoryRowResult | undefined;
  try {
    if (options.matrix)
      for (let run = 1; run <= options.runs; run++) {
        process.stdout.write(`\n[run ${run}/${options.runs}]\n`);
        // A run that fails (a start-up bound missed on a busy machine) is reported, not fatal.
        try {
          runs.push(await runOnce(stack, provider, options, run));
        } catch (error) {
          failures.push(`run ${run}: ${error instanceof Error ? error.message : String(error)}`);
          process.stdout.write(`run ${run} failed: ${failures.at(-1)!.slice(0, 2000)}\n`);
        }
      }
    if (options.profile) {
      process.stdout.write('\n[profile]\n');
      profiles = await runProfile(stack, provider, options).catch((error: unknown) => {
        failures.push(`profile: ${String(error)}`);
        return [];
      });
    }
    if (options.memory) {
      process.stdout.write('\n[memory]\n');
      await freshState(stack, provider);
      memory = await measureMemoryRow(
        stack,
        provider,
        {
          items: options.memoryItems,
          concurrencyAsked: options.memoryConcurrency,
          concurrency: Math.min(1024, options.memoryConcurrency),
          latencyMs: options.memoryLatencyMs,
          size: '1024x1024',
        },
        logger(Date.now()),
      ).catch((error: unknown) => {
        failures.push(`memory: ${String(error)}`);
        return undefined;
      });
    }
  } finally {
    await provider.child.stop();
    await stack.stop();
  }

  const rows = figures(runs, options.concurrency);
  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'cpu',
    { date, commit },
    {
      parameters: { ...options, model: MODEL, quality: QUALITY },
      figures: rows,
      runs,
      failures,
      profiles,
      memory,
    },
    markdownReport({
      rows,
      runs,
      failures,
      concurrency: options.concurrency,
      profiles,
      memory,
      context: { date, commit, machine, parameters },
    }),
  );
  process.stdout.write(
    `\n${rows.length ? markdownTable(rows, options.concurrency) : ''}\n\nwrote ${jsonFile} and bench/results/cpu-latest.md\n`,
  );
}

runBench('bench:cpu', main);
