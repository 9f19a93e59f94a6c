import cliProgress from 'cli-progress';
import type { BatchRecord } from '../contracts/batch-records.js';
import { TERMINAL_STATUSES } from '../contracts/item-status.js';
import { microsToUsd } from '../models/pricing.js';
import type { ProviderBatchSummary } from '../batches/batch-view.js';

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
  /** Where its provider batches stand (provider_batch mode): their phase and line counts. */
  providerBatch?: ProviderBatchSummary | null | undefined;
}

/**
 * `provider batch in_progress 312/1000`: lines the provider has answered of those sent. Items
 * wait for hours in a provider batch while the item counts stand still; this is what moves.
 */
export function providerBatchLabel(summary: ProviderBatchSummary | null | undefined): string {
  if (!summary) return '';
  const counted =
    summary.lines > 0 ? ` ${summary.completed + summary.failed}/${summary.lines}` : '';
  return `provider batch ${summary.status}${counted}`;
}

/** A batch record of the store as a {@link ProgressSnapshot}. */
export function recordSnapshot(
  batch: BatchRecord,
  providerBatch?: ProviderBatchSummary | null,
): ProgressSnapshot {
  return {
    providerBatch,
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
    /** The provider batch's phase, ending in a separator, or nothing for a realtime batch. */
    stage: snapshot.providerBatch ? `${providerBatchLabel(snapshot.providerBatch)} | ` : '',
  };
}

export interface ProgressDisplay<T = ProgressSnapshot> {
  update(snapshot: T): void;
  stop(): void;
}

/**
 * A live progress bar on a terminal; on anything else (CI logs, pipes) one line every few
 * seconds, so logs stay readable.
 */
export function createSnapshotDisplay(
  stream: NodeJS.WriteStream,
  startedAt: number,
): ProgressDisplay {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          ' {stage}{bar} {done}/{total} | cached {cached} | failed {failed} | spend {spend} of {budget} | {rate} img/s | ETA {etaText}',
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
  let lastShown = '';
  return {
    update(snapshot) {
      const f = progressFields(snapshot, startedAt);
      const finished = f.done === f.total;
      // A provider batch's lines move while its items stand still: either is news.
      const shown = `${f.done} ${f.stage}`;
      if ((Date.now() - lastPrinted < 2000 && !finished) || shown === lastShown) return;
      lastPrinted = Date.now();
      lastShown = shown;
      stream.write(
        `  ${f.stage}${f.done}/${f.total} done | cached ${f.cached} | failed ${f.failed} | spend ${f.spend} of ${f.budget} | ${f.rate} img/s | ETA ${f.etaText}\n`,
      );
    },
    stop: () => undefined,
  };
}
