import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { SimulatorKnobs, SimulatorStats } from '../../infra/simulator/server.js';
import { Queue } from 'bullmq';
import { batchKeys, BULL_PREFIX } from '../../src/redis/redis-keys.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { installCleanup, onInterrupt, startChild, type Child } from '../support/children.js';
import { CpuMeter } from '../support/cpu.js';
import { startRendermillProcesses, type RendermillProcesses } from '../support/deployment.js';
import { callApi } from '../support/rendermill-api.js';
import { machineLine, writeResults } from '../support/results.js';
import { runBench } from '../support/run-bench.js';
import { SimulatorControl } from '../support/simulator-control.js';
import { startStack, type Stack } from '../support/stack.js';
import { measureRow, type BilledSample, type RowResult } from './measure.js';
import {
  estimateSeconds,
  MODEL,
  parseOptions,
  planRows,
  PRICES,
  ROUTES,
  type Options,
  type RouteName,
  type Row,
} from './plan.js';
import { markdownReport, markdownTable } from './report.js';

/**
 * `npm run bench:providers [-- --seconds 20 --limits 600,600,1200 --strategies … --shapes …]`
 *
 * One batch of flux-schnell items per row over three routes, each its own simulator process
 * (an OpenAI-compatible gateway, a Replicate-shaped and a fal-shaped provider) with its own
 * limit and price, through `rendermill api` + `rendermill worker` processes configured by a
 * providers file. Measured on the providers' side: images per route, the steady rate against
 * the sum of the limits of the routes the strategy should use, 429s, every prompt billed
 * exactly once, the batch's spend against Σ price × billed, rendermill's CPU per image.
 * Writes bench/results/providers-<date>.json and bench/results/providers-latest.md.
 */

const SIMULATOR_MAIN = path.resolve('dist/infra/simulator/main.js');
const KEYS: Record<RouteName, { env: string; key: string }> = {
  gateway: { env: 'GATEWAY_KEY', key: 'gw-bench-key' },
  replicate: { env: 'REPLICATE_API_TOKEN', key: 'r8-bench-key' },
  fal: { env: 'FAL_KEY', key: 'fal-bench-key' },
};
const SAMPLE_MS = 250;

