import { median } from '../dedupe/figures.js';
import type { BodyKind, Endpoint } from './api.js';
import type { Upload } from './measure.js';

const MIB = 2 ** 20;

/** A figure's value in every repetition, and their median. */
export interface Stat {
  values: number[];
  median: number;
}

/** Every repetition of one upload (body kind × endpoint × rows), summed up. */
export interface UploadSummary {
  key: string;
  kind: BodyKind;
  endpoint: Endpoint;
  rows: number;
  rowsPerSecond: Stat;
  /** The API's peak RSS minus its RSS before the upload, MiB. */
  peakGrowthMiB: Stat;
  /** The most V8 heap alive after a full GC during the upload, MiB (NaN: no full GC ran). */
  liveHeapMiB: Stat;
  fullGcs: Stat;
  /** Redis's used_memory after the upload, MiB. */
  redisUsedMiB: Stat;
}

/** One peak growth over another, repetition by repetition. */
export interface Ratio {
  key: string;
  label: string;
  values: number[];
  median: number;
  /** How to read it, e.g. "flat ≈ 1–2×, linear 10×". */
  reading: string;
}

/** A failed upload's figures are NaN: shown as "—", left out of the median. */
const stat = (values: number[]): Stat => ({
  values,
  median: median(values.filter(Number.isFinite)),
});

export const uploadKey = (kind: BodyKind, endpoint: Endpoint, rows: number) =>
  `${kind}-${endpoint}-${rows}`;

/** Uploads grouped as they are planned; the medians are per figure, over repetitions. */
export function summarize(uploads: Upload[]): UploadSummary[] {
  const groups = new Map<string, Upload[]>();
  for (const upload of uploads) {
    const key = uploadKey(upload.kind, upload.endpoint, upload.rows);
    groups.set(key, [...(groups.get(key) ?? []), upload]);
  }
  return [...groups.entries()].map(([key, group]) => {
    const { kind, endpoint, rows } = group[0]!;
    return {
      key,
      kind,
      endpoint,
      rows,
      rowsPerSecond: stat(group.map((u) => u.rowsPerSecond)),
      // The peak of an upload the API did not live through is not comparable.
      peakGrowthMiB: stat(group.map((u) => (u.failed ? NaN : u.peakGrowthBytes / MIB))),
      liveHeapMiB: stat(
        group.map((u) => (u.fullGcs.count > 0 ? Math.max(...u.fullGcs.heapAfterMiB) : NaN)),
      ),
      fullGcs: stat(group.map((u) => u.fullGcs.count)),
      redisUsedMiB: stat(group.map((u) => u.redisUsedMemoryAfter / MIB)),
    };
  });
}

/**
 * The figures that answer the claim: how the peak grows from the fewest streamed rows to the
 * most (flat ≈ 1–2×, linear = the row ratio), and how streaming compares with the JSON body.
 * Each is the median of the repetitions' own ratios: a repetition's uploads share one machine state.
 */
export function ratios(
  uploads: Upload[],
  options: { rows: number[]; jsonRows: number | null },
): Ratio[] {
  /** A repetition's peak growth for one upload; undefined if missing or failed. */
  const growth = (repetition: number, kind: BodyKind, endpoint: Endpoint, rows: number) => {
    const found = uploads.find(
      (u) =>
        u.repetition === repetition &&
        u.kind === kind &&
        u.endpoint === endpoint &&
        u.rows === rows,
    );
    return found && !found.failed ? found.peakGrowthBytes : undefined;
  };
  const repetitions = [...new Set(uploads.map((u) => u.repetition))];
  const ratio = (
    key: string,
    label: string,
    reading: string,
    top: [BodyKind, Endpoint, number],
    bottom: [BodyKind, Endpoint, number],
  ): Ratio => {
    const values = repetitions.flatMap((r) => {
      const [a, b] = [growth(r, ...top), growth(r, ...bottom)];
      return a === undefined || b === undefined ? [] : [a / b];
    });
    return { key, label, values, median: median(values), reading };
  };
  const thousands = (rows: number) => rows.toLocaleString('en-US');
  const fewest = Math.min(...options.rows);
  const most = Math.max(...options.rows);
  const found: Ratio[] = [];
  if (most > fewest) {
    for (const endpoint of ['submit', 'estimate'] as const) {
      found.push(
        ratio(
          `csv-${endpoint}-${most}-over-${fewest}`,
          `CSV ${endpoint}: peak growth at ${thousands(most)} ÷ at ${thousands(fewest)} rows`,
          `flat ≈ 1–2×, linear ${thousands(most / fewest)}×`,
          ['csv', endpoint, most],
          ['csv', endpoint, fewest],
        ),
      );
    }
  }
  if (options.jsonRows !== null) {
    const json = options.jsonRows;
    for (const rows of options.rows) {
      found.push(
        ratio(
          `csv-submit-${rows}-over-json-${json}`,
          `CSV submit at ${thousands(rows)} rows ÷ JSON submit at ${thousands(json)}`,
          rows === json
            ? 'the same rows: streaming vs in memory'
            : `${thousands(rows / json)}× the rows`,
          ['csv', 'submit', rows],
          ['json', 'submit', json],
        ),
      );
    }
  }
  return found;
}
