import { cpuLine, formatNumber as format, markdownRows } from '../support/results.js';
import { ONE_SECOND_BOUND, PROVIDER_SECOND, limitHeld, type RunResult } from './measure.js';
import { LIMIT_PER_MINUTE, SAMPLE_MS, SCALING_TARGET } from './shape.js';
import type { WindowCount } from './windows.js';

export interface Scaling {
  workers: number;
  /** The steady rate (the wall-time rate when there is none). */
  imagesPerMinute: number;
  /** Over the 1-worker run's rate; null without a 1-worker run. */
  timesOneWorker: number | null;
  fractionOfLimit: number;
  /** min(N × the 1-worker rate, the limit): what perfect scaling would reach. */
  ideal: number | null;
  /** imagesPerMinute ÷ ideal. */
  efficiency: number | null;
  met: boolean | null;
}

export function scaling(results: RunResult[]): Scaling[] {
  const rate = (r: RunResult) => r.steady?.imagesPerMinute ?? r.imagesPerMinute;
  const one = results.find((r) => r.workers === 1);
  return results.map((r) => {
    const perWorker = one ? rate(one) / one.workers : null;
    const ideal = perWorker === null ? null : Math.min(r.workers * perWorker, LIMIT_PER_MINUTE);
    const efficiency = ideal === null ? null : rate(r) / ideal;
    return {
      workers: r.workers,
      imagesPerMinute: rate(r),
      timesOneWorker: one ? rate(r) / rate(one) : null,
      fractionOfLimit: rate(r) / LIMIT_PER_MINUTE,
      ideal,
      efficiency,
      met: efficiency === null ? null : efficiency >= SCALING_TARGET,
    };
  });
}

const thousands = (value: number) => format(value, 0);
const percent = (fraction: number | null) =>
  fraction === null ? '—' : `${(fraction * 100).toFixed(1)} %`;
const bounds = (w: WindowCount | null) =>
  w === null
    ? '—'
    : w.lower === w.upper
      ? thousands(w.lower)
      : `${thousands(w.lower)}–${thousands(w.upper)}`;
const workerCpu = (r: RunResult) =>
  Object.entries(r.cpuSeconds)
    .filter(([role]) => role.startsWith('worker '))
    .map(([, seconds]) => seconds.toFixed(1))
    .join(' · ');

export function markdownTable(results: RunResult[]): string {
  const scales = scaling(results);
  const header = [
    'workers',
    'slots',
    'wall s',
    'images/min (wall)',
    'steady images/min',
    '× 1 worker',
    '% of limit',
    '% of ideal',
    'busiest 1 s',
    'busiest 60 s',
    '429s',
    'CPU s per worker',
    'worker CPU ms/image',
    'other CPU s',
    'limit held',
    'scales',
  ];
  const rows = results.map((r, i) => {
    const s = scales[i]!;
    return [
      String(r.workers),
      String(r.workers * r.concurrency),
      r.wallSeconds.toFixed(1),
      thousands(r.imagesPerMinute),
      r.steady ? thousands(r.steady.imagesPerMinute) : '—',
      s.timesOneWorker === null ? '—' : `${s.timesOneWorker.toFixed(2)}×`,
      percent(s.fractionOfLimit),
      percent(s.efficiency),
      bounds(r.busiest.oneSecond),
      bounds(r.busiest.sixtySeconds),
      thousands(r.rateLimited),
      workerCpu(r),
      format(r.workerCpuMsPerImage, 1),
      format(r.cpuSeconds.other ?? NaN, 1),
      limitHeld(r) ? 'yes' : 'NO',
      s.met === null ? '—' : s.met ? 'yes' : 'NO',
    ];
  });
  return markdownRows(header, rows);
}

export function markdownReport(
  results: RunResult[],
  meta: { date: string; commit: string; machine: string; setting: string },
): string {
  const details = results.map((r) =>
    [
      `### ${r.workers} worker${r.workers === 1 ? '' : 's'}`,
      '',
      `- items: ${Object.entries(r.counts)
        .filter(([, count]) => count > 0)
        .map(([status, count]) => `${status} ${count}`)
        .join(
          ', ',
        )}; provider: ${r.requests} requests, ${r.rateLimited} 429s, statuses ${JSON.stringify(r.byStatus)}, at most ${r.maxInFlight} in flight`,
      `- provider's first request → last answer ${r.providerSeconds.toFixed(1)} s; steady part ${r.steady ? `${r.steady.seconds.toFixed(1)} s` : '—'}`,
      `- busiest windows (accepted images): 1 s ${bounds(r.busiest.oneSecond)}, 1 s in the steady part ${bounds(r.busiestSteadySecond)}, 10 s ${bounds(r.busiest.tenSeconds)}, 60 s ${bounds(r.busiest.sixtySeconds)} (${r.sampleCount} samples, widest gap ${r.largestSampleGapMs} ms)`,
      `- CPU: ${cpuLine(r.cpuSeconds)}; load average before ${r.loadBefore.toFixed(2)}`,
      `- accepted per second: ${r.acceptedPerSecond.join(' ')}`,
      ...r.notes.map((note) => `- note: ${note}`),
    ].join('\n'),
  );
  return [
    '# Scale bench',
    '',
    `${meta.date} · ${meta.commit} · ${meta.machine}`,
    '',
    meta.setting,
    '',
    markdownTable(results),
    '',
    `Limit held: zero 429s, the busiest 60 s ≤ ${thousands(LIMIT_PER_MINUTE)} and the busiest 1 s ≤ ${ONE_SECOND_BOUND} ` +
      `(the rate window's allowance; the provider's own second holds ${PROVIDER_SECOND}). Windows are counted from the simulator's counters read every ${SAMPLE_MS} ms, ` +
      'so each is given as the count seen for certain – the most it can have been. ' +
      `Scales: steady images/min ≥ ${SCALING_TARGET * 100} % of min(N × the 1-worker rate, the limit). ` +
      'A run shorter than 60 s has its whole batch in one 60 s window.',
    '',
    ...details.flatMap((block) => [block, '']),
  ].join('\n');
}