/** The machine's CPU so far, from /proc/stat: busy and total ticks over every core. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    // idle and iowait
    return { busy: total - fields[3]! - (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stdout.write(`${line}\n`);

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

type Simulators = Record<RouteName, SimulatorControl & { child: Child }>;

async function startSimulator(name: string, latencyMs: number) {
  const port = await findFreePort();
  const child = startChild(
    `simulator ${name}`,
    process.execPath,
    [
      SIMULATOR_MAIN,
      '--port',
      String(port),
      '--images-per-minute',
      '0',
      '--latency-ms',
      String(latencyMs),
    ],
    process.env,
  );
  const origin = (await child.waitFor(/base URL (http:\/\/[\d.:]+)\/v1/))[1]!;
  return Object.assign(new SimulatorControl(origin), { child });
}

function providersYaml(sims: Simulators, options: Options): string {
  const base: Record<RouteName, string> = {
    gateway: sims.gateway.baseUrl,
    replicate: sims.replicate.baseUrl,
    fal: `${sims.fal.origin}/fal`,
  };
  const kind: Record<RouteName, string> = {
    gateway: 'openai',
    replicate: 'replicate',
    fal: 'fal',
  };
  const lines = ['routing: priority', 'routes:'];
  for (const route of ROUTES) {
    lines.push(
      `  - name: ${route}`,
      `    kind: ${kind[route]}`,
      `    base_url: ${base[route]}`,
      `    api_key_env: ${KEYS[route].env}`,
      '    models:',
      `      ${MODEL}: { price_usd: ${PRICES[route]}, images_per_minute: ${options.limits[route]} }`,
    );
  }
  return lines.join('\n') + '\n';
}

function knobsFor(route: RouteName, row: Row, options: Options): Partial<SimulatorKnobs> {
  return {
    imagesPerMinute: options.limits[route],
    tokensPerMinute: 0,
    requestsPerMinute: 0,
    minuteMs: 60_000,
    limitShape: row.shape === 'queued' ? 'bucket' : row.shape,
    limitWindowMs: 1000,
    latencyMs: options.latencyMs,
    latencyJitterMs: 0,
    retryHeaders: 'all',
    errorRate: 0,
    queuedMs: row.shape === 'queued' && route !== 'gateway' ? options.queuedMs : 0,
    apiKeys: [KEYS[route].key],
  };
}

interface BatchAnswer {
  id: string;
  status: string;
  counts: Record<string, number> & { total: number };
  spend_usd: number;
  reserved_usd: number;
}

async function runRow(
  row: Row,
  stack: Stack,
  sims: Simulators,
  options: Options,
  env: Record<string, string>,
): Promise<RowResult> {
  const started = Date.now();
  const notes: string[] = [];
  await stack.redisClient.flushall();
  await Promise.all(ROUTES.map((route) => sims[route].setKnobs(knobsFor(route, row, options))));
  // Stray connections of the previous row close, then every counter and window starts empty.
  await sleep(1000);
  await Promise.all(ROUTES.map((route) => sims[route].reset()));

  let rendermill: RendermillProcesses | undefined;
  const cpu = new CpuMeter();
  const driverCpu = process.cpuUsage();
  const machineBefore = machineTicks();
  const metricsPort = options.scrapeMetrics ? await findFreePort() : 0;
  const rowEnv: Record<string, string> = {
    ...env,
    // Only the queued rows follow a prediction briefly, to force the hand-back path; the
    // others keep rendermill's default (20 s), which a busy simulator's answer never nears.
    ...(row.shape === 'queued'
      ? {
          RENDERMILL_QUEUED_FOLLOW_MS: String(options.followMs),
          RENDERMILL_QUEUED_RECHECK_MS: String(options.recheckMs),
        }
      : {}),
    // One worker can serve /metrics on its own port (several would collide).
    ...(metricsPort ? { RENDERMILL_METRICS_PORT: String(metricsPort) } : {}),
  };
  try {
    rendermill = await startRendermillProcesses(stack, { workers: options.workers, env: rowEnv });
    cpu.track('rendermill api', rendermill.api.pid);
    rendermill.workers.forEach((w, i) => cpu.track(`rendermill worker ${i + 1}`, w.pid));
    for (const route of ROUTES) cpu.track(`simulator ${route}`, sims[route].child.pid);
    cpu.track('s3rver', stack.s3.child.pid);
    cpu.track('redis-server', stack.redisPid);

    const prompts = Array.from({ length: row.items }, (_, i) => `providers ${row.id} item ${i}`);
    const items = prompts.map((prompt, i) => ({ id: `item-${i}`, prompt }));

    // Provider-side samples: every simulator's billed images over time.
    const samples: BilledSample[] = [];
    /** rendermill's render queue over time: [ms epoch, active, waiting, delayed]. */
    const queueSamples: [number, number, number, number][] = [];
    const queue = new Queue('render', {
      connection: { url: stack.redis.url },
      prefix: BULL_PREFIX,
    });
    let sampling = true;
    const scrapes: { t: number; lines: string[] }[] = [];
    const scraper = (async () => {
      if (!metricsPort) return;
      while (sampling) {
        await sleep(2000);
        try {
          const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
          const wanted =
            /^(rendermill_limiter_headroom_images|rendermill_provider_request_seconds_(sum|count)|nodejs_eventloop_lag_(mean|p99)_seconds|rendermill_provider_rate_limited_total)/;
          scrapes.push({ t: Date.now(), lines: text.split('\n').filter((l) => wanted.test(l)) });
        } catch (error) {
          scrapes.push({ t: Date.now(), lines: [`scrape failed: ${String(error)}`] });
        }
      }
    })();
    const sampler = (async () => {
      while (sampling) {
        const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized');
        queueSamples.push([
          Date.now(),
          counts.active ?? 0,
          (counts.waiting ?? 0) + (counts.prioritized ?? 0),
          counts.delayed ?? 0,
        ]);
        const [g, r, f] = await Promise.all(ROUTES.map((route) => sims[route].stats()));
        samples.push([
          Date.now(),
          g!.billedImages,
          r!.billedImages,
          f!.billedImages,
          g!.inFlight,
          r!.inFlight,
          f!.inFlight,
        ]);
        await sleep(SAMPLE_MS);
      }
    })();

    const batch = await callApi<BatchAnswer>(rendermill.apiUrl, 'POST', '/v1/batches', {
      model: MODEL,
      routing: row.strategy,
      items,
    });

    // Queued rows: which items were ever handed back (running, their prediction pending).
    const handedBack = new Set<string>();
    const itemsKey = batchKeys().items(batch.id);
    let view = batch;
    const deadline = Date.now() + row.deadlineMs;
    let lastLog = 0;
    for (;;) {
      if (row.shape === 'queued') {
        const records = await stack.redisClient.hgetall(itemsKey);
        for (const [id, json] of Object.entries(records)) {
          if (handedBack.has(id)) continue;
          const record = JSON.parse(json) as { status?: string; pending?: unknown };
          if (record.pending !== undefined && record.pending !== null) handedBack.add(id);
        }
      }
      view = await callApi<BatchAnswer>(rendermill.apiUrl, 'GET', `/v1/batches/${batch.id}`);
      if (view.status === 'completed' || view.status === 'cancelled') break;
      if (Date.now() > deadline) {
        notes.push(`deadline of ${row.deadlineMs / 1000} s reached with the batch ${view.status}`);
        break;
      }
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        const done = view.counts.succeeded ?? 0;
        log(`    ${((Date.now() - started) / 1000).toFixed(0)} s: ${done}/${row.items} succeeded`);
      }
      await sleep(row.shape === 'queued' ? 150 : 250);
    }
    // Answers in flight settle; then the last sample and the final figures.
    await sleep(500);
    sampling = false;
    await Promise.all([sampler, scraper]);
    await queue.close();
    const statsList = await Promise.all(ROUTES.map((route) => sims[route].stats()));
    const stats = Object.fromEntries(ROUTES.map((r, i) => [r, statsList[i]!])) as Record<
      RouteName,
      SimulatorStats
    >;
    samples.push([
      Date.now(),
      stats.gateway.billedImages,
      stats.replicate.billedImages,
      stats.fal.billedImages,
      stats.gateway.inFlight,
      stats.replicate.inFlight,
      stats.fal.inFlight,
    ]);
    view = await callApi<BatchAnswer>(rendermill.apiUrl, 'GET', `/v1/batches/${batch.id}`);
    const manifest = await callApi<{
      items: { id: string; status: string; route: string | null; prompt: string | null }[];
    }>(rendermill.apiUrl, 'GET', `/v1/batches/${batch.id}/manifest`);
    if (view.reserved_usd !== 0) notes.push(`$${view.reserved_usd} still reserved at the end`);
    const errors = rendermill.errorLines();
    if (errors.length > 0) notes.push(`${errors.length} error lines, first: ${errors[0]}`);
    const failed = manifest.items.filter((item) => item.status !== 'succeeded');
    if (failed.length > 0) {
      const byStatus = new Map<string, number>();
      for (const item of failed) byStatus.set(item.status, (byStatus.get(item.status) ?? 0) + 1);
      notes.push(`not succeeded: ${[...byStatus].map(([s, n]) => `${n} ${s}`).join(', ')}`);
    }
    await rendermill.stop();
    rendermill = undefined;
    const result = measureRow({
      row,
      limits: options.limits,
      trimSeconds: options.trimSeconds,
      stats,
      samples,
      batch: view,
      manifestItems: manifest.items,
      prompts,
      cpuSeconds: {
        ...cpu.finish(),
        'bench driver': (() => {
          const used = process.cpuUsage(driverCpu);
          return Math.round((used.user + used.system) / 1e4) / 100;
        })(),
      },
      itemsHandedBack: row.shape === 'queued' ? handedBack.size : null,
      wallSeconds: (Date.now() - started) / 1000,
      notes,
    });
    // The whole machine over the row, every process on it (other users' too), in cores busy.
    const machineAfter = machineTicks();
    if (machineBefore && machineAfter) {
      const ticks = 100; // USER_HZ, as bench/support/cpu.ts
      const busySeconds = (machineAfter.busy - machineBefore.busy) / ticks;
      const ownSeconds = Object.values(result.cpuSeconds).reduce((sum, value) => sum + value, 0);
      result.machine = {
        busyCores: busySeconds / result.wallSeconds,
        ownCores: ownSeconds / result.wallSeconds,
        cores: os.cpus().length,
        loadAverage1m: os.loadavg()[0]!,
      };
    }
    const first = result.series.length ? samples[0]![0] - result.series[0]![0] : 0;
    result.queueSeries = queueSamples.map(([t, ...rest]) => [t - first, ...rest]);
    if (metricsPort)
      result.metricsScrapes = scrapes.map(({ t, lines }) => ({ t: t - first, lines }));
    return result;
  } finally {
    cpu.finish();
    await rendermill?.stop();
  }
}

