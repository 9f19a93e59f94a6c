import { markdownRows } from '../support/results.js';

/** One measured phase: N idle workers (0 = Redis alone). */
export interface PhaseResult {
  workers: number;
  measuredSeconds: number;
  /** CPU ms per second of each worker over the window (null if it exited). */
  workerMsPerSecond: (number | null)[];
  workerMedian: number | null;
  workerMax: number | null;
  redisMsPerSecond: number | null;
  /** Commands Redis processed per second in the window, the driver's own excluded. */
  redisCommandsPerSecond: number;
  notes: string[];
}

/** The targets printed beside the figures. */
export const TARGETS = {
  workerMsPerSecond: 2,
  /** Redis with 4 idle workers. */
  redisMsPerSecond: 5,
  redisAtWorkers: 4,
};

const fmt = (value: number | null) => (value === null ? '—' : value.toFixed(2));

function verdict(r: PhaseResult): string {
  const checks: boolean[] = [];
  if (r.workers > 0 && r.workerMax !== null) checks.push(r.workerMax <= TARGETS.workerMsPerSecond);
  if (r.workers === TARGETS.redisAtWorkers && r.redisMsPerSecond !== null)
    checks.push(r.redisMsPerSecond <= TARGETS.redisMsPerSecond);
  if (checks.length === 0) return '';
  return checks.every(Boolean) ? 'met' : 'MISSED';
}

export function markdownTable(results: PhaseResult[]): string {
  const header = [
    'idle workers',
    'worker CPU ms/s (median)',
    'worker CPU ms/s (max)',
    'target worker',
    'redis-server CPU ms/s',
    'target redis',
    'redis commands/s',
    'target',
  ];
  const rows = results.map((r) => [
    String(r.workers),
    fmt(r.workerMedian),
    fmt(r.workerMax),
    r.workers > 0 ? `≤ ${TARGETS.workerMsPerSecond}` : '—',
    fmt(r.redisMsPerSecond),
    r.workers === TARGETS.redisAtWorkers ? `≤ ${TARGETS.redisMsPerSecond}` : '—',
    r.redisCommandsPerSecond.toFixed(1),
    verdict(r),
  ]);
  return markdownRows(header, rows);
}

export function markdownReport(
  results: PhaseResult[],
  context: {
    date: string;
    commit: string;
    machine: string;
    options: { seconds: number; warmup: number };
  },
): string {
  const notes = results
    .filter((r) => r.notes.length > 0)
    .map((r) => `- ${r.workers} workers: ${r.notes.join('; ')}`);
  const perWorker = results
    .filter((r) => r.workers > 0)
    .map(
      (r) =>
        `- ${r.workers} workers: ${r.workerMsPerSecond.map(fmt).join(', ')} ms/s (over ${r.measuredSeconds.toFixed(1)} s)`,
    );
  return [
    `# Idle-worker CPU benchmark — ${context.date}`,
    '',
    `${context.commit} · ${context.machine} · ${context.options.warmup} s warm-up after every worker registered, then ${context.options.seconds} s measured`,
    '',
    markdownTable(results),
    '',
    `Targets: an idle worker ≤ ${TARGETS.workerMsPerSecond} ms of CPU per second (every worker); redis-server with ${TARGETS.redisAtWorkers} idle workers ≤ ${TARGETS.redisMsPerSecond} ms/s. ` +
      'CPU is user + system time from /proc/<pid>/stat (10 ms ticks: ±0.33 ms/s over 30 s).',
    '',
    '## Each worker',
    '',
    ...perWorker,
    '',
    ...(notes.length > 0 ? ['## Notes', '', ...notes, ''] : []),
  ].join('\n');
}
