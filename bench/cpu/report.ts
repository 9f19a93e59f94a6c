import { formatNumber as format, markdownRows } from '../support/results.js';
import { median, type FigureRow, type Run } from './figures.js';
import type { MemoryRowResult } from './measure.js';
import { profileMarkdown, type ProfileSummary } from './profile.js';

export interface ProfileRun {
  role: string;
  images: number;
  /** The row's answers: b64 (the default) or url. Absent in results written before it was asked. */
  answer?: 'b64' | 'url';
  /** Exactly the row, and (apart) start-up with the warm-up batch. */
  row: ProfileSummary;
  startup: ProfileSummary;
  warmupImages: number;
}

export function markdownTable(rows: FigureRow[], concurrency: number): string {
  const header = [
    'size',
    'answer',
    'cache',
    'workers',
    'rendermill CPU ms / image (api + workers)',
    'every run',
    `anchor: SDK call + PutObject, c=${concurrency}`,
    'anchor, sequential',
    'ours − anchor (ms)',
    'ours ÷ anchor',
    'raw BullMQ no-op ms / job',
    'ours ÷ raw BullMQ',
    'Redis calls / image',
  ];
  return markdownRows(
    header,
    rows.map((r) => [
      r.size,
      r.answer,
      r.cache,
      String(r.workers),
      format(r.oursMs, 2),
      r.oursByRun.map((v) => format(v, 2)).join(' · '),
      format(r.sdkConcurrentMs, 2),
      format(r.sdkSequentialMs, 2),
      format(r.overSdkMs, 2),
      `${format(r.timesSdk, 2)}×`,
      format(r.rawBullmqMs, 3),
      `${format(r.timesRawBullmq, 1)}×`,
      format(r.redisCallsPerImage, 1),
    ]),
  );
}

/** Rows of several workers beside the same work at the same pace, in as many processes. */
function pacedTable(rows: FigureRow[]): string[] {
  const multi = rows.filter((r) => r.pacedAnchorMs !== undefined);
  if (multi.length === 0) return [];
  const header = [
    'size',
    'answer',
    'workers',
    'rendermill CPU ms / image',
    'anchor at the same pace, in as many processes',
    'ours − it (ms)',
  ];
  return [
    '## Several workers against the same work at the same pace',
    '',
    markdownRows(
      header,
      multi.map((r) => [
        r.size,
        r.answer,
        String(r.workers),
        format(r.oursMs, 2),
        format(r.pacedAnchorMs ?? NaN, 2),
        format(r.overPacedMs ?? NaN, 2),
      ]),
    ),
    '',
  ];
}

function anchorTable(runs: Run[]): string {
  const keys = new Map<string, { size: string; answer: string; concurrency: number }>();
  for (const run of runs)
    for (const s of run.sdk) keys.set(`${s.size}|${s.answer}|${s.concurrency}`, s);
  const rows = [...keys.values()].map(({ size, answer, concurrency }) => {
    const values = runs.flatMap((run) =>
      run.sdk.filter(
        (s) => s.size === size && s.answer === answer && s.concurrency === concurrency,
      ),
    );
    return [
      size,
      answer,
      String(concurrency),
      format(median(values.map((v) => v.cpuMsPerImage)), 2),
      values.map((v) => format(v.cpuMsPerImage, 2)).join(' · '),
      format(median(values.map((v) => v.images / (v.wallMs / 1000))), 0),
      format(median(values.map((v) => v.bytes / v.images / 1024)), 0),
    ];
  });
  const raw = runs.map((run) => run.rawBullmq);
  return [
    markdownRows(
      ['size', 'answer', 'concurrency', 'CPU ms / image', 'every run', 'images / s', 'KB / image'],
      rows,
    ),
    '',
    `Raw BullMQ no-op jobs (producer = the driver's addBulk + worker process): ` +
      `${format(median(raw.map((r) => r.cpuMsPerJob)), 3)} ms / job median ` +
      `(${raw.map((r) => format(r.cpuMsPerJob, 3)).join(' · ')}); worker alone ` +
      `${format(median(raw.map((r) => r.workerCpuMsPerJob)), 3)} ms / job.`,
  ].join('\n');
}