async function main() {
  const options = parseOptions();
  const rows = planRows(options);
  const commit = gitCommit();
  const machine = machineLine();
  const command = `npm run bench:providers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  log(
    `providers bench: ${rows.length} rows (${options.strategies.join(', ')} × ${options.shapes.join(', ')}), ` +
      `~${options.seconds} s each, estimated ~${Math.ceil(estimateSeconds(rows, options) / 60)} min · ${commit} · ${machine}`,
  );
  for (const row of rows) {
    log(
      `  ${row.strategy.padEnd(8)} ${row.shape.padEnd(7)} ${row.items} items → ${row.expectedRoutes.join('+')} at ${row.targetPerSecond.toFixed(1)} img/s`,
    );
  }
  if (options.list) return;

  installCleanup();
  const stack = await startStack({ latencyMs: options.latencyMs });
  onInterrupt(() => stack.stop());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-providers-'));
  const results: RowResult[] = [];
  const extra: Child[] = [];
  try {
    const [replicate, fal] = await Promise.all([
      startSimulator('replicate', options.latencyMs),
      startSimulator('fal', options.latencyMs),
    ]);
    extra.push(replicate.child, fal.child);
    const sims: Simulators = { gateway: stack.simulator, replicate, fal };
    const file = path.join(dir, 'providers.yaml');
    await writeFile(file, providersYaml(sims, options));
    const env: Record<string, string> = {
      RENDERMILL_PROVIDERS_FILE: file,
      ...Object.fromEntries(ROUTES.map((route) => [KEYS[route].env, KEYS[route].key])),
      RENDERMILL_CONCURRENCY: String(options.concurrency),
    };
    for (const [i, row] of rows.entries()) {
      log(`\n[${i + 1}/${rows.length}] ${row.strategy} / ${row.shape}: ${row.items} items`);
      const result = await runRow(row, stack, sims, options, env);
      results.push(result);
      log(
        `  → ${result.itemsSucceeded}/${row.items} ok; per route ${ROUTES.map((r) => result.itemsByRoute[r]).join('/')}; ` +
          `steady ${result.steadyPerSecond?.toFixed(1) ?? '—'} img/s of ${row.targetPerSecond.toFixed(1)} (${result.steadyFraction === null ? '—' : (result.steadyFraction * 100).toFixed(0) + ' %'}); ` +
          `429s ${ROUTES.map((r) => result.rateLimitedByRoute[r]).join('/')}; spend ${result.spendMatches ? 'exact' : 'MISMATCH'}; ` +
          `billed twice ${result.promptsBilledTwiceOrMore}; CPU ${result.cpuMsPerImage?.toFixed(1) ?? '—'} ms/img` +
          (result.itemsHandedBack === null ? '' : `; handed back ${result.itemsHandedBack}`) +
          (result.machine
            ? `; machine ${result.machine.busyCores.toFixed(2)} cores busy, this bench ${result.machine.ownCores.toFixed(2)}`
            : ''),
      );
      for (const note of result.notes) log(`    note: ${note}`);
    }
  } finally {
    await Promise.all([stack.stop(), ...extra.map((child) => child.stop())]);
    await rm(dir, { recursive: true, force: true });
  }
  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'providers',
    { date, commit },
    { command, options, prices: PRICES, results },
    markdownReport(results, { date, commit, machine, options, command }),
  );
  log(`\n${markdownTable(results)}\n\nwrote ${jsonFile} and bench/results/providers-latest.md`);
}

runBench('bench:providers', main);
