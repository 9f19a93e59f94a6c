import type { Ratio, Stat, UploadSummary } from './figures.js';
import type { Upload } from './measure.js';
import { SAMPLE_MS } from './memory.js';
import { cpuLine, formatNumber as format, markdownRows } from '../support/results.js';

const MIB = 2 ** 20;
const mib = (bytes: number) => format(bytes / MIB, 1);
const times = (ratio: number) => (Number.isFinite(ratio) ? `${format(ratio, 2)}×` : '—');
/** "median (each run)". */
const cell = (figure: Stat, digits: number) =>
  `${format(figure.median, digits)} (${figure.values.map((v) => format(v, digits)).join(' · ')})`;

export const uploadLabel = (u: Pick<Upload, 'kind' | 'endpoint'>) =>
  `${u.kind === 'csv' ? 'CSV stream' : 'JSON body'} → ${u.endpoint === 'submit' ? '/v1/batches' : '/v1/batches/estimate'}`;

export function markdownTables(summaries: UploadSummary[], ratios: Ratio[]): string {
  const uploads = markdownRows(
    [
      'upload',
      'rows',
      'rows/s',
      'API peak RSS growth, MiB',
      'live heap after full GCs, MiB (max)',
      'full GCs',
      'Redis used_memory after, MiB',
    ],
    summaries.map((s) => [
      uploadLabel(s),
      s.rows.toLocaleString('en-US'),
      cell(s.rowsPerSecond, 0),
      cell(s.peakGrowthMiB, 1),
      cell(s.liveHeapMiB, 1),
      cell(s.fullGcs, 0),
      cell(s.redisUsedMiB, 1),
    ]),
  );
  const growth = markdownRows(
    ['peak RSS growth ratio', 'median', 'every run', 'reading'],
    ratios.map((r) => [
      r.label,
      times(r.median),
      r.values.length > 0 ? r.values.map(times).join(' · ') : '—',
      r.reading,
    ]),
  );
  return `${uploads}\n\nMedians, each run in parentheses.\n\n${growth}`;
}

function uploadDetails(u: Upload): string[] {
  const m = u.memory;
  const gcs =
    u.fullGcs.count === 0
      ? 'no full GC'
      : `${u.fullGcs.count} full GCs, heap ${u.fullGcs.heapBeforeMiB
          .map((before, i) => `${before.toFixed(0)}→${u.fullGcs.heapAfterMiB[i]!.toFixed(0)}`)
          .join(', ')} MiB`;
  return [
    `- ${uploadLabel(u)}, ${u.rows.toLocaleString('en-US')} rows: ` +
      (u.failed === null
        ? `${u.seconds.toFixed(2)} s = ${format(u.rowsPerSecond, 0)} rows/s`
        : `FAILED after ${u.seconds.toFixed(2)} s`) +
      `; RSS ${mib(m.rssBefore)} → peak ${mib(m.peakRss)} ` +
      `(+${mib(u.peakGrowthBytes)}) → ${mib(m.rssAfter)} MiB at the answer ` +
      `(VmHWM ${m.hwm === null ? '—' : mib(m.hwm)}, ${m.samples} samples, longest gap ${m.longestGapMs} ms); ` +
      `${gcs}; Redis ${mib(u.redisUsedMemoryBefore)} → ${mib(u.redisUsedMemoryAfter)} MiB` +
      (u.itemsInRedis === null ? '' : `, ${u.itemsInRedis} items staged`) +
      `, ${u.renderJobsWaiting} render jobs waiting; CPU: ${cpuLine(u.cpuSeconds)}`,
    ...u.notes.map((note) => `  - note: ${note}`),
  ];
}

/** The markdown file: the tables, how to read them, and every upload's figures. */
export function markdownReport(
  summaries: UploadSummary[],
  ratios: Ratio[],
  uploads: Upload[],
  context: { date: string; commit: string; machine: string; parameters: string },
): string {
  const repetitions = [...new Set(uploads.map((u) => u.repetition))];
  return [
    `# Catalog upload memory benchmark — ${context.date}`,
    '',
    `${context.commit} · ${context.machine}`,
    '',
    context.parameters,
    '',
    markdownTables(summaries, ratios),
    '',
    'Each upload runs in a `rendermill api` of its own (warmed up, Redis emptied, no worker). ' +
      'rows/s = rows accepted ÷ (just before the request → its answer read). Peak RSS growth = ' +
      `the API's highest RSS during the upload (VmHWM, reset before it, and a sample every ${SAMPLE_MS} ms) ` +
      'minus its RSS just before. Live heap after full GCs = what V8 still held after each ' +
      'Mark-Compact during the upload (`--trace-gc`): rows kept in memory would make it grow, ' +
      'garbage not yet collected does not. Redis used_memory is `INFO memory` after the answer.',
    '',
    '## Every upload',
    '',
    ...repetitions.flatMap((r) => [
      `### Repetition ${r}`,
      '',
      ...uploads.filter((u) => u.repetition === r).flatMap(uploadDetails),
      '',
    ]),
  ].join('\n');
}