/** What the 256x256 b64 miss row (one worker) sent to Redis per image, by command. */
function redisSection(runs: Run[]): string[] {
  const row = runs
    .map((run) =>
      run.rendermill.find(
        (r) => r.size === '256x256' && r.answer === 'b64' && r.cache === 'miss' && r.workers === 1,
      ),
    )
    .find((r) => r?.redisCalls);
  if (!row?.redisCalls) return [];
  const perImage = (calls: number) => format(calls / Math.max(1, row.succeeded), 2);
  return [
    '## Redis commands per image (256x256 b64 miss, one worker, first run)',
    '',
    'From `INFO commandstats` before and after the batch: api + worker, plus the api reads the ' +
      "driver's status polls (every 200 ms) cause. `evalsha` / `eval` are Lua scripts (BullMQ's, " +
      "Bottleneck's and rendermill's).",
    '',
    markdownRows(
      ['command', 'calls', 'per image'],
      [
        ...Object.entries(row.redisCalls).map(([command, calls]) => [
          command,
          String(calls),
          perImage(calls),
        ]),
        [
          '**all**',
          String(row.redisCallsPerImage * row.succeeded),
          perImage(row.redisCallsPerImage * row.succeeded),
        ],
      ],
    ),
    '',
  ];
}

function memorySection(memory: MemoryRowResult): string {
  return [
    '### Memory: one worker, every slot held by a slow provider',
    '',
    `${memory.items} items of ${memory.size} b64 (~2.9 MB of JSON an answer), provider latency ` +
      `${memory.latencyMs} ms, worker concurrency ${memory.concurrency}` +
      (memory.concurrency < memory.concurrencyAsked
        ? ` (asked ${memory.concurrencyAsked}: RENDERMILL_CONCURRENCY allows at most 1,024)`
        : '') +
      '.',
    '',
    markdownRows(
      ['peak RSS (MB)', 'RSS at start (MB)', 'provider max in flight', 'items ok', 'seconds'],
      [
        [
          String(memory.peakRssMb),
          String(memory.rssAtStartMb),
          String(memory.maxInFlight),
          `${memory.succeeded}/${memory.items}`,
          format(memory.seconds, 1),
        ],
      ],
    ),
    '',
  ].join('\n');
}

export function markdownReport(input: {
  rows: FigureRow[];
  runs: Run[];
  failures: string[];
  concurrency: number;
  profiles: ProfileRun[];
  memory: MemoryRowResult | undefined;
  context: { date: string; commit: string; machine: string; parameters: string };
}): string {
  const { rows, runs, concurrency, profiles, memory, context } = input;
  const notes = [
    ...input.failures.map((failure) => `- failed: ${failure.split('\n')[0]}`),
    ...runs.flatMap((run) => run.notes.map((note) => `- run ${run.run}: ${note}`)),
  ];
  return [
    `# CPU per image — ${context.date}`,
    '',
    `${context.commit} · ${context.machine}`,
    '',
    context.parameters,
    '',
    ...(rows.length
      ? [
          '## rendermill against the anchors (medians over runs)',
          '',
          markdownTable(rows, concurrency),
          '',
          '## The anchors',
          '',
          anchorTable(runs),
          '',
          ...pacedTable(rows),
        ]
      : []),
    ...redisSection(runs),
    ...(profiles.length
      ? [
          `## Profile (V8 sampling profiler, 1 ms) of the 256x256 ${profiles[0]!.answer ?? 'b64'} miss row`,
          '',
          ...profiles.flatMap((p) => [
            profileMarkdown(`${p.role}: the row (${p.images} images)`, p.row, p.images),
            profileMarkdown(
              `${p.role}: start-up and a warm-up of ${p.warmupImages} images`,
              p.startup,
            ),
          ]),
        ]
      : []),
    ...(memory ? [memorySection(memory)] : []),
    ...(notes.length ? ['## Notes', '', ...notes, ''] : []),
  ].join('\n');
}
