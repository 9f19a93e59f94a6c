import type { RawBullmqResult } from '../dedupe/raw-bullmq.js';
import type { AnswerForm } from './provider.js';
import type { CacheCase, PacedAnchorRow, RendermillRowResult, SdkAnchorRow } from './measure.js';

/** Everything one repetition measured. */
export interface Run {
  run: number;
  rendermill: RendermillRowResult[];
  rawBullmq: RawBullmqResult & { cpuMsPerJob: number };
  sdk: SdkAnchorRow[];
  /** The multi-worker row's anchor at its pace, when there is such a row. */
  paced?: PacedAnchorRow | undefined;
  notes: string[];
}

export interface FigureRow {
  size: string;
  answer: AnswerForm;
  cache: CacheCase;
  workers: number;
  /** Medians over the runs. */
  oursMs: number;
  sdkSequentialMs: number;
  sdkConcurrentMs: number;
  /** ours − the SDK anchor at rendermill's concurrency, and ours ÷ it, medians of per-run figures. */
  overSdkMs: number;
  timesSdk: number;
  rawBullmqMs: number;
  timesRawBullmq: number;
  /** Redis commands per image over the batch (median over runs). */
  redisCallsPerImage: number;
  /** Every run's own figure, to show the spread. */
  oursByRun: number[];
  /** Rows of several workers: the anchor at the same pace in as many processes, and ours − it. */
  pacedAnchorMs?: number | undefined;
  overPacedMs?: number | undefined;
}

export const median = (values: number[]): number => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** rendermill's rows beside the anchors of the same run, medians over runs. */
export function figures(runs: Run[], concurrency: number): FigureRow[] {
  const keys = new Map<string, RendermillRowResult>();
  for (const run of runs)
    for (const row of run.rendermill)
      keys.set(`${row.size}|${row.answer}|${row.cache}|${row.workers}`, row);
  return [...keys.values()].map(({ size, answer, cache, workers }) => {
    const perRun = runs.flatMap((run) => {
      const ours = run.rendermill.find(
        (r) => r.size === size && r.answer === answer && r.cache === cache && r.workers === workers,
      );
      if (!ours) return [];
      const sdkAt = (c: number) =>
        run.sdk.find((s) => s.size === size && s.answer === answer && s.concurrency === c)
          ?.cpuMsPerImage ?? NaN;
      return [
        {
          ours: ours.cpuMsPerImage,
          sequential: sdkAt(1),
          concurrent: sdkAt(concurrency),
          raw: run.rawBullmq.cpuMsPerJob,
          redis: ours.redisCallsPerImage ?? NaN,
          paced: workers > 1 ? (run.paced?.cpuMsPerImage ?? NaN) : NaN,
        },
      ];
    });
    return {
      size,
      answer,
      cache,
      workers,
      oursMs: median(perRun.map((r) => r.ours)),
      sdkSequentialMs: median(perRun.map((r) => r.sequential)),
      sdkConcurrentMs: median(perRun.map((r) => r.concurrent)),
      overSdkMs: median(perRun.map((r) => r.ours - r.concurrent)),
      timesSdk: median(perRun.map((r) => r.ours / r.concurrent)),
      rawBullmqMs: median(perRun.map((r) => r.raw)),
      timesRawBullmq: median(perRun.map((r) => r.ours / r.raw)),
      redisCallsPerImage: median(perRun.map((r) => r.redis)),
      oursByRun: perRun.map((r) => Math.round(r.ours * 100) / 100),
      ...(workers > 1 && {
        pacedAnchorMs: median(perRun.map((r) => r.paced)),
        overPacedMs: median(perRun.map((r) => r.ours - r.paced)),
      }),
    };
  });
}
