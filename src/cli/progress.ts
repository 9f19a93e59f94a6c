import cliProgress from 'cli-progress';
import type { BatchRecord } from '../contracts/batch-records.js';
import { TERMINAL_STATUSES } from '../contracts/item-status.js';
import { microsToUsd } from '../models/pricing.js';

export const formatUsd = (micros: number) => `$${microsToUsd(micros).toFixed(4)}`;
export const formatDollars = (usd: number) => `$${usd.toFixed(4)}`;

/**
 * Where a batch stands, whichever way it was read: from the store (`rendermill render`) or from
 * the API's batch view (`rendermill submit --wait`).
 */
export interface ProgressSnapshot {
  /** Items whose outcome is final. */
  done: number;
  total: number;
  cached: number;
  /** Failed or over budget. */
  failed: number;
  spendUsd: number;
  budgetUsd: number | null;
}

/** A batch record of the store as a {@link ProgressSnapshot}. */
export function recordSnapshot(batch: BatchRecord): ProgressSnapshot {
  return {
    done: TERMINAL_STATUSES.reduce((sum, s) => sum + batch.counts[s], 0),
    total: batch.total,
    cached: batch.counts.cached,
    failed: batch.counts.failed + batch.counts.budget_exceeded,
    spendUsd: microsToUsd(batch.spent_micros),
    budgetUsd: batch.budget_micros === undefined ? null : microsToUsd(batch.budget_micros),
  };
}

/** Counts of a batch as a person reads them. */
export function progressFields(snapshot: ProgressSnapshot, startedAt: number) {
  const { done, total } = snapshot;
  const seconds = (Date.now() - startedAt) / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  return {
    done,
    total,
    cached: snapshot.cached,
    failed: snapshot.failed,
    spend: formatDollars(snapshot.spendUsd),
    budget: snapshot.budgetUsd === null ? 'no budget' : formatDollars(snapshot.budgetUsd),
    rate: rate.toFixed(1),
    etaText: rate > 0 && done < total ? `${Math.ceil((total - done) / rate)}s` : '-',
  };
}

export interface ProgressDisplay<T = BatchRecord> {
  update(batch: T): void;
  stop(): void;
}

/** The progress of a batch record of the store (`rendermill render`). */
export function createProgressDisplay(
  stream: NodeJS.WriteStream,
  startedAt: number,
): ProgressDisplay {
  const display = createSnapshotDisplay(stream, startedAt);
  return { update: (batch) => display.update(recordSnapshot(batch)), stop: () => display.stop() };
}

/**
 * A live progress bar on a terminal; on anything else (CI logs, pipes) one line every few
 * seconds, so logs stay readable.
 */
export function createSnapshotDisplay(
  stream: NodeJS.WriteStream,
  startedAt: number,
): ProgressDisplay<ProgressSnapshot> {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          ' {bar} {done}/{total} | cached {cached} | failed {failed} | spend {spend} of {budget} | {rate} img/s | ETA {etaText}',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(snapshot) {
        const fields = progressFields(snapshot, startedAt);
        if (!started) {
          bar.start(fields.total, fields.done, fields);
          started = true;
        }
        bar.update(fields.done, fields);
      },
      stop: () => bar.stop(),
    };
  }
  let lastPrinted = 0;
  let lastDone = -1;
  return {
    update(snapshot) {
      const f = progressFields(snapshot, startedAt);
      const finished = f.done === f.total;
      if ((Date.now() - lastPrinted < 2000 && !finished) || f.done === lastDone) return;
      lastPrinted = Date.now();
      lastDone = f.done;
      stream.write(
        `  ${f.done}/${f.total} done | cached ${f.cached} | failed ${f.failed} | spend ${f.spend} of ${f.budget} | ${f.rate} img/s | ETA ${f.etaText}\n`,
      );
    },
    stop: () => undefined,
  };
}
