import { rerunServedFromCache, type Figure, type Repetition } from './figures.js';
import { POLL_MS } from './shape.js';
import { cpuLine, formatNumber as format, markdownRows } from '../support/results.js';

const thousands = (value: number) => format(value, 0);
const metCell = (met: boolean | null) => (met === null ? '' : met ? 'met' : 'MISSED');

export function markdownTable(figures: Figure[], repetitions: Repetition[], items: number): string {
  const header = ['figure', 'median', 'every run', 'target', 'met'];
  const rows = figures.map((f) => [
    f.label,
    format(f.median, f.digits),
    f.values.map((v) => format(v, f.digits)).join(' · '),
    f.target ?? '—',
    metCell(f.met),
  ]);
  // Not a rate: whether the re-run was free at all. The worst run is shown as the "median".
  const cached = repetitions.map((r) => r.rerun.cachedItems);
  const billed = repetitions.map((r) => r.rerun.billedImages);
  rows.push([
    're-run items cached / images billed',
    `${thousands(Math.min(...cached))} / ${thousands(Math.max(...billed))} (worst run)`,
    repetitions
      .map((r) => `${thousands(r.rerun.cachedItems)} / ${thousands(r.rerun.billedImages)}`)
      .join(' · '),
    `${thousands(items)} / 0`,
    metCell(rerunServedFromCache(repetitions, items)),
  ]);
  return markdownRows(header, rows);
}

/** The markdown file: the table, how to read it, and what each repetition's figures rest on. */
export function markdownReport(
  figures: Figure[],
  repetitions: Repetition[],
  context: { date: string; commit: string; machine: string; parameters: string; items: number },
): string {
  const details = repetitions.flatMap((r) => [
    `### Repetition ${r.repetition}`,
    '',
    `- first run: ${r.first.seconds.toFixed(2)} s (POST ${r.first.submitSeconds.toFixed(2)} s; ` +
      `to completed_at ${r.first.secondsToCompletedAt?.toFixed(2) ?? '—'} s), ` +
      `${r.first.billedImages} images billed; CPU: ${cpuLine(r.first.cpuSeconds)}`,
    `- re-run: ${r.rerun.seconds.toFixed(2)} s (POST ${r.rerun.submitSeconds.toFixed(2)} s; ` +
      `to completed_at ${r.rerun.secondsToCompletedAt?.toFixed(2) ?? '—'} s), ` +
      `${r.rerun.cachedItems} cached, ${r.rerun.billedImages} images billed, ` +
      `worker CPU ${r.rerun.workerCpuMsPerItem.toFixed(3)} ms/item; CPU: ${cpuLine(r.rerun.cpuSeconds)}`,
    `- raw BullMQ: ${r.raw.completed}/${r.raw.jobs} jobs in ${r.raw.seconds.toFixed(2)} s ` +
      `(to the last finishedOn ${r.raw.secondsToLastFinished?.toFixed(2) ?? '—'} s); CPU: ${cpuLine(r.raw.cpuSeconds)}`,
    ...r.notes.map((note) => `- note: ${note}`),
    '',
  ]);
  return [
    `# Dedupe / result-cache benchmark — ${context.date}`,
    '',
    `${context.commit} · ${context.machine}`,
    '',
    context.parameters,
    '',
    markdownTable(figures, repetitions, context.items),
    '',
    `Times run from just before the POST (or the first addBulk) until a poll every ${POLL_MS} ms ` +
      `sees the batch completed (or every job completed): up to ${POLL_MS} ms is poll granularity. ` +
      'Worker CPU per rendered image is the rendermill worker processes’ CPU during the first ' +
      'run over the images it rendered; the raw BullMQ figure is its worker process’s CPU over ' +
      'its no-op jobs. "met" compares the median with the target.',
    '',
    '## Every repetition',
    '',
    ...details,
  ].join('\n');
}
