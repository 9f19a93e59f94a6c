import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../support/children.js';
import { PhaseMeter } from '../dedupe/load.js';
import { cpuSeconds } from '../support/cpu.js';
import { startRendermillProcesses, type BatchView } from '../support/deployment.js';
import { callApi } from '../support/rendermill-api.js';
import { cleanEnv, S3_BUCKET, type Stack } from '../support/stack.js';
import type { SdkAnchorJob, SdkAnchorResult } from './anchor-sdk.js';
import type { AnswerForm, ProviderStats } from './provider.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const POLL_MS = 200;
const DEADLINE_MS = 600_000;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bench's provider process and its control calls. */
export interface BenchProvider {
  child: Child;
  origin: string;
  baseUrl: string;
  setMode(mode: { answer?: AnswerForm; latencyMs?: number }): Promise<void>;
  stats(): Promise<ProviderStats>;
  reset(): Promise<void>;
}

export async function startBenchProvider(): Promise<BenchProvider> {
  const child = startChild(
    'bench provider',
    process.execPath,
    ['--import', 'tsx', path.join(here, 'provider.ts')],
    cleanEnv({}),
  );
  const origin = (await child.waitFor(/listening (http:\/\/[\d.:]+)/))[1]!;
  const post = async (route: string, body?: unknown) => {
    const response = await fetch(`${origin}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
    if (!response.ok) throw new Error(`bench provider ${route}: HTTP ${response.status}`);
  };
  return {
    child,
    origin,
    baseUrl: `${origin}/v1`,
    setMode: (mode) => post('/_bench/mode', mode),
    reset: () => post('/_bench/reset'),
    async stats() {
      return (await (await fetch(`${origin}/_bench/stats`)).json()) as ProviderStats;
    },
  };
}

/** The request every rendermill row and the SDK anchor send, but for its size. */
export const MODEL = 'gpt-image-2';
export const QUALITY = 'low';

export type CacheCase = 'miss' | 'hit';

export interface RendermillRowResult {
  size: string;
  answer: AnswerForm;
  cache: CacheCase;
  workers: number;
  images: number;
  succeeded: number;
  cached: number;
  seconds: number;
  cpuSeconds: { api: number; workers: number };
  cpuMsPerImage: number;
  /** Redis commands sent over the batch, by command, and their total per image. */
  redisCalls: Record<string, number>;
  redisCallsPerImage: number;
  /** CPU seconds the rest of the machine used during the batch (other work on a shared machine). */
  otherCpuSeconds: number;
}

/** One api + W workers, kept up over several batches so each batch is measured warm. */
export interface RendermillUnderTest {
  api: Child;
  workers: Child[];
  /** Submits one batch and measures the CPU of api + workers until it completes. */
  batch(input: { size: string; prompts: string[]; log: (line: string) => void }): Promise<{
    view: BatchView;
    seconds: number;
    cpuSeconds: { api: number; workers: number };
    redisCalls: Record<string, number>;
    /** CPU seconds the rest of the machine (not this bench's processes) used meanwhile. */
    otherCpuSeconds: number;
  }>;
  stop(): Promise<void>;
}

export async function startRendermillUnderTest(
  stack: Stack,
  provider: BenchProvider,
  options: {
    workers: number;
    concurrency: number;
    imagesPerMinute: number;
    env?: Record<string, string>;
  },
): Promise<RendermillUnderTest> {
  const start = () =>
    startRendermillProcesses(stack, {
      workers: options.workers,
      env: {
        OPENAI_BASE_URL: provider.baseUrl,
        RENDERMILL_IMAGES_PER_MINUTE: String(options.imagesPerMinute),
        // The tier's tokens per minute would pace 1024x1024 images; only images are limited here.
        RENDERMILL_TOKENS_PER_MINUTE: '1000000000',
        RENDERMILL_CONCURRENCY: String(options.concurrency),
        ...options.env,
      },
    });
  // On a shared 2-core machine five processes starting at once can miss the 30 s readiness
  // bound; a second try is cheaper than losing the run.
  const processes = await start().catch(() => start());
  const { api, workers, apiUrl } = processes;
  const cpuNow = () => ({
    api: cpuSeconds(api.pid) ?? NaN,
    workers: workers.reduce((sum, worker) => sum + (cpuSeconds(worker.pid) ?? NaN), 0),
  });
  return {
    api,
    workers,
    stop: processes.stop,
    async batch({ size, prompts, log }) {
      const callsBefore = await redisCommandCalls(stack);
      const machine = new PhaseMeter();
      for (const child of [api, ...workers, provider.child, stack.s3.child])
        machine.track(child.name, child.pid);
      machine.track('redis', stack.redisPid);
      machine.track('driver', process.pid);
      const before = cpuNow();
      const started = performance.now();
      const submitted = await callApi<BatchView>(apiUrl, 'POST', '/v1/batches', {
        model: MODEL,
        size,
        quality: QUALITY,
        items: prompts.map((prompt, i) => ({ id: `item-${i}`, prompt })),
      });
      const deadline = Date.now() + DEADLINE_MS;
      let lastLog = Date.now();
      for (;;) {
        const view = await callApi<BatchView>(apiUrl, 'GET', `/v1/batches/${submitted.id}`);
        if (view.status === 'completed' || Date.now() > deadline) {
          const seconds = (performance.now() - started) / 1000;
          const after = cpuNow();
          const callsAfter = await redisCommandCalls(stack);
          const otherCpuSeconds = machine.finish().other ?? 0;
          const errors = processes.errorLines();
          if (view.status !== 'completed' || (view.counts.failed ?? 0) > 0)
            log(
              `batch ${view.id} ${view.status}: ${JSON.stringify(view.counts)}\n${errors.slice(-3).join('\n')}`,
            );
          return {
            view,
            seconds,
            cpuSeconds: { api: after.api - before.api, workers: after.workers - before.workers },
            redisCalls: Object.fromEntries(
              Object.entries(callsAfter)
                .map(([command, calls]) => [command, calls - (callsBefore[command] ?? 0)] as const)
                .filter(([, calls]) => calls > 0)
                .sort((a, b) => b[1] - a[1]),
            ),
            otherCpuSeconds,
          };
        }
        if (Date.now() - lastLog >= 5_000) {
          const done = view.counts.total - (view.counts.queued ?? 0) - (view.counts.running ?? 0);
          log(`${done}/${view.counts.total} items done`);
          lastLog = Date.now();
        }
        await sleep(POLL_MS);
      }
    },
  };
}

/**
 * Calls per Redis command so far (`INFO commandstats`): over a batch, what rendermill's
 * processes sent, plus the driver's two INFO calls and what its status polls make the api read.
 */
async function redisCommandCalls(stack: Stack): Promise<Record<string, number>> {
  const info = await stack.redisClient.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([\w|-]+):calls=(\d+)/gm))
    calls[match[1]!] = Number(match[2]);
  return calls;
}

/** A miss row, then (when asked) the hit row of the same prompts: CPU per image of each. */
export async function measureRendermillRows(
  rendermill: RendermillUnderTest,
  provider: BenchProvider,
  row: { size: string; answer: AnswerForm; images: number; label: string; hits: boolean },
  log: (line: string) => void,
): Promise<RendermillRowResult[]> {
  await provider.setMode({ answer: row.answer, latencyMs: 0 });
  const prompts = Array.from(
    { length: row.images },
    (_, i) => `${row.label} product ${i}: red ceramic mug, studio light`,
  );
  const results: RendermillRowResult[] = [];
  for (const cache of row.hits ? (['miss', 'hit'] as const) : (['miss'] as const)) {
    const {
      view,
      seconds,
      cpuSeconds: cpu,
      redisCalls,
      otherCpuSeconds,
    } = await rendermill.batch({
      size: row.size,
      prompts,
      log,
    });
    // A hit ends `cached`, a miss `succeeded`: both are an image the batch delivered.
    const succeeded = (view.counts.succeeded ?? 0) + (view.counts.cached ?? 0);
    const result: RendermillRowResult = {
      size: row.size,
      answer: row.answer,
      cache,
      workers: rendermill.workers.length,
      images: row.images,
      succeeded,
      cached: view.counts.cached ?? 0,
      seconds,
      cpuSeconds: { api: round(cpu.api), workers: round(cpu.workers) },
      cpuMsPerImage: ((cpu.api + cpu.workers) * 1000) / Math.max(1, succeeded),
      redisCalls,
      otherCpuSeconds,
      redisCallsPerImage:
        Object.values(redisCalls).reduce((sum, calls) => sum + calls, 0) / Math.max(1, succeeded),
    };
    log(
      `rendermill ${row.size} ${row.answer} ${cache} ×${rendermill.workers.length}: ` +
        `${succeeded}/${row.images} ok in ${seconds.toFixed(1)} s, ` +
        `api ${cpu.api.toFixed(2)} s + workers ${cpu.workers.toFixed(2)} s CPU = ` +
        `${result.cpuMsPerImage.toFixed(2)} ms/image, ${result.redisCallsPerImage.toFixed(1)} Redis calls/image; rest of the machine ${otherCpuSeconds.toFixed(1)} CPU s`,
    );
    results.push(result);
  }
  return results;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

export interface SdkAnchorRow extends SdkAnchorResult {
  size: string;
  answer: AnswerForm;
  concurrency: number;
  cpuMsPerImage: number;
}

/** The unavoidable work (`openai` SDK call + PutObject) in a child process of its own. */
export async function measureSdkAnchor(
  stack: Stack,
  provider: BenchProvider,
  row: {
    size: string;
    answer: AnswerForm;
    images: number;
    concurrency: number;
    label: string;
    perSecond?: number;
  },
  log: (line: string) => void,
): Promise<SdkAnchorRow> {
  await provider.setMode({ answer: row.answer, latencyMs: 0 });
  const job: SdkAnchorJob = {
    baseUrl: provider.baseUrl,
    s3: {
      endpoint: stack.s3.endpoint,
      bucket: S3_BUCKET,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    },
    size: row.size,
    images: row.images,
    concurrency: row.concurrency,
    warmup: Math.min(30, row.images),
    label: row.label,
    perSecond: row.perSecond,
  };
  const child = startChild(
    'sdk anchor',
    process.execPath,
    ['--import', 'tsx', path.join(here, 'anchor-sdk.ts')],
    cleanEnv({
      BENCH_JOB: JSON.stringify(job),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    }),
  );
  try {
    const match = await child.waitFor(/RESULT (\{.*\})/, DEADLINE_MS);
    const result = JSON.parse(match[1]!) as SdkAnchorResult;
    const out: SdkAnchorRow = {
      ...result,
      size: row.size,
      answer: row.answer,
      concurrency: row.concurrency,
      cpuMsPerImage: result.cpuMs / result.images,
    };
    log(
      `sdk anchor ${row.size} ${row.answer} c=${row.concurrency}: ` +
        `${out.cpuMsPerImage.toFixed(2)} ms/image (${(result.wallMs / 1000).toFixed(1)} s)`,
    );
    return out;
  } finally {
    await child.stop();
  }
}

/** The unavoidable work at the pace of the multi-worker row, spread over as many processes. */
export interface PacedAnchorRow {
  processes: number;
  perMinute: number;
  images: number;
  cpuMsPerImage: number;
}

/**
 * The multi-worker row's anchor: `processes` SDK anchors at once, together starting
 * `perMinute` images a minute of 256x256 b64 — what the same work costs at that pace, in as
 * many processes, where nothing is shared between images that come one at a time.
 */
export async function measurePacedSdkAnchor(
  stack: Stack,
  provider: BenchProvider,
  row: { processes: number; perMinute: number; images: number; concurrency: number; label: string },
  log: (line: string) => void,
): Promise<PacedAnchorRow> {
  const each = Math.ceil(row.images / row.processes);
  const results = await Promise.all(
    Array.from({ length: row.processes }, (_, i) =>
      measureSdkAnchor(
        stack,
        provider,
        {
          size: '256x256',
          answer: 'b64',
          images: each,
          concurrency: row.concurrency,
          label: `${row.label}-paced-${i}`,
          perSecond: row.perMinute / 60 / row.processes,
        },
        () => undefined,
      ),
    ),
  );
  const images = results.reduce((sum, r) => sum + r.images, 0);
  const cpuMs = results.reduce((sum, r) => sum + r.cpuMs, 0);
  const out = {
    processes: row.processes,
    perMinute: row.perMinute,
    images,
    cpuMsPerImage: cpuMs / images,
  };
  log(
    `sdk anchor 256x256 b64, ${row.processes} processes at ${row.perMinute}/min: ` +
      `${out.cpuMsPerImage.toFixed(2)} ms/image`,
  );
  return out;
}

export interface MemoryRowResult {
  concurrencyAsked: number;
  concurrency: number;
  items: number;
  size: string;
  latencyMs: number;
  succeeded: number;
  seconds: number;
  peakRssMb: number;
  rssAtStartMb: number;
  maxInFlight: number;
  /** [ms since submit, RSS MB, provider in flight]. */
  series: [number, number, number][];
}

/** VmRSS of a process in MB, or undefined once it is gone. */
export async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One worker with every slot held by a slow provider: the worker's RSS every 200 ms, and the
 * most requests the provider had in flight at once.
 */
export async function measureMemoryRow(
  stack: Stack,
  provider: BenchProvider,
  options: {
    items: number;
    concurrency: number;
    concurrencyAsked: number;
    latencyMs: number;
    size: string;
  },
  log: (line: string) => void,
): Promise<MemoryRowResult> {
  await provider.setMode({ answer: 'b64', latencyMs: options.latencyMs });
  await provider.reset();
  const rendermill = await startRendermillUnderTest(stack, provider, {
    workers: 1,
    concurrency: options.concurrency,
    imagesPerMinute: 1_000_000,
  });
  const worker = rendermill.workers[0]!;
  const rssAtStartMb = (await rssMb(worker.pid)) ?? NaN;
  const series: [number, number, number][] = [];
  let sampling = true;
  const started = Date.now();
  const sampler = (async () => {
    while (sampling) {
      const [rss, stats] = await Promise.all([rssMb(worker.pid), provider.stats()]);
      if (rss !== undefined) series.push([Date.now() - started, Math.round(rss), stats.inFlight]);
      await sleep(200);
    }
  })();
  try {
    const prompts = Array.from(
      { length: options.items },
      (_, i) => `memory ${started} product ${i}: red ceramic mug, studio light`,
    );
    const { view, seconds } = await rendermill.batch({ size: options.size, prompts, log });
    sampling = false;
    await sampler;
    const stats = await provider.stats();
    const peakRssMb = Math.max(...series.map(([, rss]) => rss));
    log(
      `memory: peak RSS ${peakRssMb} MB (at start ${rssAtStartMb.toFixed(0)} MB), ` +
        `provider max in flight ${stats.maxInFlight}, ${view.counts.succeeded ?? 0}/${options.items} ok in ${seconds.toFixed(1)} s`,
    );
    return {
      ...options,
      succeeded: view.counts.succeeded ?? 0,
      seconds,
      peakRssMb,
      rssAtStartMb: Math.round(rssAtStartMb),
      maxInFlight: stats.maxInFlight,
      series,
    };
  } finally {
    sampling = false;
    await rendermill.stop();
    await provider.setMode({ latencyMs: 0 });
  }
}
