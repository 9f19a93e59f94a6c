import cliProgress from 'cli-progress';
import type { BatchRecord } from '../batches/batch-store.js';
import { TERMINAL_STATUSES } from '../batches/item-status.js';
import { microsToUsd } from '../models/pricing.js';

export const formatUsd = (micros: number) => `$${microsToUsd(micros).toFixed(4)}`;

/** Counts of a batch as a person reads them. */
export function progressFields(batch: BatchRecord, startedAt: number) {
  const done = TERMINAL_STATUSES.reduce((sum, s) => sum + batch.counts[s], 0);
  const seconds = (Date.now() - startedAt) / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  return {
    done,
    total: batch.total,
    cached: batch.counts.cached,
    failed: batch.counts.failed + batch.counts.budget_exceeded,
    spend: formatUsd(batch.spent_micros),
    budget: batch.budget_micros === undefined ? 'no budget' : formatUsd(batch.budget_micros),
    rate: rate.toFixed(1),
    etaText: rate > 0 && done < batch.total ? `${Math.ceil((batch.total - done) / rate)}s` : '-',
  };
}

export interface ProgressDisplay {
  update(batch: BatchRecord): void;
  stop(): void;
}

/**
 * A live progress bar on a terminal; on anything else (CI logs, pipes) one line every few
 * seconds, so logs stay readable.
 */
export function createProgressDisplay(
  stream: NodeJS.WriteStream,
  startedAt: number,
): ProgressDisplay {
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
      update(batch) {
        const fields = progressFields(batch, startedAt);
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
    update(batch) {
      const f = progressFields(batch, startedAt);
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
