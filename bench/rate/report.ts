import { markdownRows } from '../support/results.js';
import type { ScenarioResult } from './measure.js';
import { HEADER_VARIANTS } from './provider.js';

/** The targets, as the verdict column applies them (rendermill rows only). */
export const TARGETS = {
  truth: { steadyFraction: 0.97 },
  twice: { convergedSeconds: 10, steadyFraction: 0.9, rateLimitedFraction: 0.02 },
  /** Real-minute row: no call sooner than the limit allows (less polling slack), none much later. */
  realMinute: { slackSeconds: 0.25, medianAtMost: 1.1 },
};

const TARGETS_LINE =
  `Targets (rendermill rows): told the truth → steady ≥ ${TARGETS.truth.steadyFraction * 100} % of the limit, 0 429s, nothing lost; ` +
  `told twice the truth → converged (last 429) ≤ ${TARGETS.twice.convergedSeconds} s after the first request, steady ≥ ${TARGETS.twice.steadyFraction * 100} %, ` +
  `429s ≤ ${TARGETS.twice.rateLimitedFraction * 100} % of requests, nothing lost; real minute → every gap between accepted calls ≥ minute/limit − ${TARGETS.realMinute.slackSeconds} s, ` +
  `median ≤ ${TARGETS.realMinute.medianAtMost} × minute/limit, 0 429s, nothing lost. Anchors have no target.`;

const percent = (fraction: number, digits = 1) => `${(fraction * 100).toFixed(digits)} %`;
const thousands = (value: number) => Math.round(value).toLocaleString('en-US');

export const clientLabel = (r: ScenarioResult) => {
  const { client, trueLimit, configuredLimit, realMinute } = r.scenario;
  if (trueLimit === 0) return 'rendermill (ceiling: simulator unlimited)';
  if (client !== 'rendermill')
    return client === 'naive' ? 'naive (p-limit + SDK retries)' : 'BullMQ limiter';
  const told = configuredLimit === trueLimit ? 'told truth' : 'told 2×';
  return `rendermill (${told}${realMinute ? ', real minute' : ''})`;
};

const expectedGapSeconds = (r: ScenarioResult) => r.scenario.minuteMs / r.scenario.trueLimit / 1000;

/** Whether a rendermill row meets its target; anchors and ceiling probes have none. */
export function verdict(r: ScenarioResult): string {
  const { client, trueLimit, configuredLimit, realMinute } = r.scenario;
  if (client !== 'rendermill' || trueLimit === 0) return '';
  const mark = r.knobsIgnored.length > 0 ? ' †' : '';
  const steady = r.steadyFraction ?? 0;
  let met: boolean;
  if (realMinute) {
    const gaps = r.callGapsSeconds;
    const expected = expectedGapSeconds(r);
    met =
      gaps !== null &&
      gaps.min >= expected - TARGETS.realMinute.slackSeconds &&
      gaps.median <= expected * TARGETS.realMinute.medianAtMost &&
      r.rateLimited === 0 &&
      r.itemsLost === 0;
  } else if (configuredLimit === trueLimit) {
    met = steady >= TARGETS.truth.steadyFraction && r.rateLimited === 0 && r.itemsLost === 0;
  } else {
    met =
      (r.lastRateLimitedAfterSeconds ?? 0) <= TARGETS.twice.convergedSeconds &&
      steady >= TARGETS.twice.steadyFraction &&
      r.rateLimitedFraction <= TARGETS.twice.rateLimitedFraction &&
      r.itemsLost === 0;
  }
  return (met ? 'met' : 'MISSED') + mark;
}

const limitLabel = (r: ScenarioResult) => {
  const { trueLimit, minuteMs } = r.scenario;
  if (trueLimit === 0) return 'none';
  return minuteMs === 60_000
    ? `${thousands(trueLimit)}/min`
    : `${thousands(trueLimit)}/min (minute = ${minuteMs / 1000} s)`;
};

const windowLabel = (r: ScenarioResult) => {
  if (r.scenario.trueLimit === 0) return '—';
  const allowance = `${r.windowAllowance} per ${(r.windowMs / 1000).toFixed(r.windowMs % 1000 ? 1 : 0)} s`;
  return r.maxImagesInWindow === null
    ? `? / ${allowance}`
    : `${r.maxImagesInWindow} / ${allowance}`;
};

