import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { MAX_ITEMS_PER_REQUEST } from '../../src/contracts/batch-request.js';
import { installCleanup, onInterrupt } from '../support/children.js';
import { machineLine, writeResults } from '../support/results.js';
import { startStack } from '../support/stack.js';
import type { BodyKind, Endpoint } from './api.js';
import { ratios, summarize } from './figures.js';
import { measureUpload, type Upload } from './measure.js';
import { SAMPLE_MS } from './memory.js';
import { markdownReport, markdownTables, uploadLabel } from './report.js';
import { CATALOG_OPTIONS, csvBytes } from './shape.js';
import { runBench } from '../support/run-bench.js';

/**
 * `npm run bench:catalog [-- --rows 10000,100000 --runs 3 --json-rows 10000]`
 *
 * A catalog streamed as CSV to `POST /v1/batches` and `/v1/batches/estimate`, at each row
 * count, while the API's memory is read every 50 ms; beside it the same rows as a JSON body
 * (the in-memory path, at most 10,000 items). Does the API's memory grow with the rows?
 * Writes bench/results/catalog-<date>.json and bench/results/catalog-latest.md.
 */

/** Nothing renders: the simulator is only there because the stack starts it. */
const SIMULATOR_LATENCY_MS = 0;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '10000,100000' },
      runs: { type: 'string', default: '3' },
      'json-rows': { type: 'string', default: String(MAX_ITEMS_PER_REQUEST) },
      'api-node-options': { type: 'string', default: '' },
    },
  });
  const integer = (flag: string, value: string, min: number, max = Infinity) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max)
      throw new Error(
        `--${flag}: ${value} is not an integer from ${min}${max === Infinity ? '' : ` to ${max}`}`,
      );
    return parsed;
  };
  const rows = [
    ...new Set(values.rows.split(',').map((text) => integer('rows', text.trim(), 1))),
  ].sort((a, b) => a - b);
  const jsonRows = integer('json-rows', values['json-rows'], 0, MAX_ITEMS_PER_REQUEST);
  return {
    /** Row counts streamed as CSV, to both endpoints. */
    rows,
    runs: integer('runs', values.runs, 1),
    /** Rows of the JSON anchor (one request takes at most 10,000); 0 leaves it out. */
    jsonRows: jsonRows === 0 ? null : jsonRows,
    /** Extra Node options for the API process, for diagnosis (e.g. `--heap-prof`). */
    apiNodeOptions: values['api-node-options'].split(/\s+/).filter(Boolean),
  };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['log', '-1', '--oneline'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown commit';
  }
}

/** One repetition's uploads: every CSV size to both endpoints, then the JSON anchor. */
function plan(options: ReturnType<typeof parseOptions>) {
  const uploads: { kind: BodyKind; endpoint: Endpoint; rows: number }[] = [];
  for (const rows of options.rows) {
    uploads.push(
      { kind: 'csv', endpoint: 'submit', rows },
      { kind: 'csv', endpoint: 'estimate', rows },
    );
  }
  if (options.jsonRows !== null) {
    const rows = options.jsonRows;
    uploads.push(
      { kind: 'json', endpoint: 'submit', rows },
      { kind: 'json', endpoint: 'estimate', rows },
    );
  }
  return uploads;
}

async function main() {
  const options = parseOptions();
  const commit = gitCommit();
  const machine = machineLine();
  const sizes = options.rows
    .map((rows) => `${rows.toLocaleString('en-US')} (${(csvBytes(rows) / 2 ** 20).toFixed(1)} MiB)`)
    .join(', ');
  const parameters =
    `CSV catalog of ${sizes} rows streamed to /v1/batches and /v1/batches/estimate` +
    (options.jsonRows === null
      ? ''
      : ` · JSON anchor ${options.jsonRows.toLocaleString('en-US')} rows`) +
    ` · ${CATALOG_OPTIONS.model} ${CATALOG_OPTIONS.size}, template "${CATALOG_OPTIONS.template}"` +
    ` · no worker · API memory every ${SAMPLE_MS} ms · ${options.runs} repetition(s)` +
    (options.apiNodeOptions.length > 0
      ? ` · API node options ${options.apiNodeOptions.join(' ')}`
      : '');
  process.stdout.write(`catalog bench · ${commit} · ${machine}\n${parameters}\n`);

  installCleanup();
  const stack = await startStack({ latencyMs: SIMULATOR_LATENCY_MS });
  onInterrupt(() => stack.stop());
  const started = Date.now();
  const uploads: Upload[] = [];
  try {
    for (let repetition = 1; repetition <= options.runs; repetition++) {
      process.stdout.write(`\n[${repetition}/${options.runs}]\n`);
      for (const step of plan(options)) {
        const upload = await measureUpload(stack, { repetition, ...step }, options.apiNodeOptions);
        uploads.push(upload);
        process.stdout.write(
          `  [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ` +
            `${uploadLabel(upload)}, ${upload.rows.toLocaleString('en-US')} rows: ` +
            (upload.failed === null
              ? `${upload.seconds.toFixed(2)} s = ${Math.round(upload.rowsPerSecond)} rows/s, `
              : `FAILED after ${upload.seconds.toFixed(2)} s, `) +
            `API RSS +${(upload.peakGrowthBytes / 2 ** 20).toFixed(1)} MiB at peak, ` +
            `${upload.fullGcs.count} full GCs, ` +
            `Redis ${(upload.redisUsedMemoryAfter / 2 ** 20).toFixed(1)} MiB\n`,
        );
        for (const note of upload.notes) process.stdout.write(`    note: ${note}\n`);
      }
    }
  } finally {
    await stack.stop();
  }

  const summaries = summarize(uploads);
  const growth = ratios(uploads, options);
  const date = new Date().toISOString();
  const jsonFile = await writeResults(
    'catalog',
    { date, commit },
    {
      parameters: {
        ...options,
        catalog: CATALOG_OPTIONS,
        csvBytes: Object.fromEntries(options.rows.map((rows) => [rows, csvBytes(rows)])),
        sampleMs: SAMPLE_MS,
      },
      medians: Object.fromEntries(
        summaries.map((s) => [
          s.key,
          {
            rowsPerSecond: s.rowsPerSecond.median,
            peakGrowthMiB: s.peakGrowthMiB.median,
            liveHeapMiB: Number.isFinite(s.liveHeapMiB.median) ? s.liveHeapMiB.median : null,
            fullGcs: s.fullGcs.median,
            redisUsedMiB: s.redisUsedMiB.median,
          },
        ]),
      ),
      ratios: growth,
      summaries,
      uploads,
    },
    markdownReport(summaries, growth, uploads, { date, commit, machine, parameters }),
  );
  process.stdout.write(
    `\n${markdownTables(summaries, growth)}\n\nwrote ${jsonFile} and bench/results/catalog-latest.md\n`,
  );
}

runBench('bench:catalog', main);
