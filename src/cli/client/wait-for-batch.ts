import { createSnapshotDisplay, type ProgressSnapshot } from '../progress.js';
import type { ApiClient } from './api-client.js';
import type { BatchView } from './api-types.js';
import { FINISHED_BATCH_STATUSES, itemsDone } from './batch-summary.js';
import { ApiError, ApiUnreachableError } from './client-errors.js';
import { CLIENT_EXIT } from './exit-codes.js';
import { note } from './output.js';

/*
 * The client's waits are fixed, not configured: they shape how a terminal follows a batch, not
 * what the service does, and the batch carries on in the API whatever the client does.
 */
/** Between two looks at the batch: a progress bar that moves, one cheap GET a second. */
const POLL_MS = 1_000;
/** How long the API may stay out of reach (a restart, a network blip) before the wait gives up. */
const OUTAGE_TOLERANCE_MS = 60_000;
/** How long an ended batch's manifest (written by a job queued as the last item ends) is awaited. */
const MANIFEST_GRACE_MS = 5_000;

export interface WaitOptions {
  /** Between two looks at the batch. Default {@link POLL_MS}. */
  pollMs?: number;
  /**
   * How long the API may stay out of reach before the wait gives up; the batch itself is not
   * affected. Default {@link OUTAGE_TOLERANCE_MS}.
   */
  outageToleranceMs?: number;
  /** When the wait began, for the rate and ETA. Default now. */
  startedAt?: number;
  /**
   * How long to wait, once the batch has ended, for its manifest to be written to S3, so that
   * the summary can name it. Default {@link MANIFEST_GRACE_MS}.
   */
  manifestGraceMs?: number;
}

const snapshotOf = (batch: BatchView): ProgressSnapshot => ({
  done: itemsDone(batch),
  total: batch.counts.total,
  cached: batch.counts.cached,
  failed: batch.counts.failed + batch.counts.budget_exceeded,
  spendUsd: batch.spend_usd,
  budgetUsd: batch.budget_usd,
  providerBatch: batch.provider_batch,
});

/**
 * Polls `GET /v1/batches/:id` until the batch is completed or cancelled, showing its progress
 * on stderr. Ctrl-C stops watching, not the batch: it carries on in the API, and the process
 * exits 130 saying how to follow it.
 */
export async function waitForBatch(
  client: ApiClient,
  batch: BatchView,
  options: WaitOptions = {},
): Promise<BatchView> {
  const pollMs = options.pollMs ?? POLL_MS;
  const tolerance = options.outageToleranceMs ?? OUTAGE_TOLERANCE_MS;
  const manifestGrace = options.manifestGraceMs ?? MANIFEST_GRACE_MS;
  const progress = createSnapshotDisplay(process.stderr, options.startedAt ?? Date.now());
  const interrupted = () => {
    progress.stop();
    note('');
    note(
      `interrupted: batch ${batch.id} carries on in the API; follow it with \`rendermill status ${batch.id}\`, stop it with \`rendermill cancel ${batch.id}\``,
    );
    process.exit(CLIENT_EXIT.interrupted);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    let current = batch;
    let unreachableSince: number | undefined;
    let endedAt: number | undefined;
    for (;;) {
      progress.update(snapshotOf(current));
      if (FINISHED_BATCH_STATUSES.includes(current.status)) {
        endedAt ??= Date.now();
        if (current.manifest_key || Date.now() - endedAt >= manifestGrace) return current;
      }
      // Once the batch has ended, only its manifest is awaited: look again sooner.
      await new Promise((resolve) => setTimeout(resolve, endedAt === undefined ? pollMs : 200));
      try {
        current = await client.getBatch(batch.id);
        unreachableSince = undefined;
      } catch (error) {
        const passing =
          error instanceof ApiUnreachableError ||
          (error instanceof ApiError && error.status >= 500);
        unreachableSince ??= Date.now();
        if (!passing || Date.now() - unreachableSince > tolerance) throw error;
      }
    }
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    progress.stop();
  }
}