export function markdownTable(results: ScenarioResult[]): string {
  const header = [
    'client',
    'shape',
    'headers',
    'workers',
    'true limit',
    'told',
    'n',
    'images',
    'steady % of limit',
    '429s (% of requests)',
    'converged s',
    'lost',
    'client CPU ms/image',
    'max in window / allowance',
    'target',
  ];
  const rows = results.map((r) => [
    clientLabel(r),
    r.scenario.shape,
    r.scenario.client === 'rendermill' ? r.scenario.headers : '(ignored)',
    String(r.scenario.workers),
    limitLabel(r),
    r.scenario.client === 'rendermill' ? thousands(r.scenario.configuredLimit) : '—',
    String(r.scenario.n),
    thousands(r.images),
    r.steadyFraction === null ? '—' : percent(r.steadyFraction),
    `${thousands(r.rateLimited)} (${percent(r.rateLimitedFraction)})`,
    r.lastRateLimitedAfterSeconds === null ? '—' : r.lastRateLimitedAfterSeconds.toFixed(1),
    `${r.itemsLost} / ${r.scenario.items}`,
    r.clientCpuMsPerImage === null ? '—' : r.clientCpuMsPerImage.toFixed(2),
    windowLabel(r),
    verdict(r),
  ]);
  return markdownRows(header, rows);
}

const rowName = (r: ScenarioResult) =>
  `${clientLabel(r)}, ${r.scenario.shape}, ${r.scenario.client === 'rendermill' ? `headers ${r.scenario.headers}, ` : ''}${r.scenario.workers} workers, ${limitLabel(r)}`;

/** The markdown file: the table, the targets, and what the figures rest on. */
export function markdownReport(
  results: ScenarioResult[],
  context: { date: string; commit: string; machine: string; shape: string },
): string {
  const gaps = results
    .filter((r) => r.callGapsSeconds !== null)
    .map((r) => {
      const g = r.callGapsSeconds!;
      return `- ${rowName(r)}: ${g.count} accepted calls, gaps min ${g.min.toFixed(2)} s · median ${g.median.toFixed(2)} s · max ${g.max.toFixed(2)} s (limit allows one every ${expectedGapSeconds(r).toFixed(2)} s)`;
    });
  const notes = results
    .map((r) => {
      const extra: string[] = [];
      if (r.firstRateLimitedAfterSeconds !== null)
        extra.push(`first 429 after ${r.firstRateLimitedAfterSeconds.toFixed(2)} s`);
      if (r.steadyFromSeconds !== null)
        extra.push(
          `steady from ${r.steadyFromSeconds.toFixed(1)} s of ${r.elapsedSeconds.toFixed(1)} s`,
        );
      if (r.scenario.client !== 'rendermill' && r.scenario.n > r.windowAllowance)
        extra.push(
          `every request asks for ${r.scenario.n} images and the provider's window holds ${r.windowAllowance}: refused whatever the pacing; stopped after ${r.scenario.deadlineMs / 1000} s`,
        );
      if (r.knobsIgnored.length > 0)
        extra.push(`† simulator ignored knobs: ${r.knobsIgnored.join(', ')}`);
      return { r, all: [...extra, ...r.notes] };
    })
    .map(({ r, all }) => `- ${rowName(r)}: ${all.join('; ')}`);
  const cpu = results.map(
    (r) =>
      `- ${rowName(r)}: ` +
      Object.entries(r.cpuSeconds)
        .map(([role, seconds]) => `${role} ${seconds.toFixed(2)} s`)
        .join(', '),
  );
  const headerVariants = Object.entries(HEADER_VARIANTS).map(
    ([name, v]) =>
      `\`${name}\` = ${v.families.length === 0 ? 'no x-ratelimit headers' : `x-ratelimit-{${v.fields.join(',')}}-{${v.families.join(',')}}`}`,
  );
  return [
    `# Rate-limit benchmark — ${context.date}`,
    '',
    `${context.commit} · ${context.machine} · ${context.shape}`,
    '',
    markdownTable(results),
    '',
    TARGETS_LINE,
    '',
    `Header variants: ${headerVariants.join('; ')}. The anchors ignore rate headers and run once per shape × workers × limit.`,
    '',
    'Steady = from max(first request + 1 s, last 429 + 1 s), capped at the run midpoint, to the last answer; converged = seconds from the first request to the last 429 (sampled every 250 ms, 100 ms on slow rows).',
    '',
    ...(gaps.length > 0 ? ['## Seconds between accepted calls', '', ...gaps, ''] : []),
    '## Notes',
    '',
    ...notes,
    '',
    '## CPU seconds used during each scenario',
    '',
    ...cpu,
    '',
  ].join('\n');
}
