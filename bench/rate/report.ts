import type { ScenarioResult } from './measure.js';

const TARGETS =
  'Targets: rendermill told the true limit ≥ 97 % of it with zero 429s; told twice the true ' +
  'limit, every item finishes with 429s < 5 % of requests and no failed items.';

const percent = (fraction: number, digits = 1) => `${(fraction * 100).toFixed(digits)} %`;
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

const clientLabel = (r: ScenarioResult) => {
  const { client, trueLimit, configuredLimit } = r.scenario;
  if (trueLimit === 0) return 'rendermill (ceiling: simulator unlimited)';
  if (client !== 'rendermill')
    return client === 'naive' ? 'naive (p-limit + SDK retries)' : 'BullMQ limiter';
  return configuredLimit === trueLimit ? 'rendermill (true limit)' : 'rendermill (2× limit)';
};

/** Whether a rendermill row meets its target; anchors have none. */
export function verdict(r: ScenarioResult): string {
  const { client, trueLimit, configuredLimit } = r.scenario;
  if (client !== 'rendermill' || trueLimit === 0) return '';
  if (configuredLimit === trueLimit) {
    return (r.fractionOfLimit ?? 0) >= 0.97 && r.rateLimited === 0 && r.itemsLost === 0
      ? 'met'
      : 'MISSED';
  }
  return r.itemsLost === 0 && r.rateLimitedFraction < 0.05 ? 'met' : 'MISSED';
}

export function markdownTable(results: ScenarioResult[]): string {
  const header = [
    'client',
    'workers',
    'true limit',
    'configured limit',
    'images',
    'elapsed s',
    'images/min',
    '% of limit',
    'requests',
    '429s',
    '429 % of requests',
    'lost',
    'target',
  ];
  const rows = results.map((r) => [
    clientLabel(r),
    String(r.scenario.workers),
    r.scenario.trueLimit === 0 ? 'none' : thousands(r.scenario.trueLimit),
    r.scenario.client === 'rendermill' ? thousands(r.scenario.configuredLimit) : '—',
    thousands(r.images),
    r.elapsedSeconds.toFixed(1),
    thousands(r.imagesPerMinute),
    r.fractionOfLimit === null ? '—' : percent(r.fractionOfLimit),
    thousands(r.requests),
    thousands(r.rateLimited),
    percent(r.rateLimitedFraction),
    `${r.itemsLost} / ${r.scenario.items}`,
    verdict(r),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The markdown file: the table, the targets, and what the figures rest on. */
export function markdownReport(
  results: ScenarioResult[],
  context: { date: string; commit: string; machine: string; shape: string },
): string {
  const notes = results
    .map((r) => ({
      ...r,
      notes:
        r.firstRateLimitedAfterSeconds === null
          ? r.notes
          : [`first 429 after ${r.firstRateLimitedAfterSeconds.toFixed(2)} s`, ...r.notes],
    }))
    .filter((r) => r.notes.length > 0)
    .map(
      (r) =>
        `- ${clientLabel(r)}, ${r.scenario.workers} workers, ${thousands(r.scenario.trueLimit)}/min: ${r.notes.join('; ')}`,
    );
  const cpu = results.map(
    (r) =>
      `- ${clientLabel(r)}, ${r.scenario.workers} workers, ${r.scenario.trueLimit === 0 ? 'unlimited' : `${thousands(r.scenario.trueLimit)}/min`}: ` +
      Object.entries(r.cpuSeconds)
        .map(([role, seconds]) => `${role} ${seconds.toFixed(1)} s`)
        .join(', '),
  );
  return [
    `# Rate-limit benchmark — ${context.date}`,
    '',
    `${context.commit} · ${context.machine} · ${context.shape}`,
    '',
    markdownTable(results),
    '',
    TARGETS,
    '',
    ...(notes.length > 0 ? ['## Notes', '', ...notes, ''] : []),
    '## CPU seconds used during each scenario',
    '',
    ...cpu,
    '',
  ].join('\n');
}
