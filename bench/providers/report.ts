import { cpuLine, formatNumber, markdownRows } from '../support/results.js';
import type { RowResult } from './measure.js';
import { PRICES, ROUTES, type Options } from './plan.js';

const pct = (value: number | null) => (value === null ? '—' : `${(value * 100).toFixed(0)} %`);
const triple = (values: Record<string, number>) => ROUTES.map((r) => values[r] ?? 0).join(' / ');

export function markdownTable(results: RowResult[]): string {
  const header = [
    'strategy',
    'shape',
    'items ok',
    'images per route (gw / r8 / fal)',
    'steady img/s',
    'target img/s',
    'steady ÷ target',
    '429s (gw / r8 / fal)',
    'billed once',
    'spend vs Σ price × billed',
    'CPU ms / image',
    'handed back',
    'machine busy (cores, this bench)',
  ];
  const rows = results.map((r) => {
    const billedOnce =
      r.promptsBilledTwiceOrMore === 0 && r.itemsNeverBilled === 0
        ? `✓ ${r.promptsBilledOnce}`
        : `✗ ${r.promptsBilledOnce} once, ${r.promptsBilledTwiceOrMore} twice+, ${r.itemsNeverBilled} never`;
    const spend = r.spendMatches
      ? `✓ $${(r.spendMicros / 1e6).toFixed(6)}`
      : `✗ $${(r.spendMicros / 1e6).toFixed(6)} vs $${(r.expectedSpendMicros / 1e6).toFixed(6)}`;
    return [
      r.row.strategy,
      r.row.shape,
      `${r.itemsSucceeded}/${r.row.items}`,
      triple(r.itemsByRoute),
      r.steadyPerSecond === null ? '—' : formatNumber(r.steadyPerSecond, 1),
      formatNumber(r.row.targetPerSecond, 1),
      pct(r.steadyFraction),
      triple(r.rateLimitedByRoute),
      billedOnce,
      spend,
      r.cpuMsPerImage === null ? '—' : formatNumber(r.cpuMsPerImage, 1),
      r.itemsHandedBack === null ? '—' : String(r.itemsHandedBack),
      r.machine
        ? `${r.machine.busyCores.toFixed(2)} of ${r.machine.cores} (${r.machine.ownCores.toFixed(2)})`
        : '—',
    ];
  });
  return markdownRows(header, rows);
}

export function markdownReport(
  results: RowResult[],
  run: { date: string; commit: string; machine: string; options: Options; command: string },
): string {
  const { options } = run;
  const out = [
    `# bench:providers — ${run.date}`,
    '',
    `commit ${run.commit} · ${run.machine}`,
    '',
    `\`${run.command}\``,
    '',
    `Limits (images/min): gateway ${options.limits.gateway}, replicate ${options.limits.replicate}, fal ${options.limits.fal}; ` +
      `prices (USD/image): ${ROUTES.map((r) => `${r} ${PRICES[r]}`).join(', ')}; ` +
      `~${options.seconds} s of rendering per row; steady = middle of the provider-side run, ${options.trimSeconds} s cut at each end; ` +
      `${options.workers} worker(s), RENDERMILL_CONCURRENCY=${options.concurrency}; simulator latency ${options.latencyMs} ms; ` +
      `queued rows: queuedMs ${options.queuedMs} on replicate and fal, RENDERMILL_QUEUED_FOLLOW_MS=${options.followMs}, _RECHECK_MS=${options.recheckMs}.`,
    '',
    markdownTable(results),
    '',
    '## Per row',
    '',
  ];
  for (const r of results) {
    out.push(
      `- **${r.row.strategy} / ${r.row.shape}**: batch ${r.batchStatus}; provider-side ${formatNumber(r.elapsedSeconds, 1)} s ` +
        `(${formatNumber(r.overallPerSecond, 1)} img/s overall); steady per route ${ROUTES.map((route) => `${route} ${r.steadyByRoute[route] === null ? '—' : formatNumber(r.steadyByRoute[route]!, 1)}/s`).join(', ')}; ` +
        (r.machine
          ? `machine ${r.machine.busyCores.toFixed(2)} of ${r.machine.cores} cores busy (this bench ${r.machine.ownCores.toFixed(2)}), load ${r.machine.loadAverage1m.toFixed(1)}; `
          : '') +
        `billed ${triple(r.billedByRoute)}; requests ${triple(r.requestsByRoute)}; CPU ${cpuLine(r.cpuSeconds)}; wall ${formatNumber(r.wallSeconds, 1)} s` +
        (r.notes.length ? `; notes: ${r.notes.join('; ')}` : ''),
    );
  }
  return out.join('\n') + '\n';
}
