import type { CatalogResult } from './catalog.js';
import type { RawBullmqResult } from './raw-bullmq.js';
import { TARGETS } from './shape.js';

/** One repetition of the whole measurement: rendermill's two runs and the raw BullMQ anchor. */
export interface Repetition {
  repetition: number;
  first: CatalogResult['first'];
  rerun: CatalogResult['rerun'];
  raw: RawBullmqResult;
  /** Cached re-run items/s over raw BullMQ add+process items/s, in this repetition. */
  ratio: number;
  notes: string[];
}

/** A headline figure: its value in every repetition, their median, and its target if it has one. */
export interface Figure {
  key: string;
  label: string;
  values: number[];
  median: number;
  /** e.g. "≥ 2,000"; null for the anchors and context figures. */
  target: string | null;
  met: boolean | null;
  /** Digits shown in the table. */
  digits: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return NaN;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The medians are per figure (the median ratio is the median of each repetition's ratio, not
 * the ratio of the medians): each repetition's figures share one machine state.
 */
export function figures(repetitions: Repetition[]): Figure[] {
  const figure = (
    key: string,
    label: string,
    pick: (r: Repetition) => number,
    digits: number,
    target?: { text: string; met: (value: number) => boolean },
  ): Figure => {
    const values = repetitions.map(pick);
    const mid = median(values);
    return {
      key,
      label,
      values,
      median: mid,
      target: target?.text ?? null,
      met: target ? target.met(mid) : null,
      digits,
    };
  };
  return [
    figure('cachedItemsPerSecond', 'cached re-run items/s', (r) => r.rerun.itemsPerSecond, 0, {
      text: `≥ ${TARGETS.cachedItemsPerSecond.toLocaleString('en-US')}`,
      met: (v) => v >= TARGETS.cachedItemsPerSecond,
    }),
    figure('rawItemsPerSecond', 'raw BullMQ add+process items/s', (r) => r.raw.itemsPerSecond, 0),
    figure('ratio', 'ratio (cached re-run ÷ raw BullMQ)', (r) => r.ratio, 2, {
      text: `≥ ${TARGETS.ratioToRawBullmq}`,
      met: (v) => v >= TARGETS.ratioToRawBullmq,
    }),
    figure(
      'workerCpuMsPerImage',
      'worker CPU ms per rendered image',
      (r) => r.first.workerCpuMsPerImage,
      2,
      {
        text: `≤ ${TARGETS.workerCpuMsPerImage}`,
        met: (v) => v <= TARGETS.workerCpuMsPerImage,
      },
    ),
    figure(
      'rawWorkerCpuMsPerJob',
      'raw BullMQ worker CPU ms per job',
      (r) => r.raw.workerCpuMsPerJob,
      3,
    ),
    figure('firstItemsPerSecond', 'first (uncached) run items/s', (r) => r.first.itemsPerSecond, 0),
  ];
}

/** Whether every re-run was served from the cache: all items `cached`, no image billed. */
export function rerunServedFromCache(repetitions: Repetition[], items: number): boolean {
  return repetitions.every((r) => r.rerun.cachedItems === items && r.rerun.billedImages === 0);
}
