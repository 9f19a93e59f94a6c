import { formatDollars } from '../progress.js';
import type { ApiClient } from './api-client.js';
import type { EstimateAnswer, SubmitAnswer } from './api-types.js';
import { exitCodeOf, printSummary } from './batch-summary.js';
import { ApiError } from './client-errors.js';
import { batchUpload, type BatchOptions } from './batch-upload.js';
import { CLIENT_EXIT } from './exit-codes.js';
import { note, printJson, say } from './output.js';
import { waitForBatch } from './wait-for-batch.js';

export interface SubmitOptions extends BatchOptions {
  /** Follow the batch to its end, with a progress bar, and exit by its outcome. */
  wait?: boolean;
  /** Print the API's JSON answer (with --wait: the finished batch) instead of text. */
  json?: boolean;
}

/**
 * Largest batch whose manifest `submit --wait` fetches for its summary (failures, first
 * items); a larger one's summary shows the counts, and `rendermill manifest` the rest.
 */
const SUMMARY_MANIFEST_MAX_ITEMS = 10_000;

/** Rejected rows listed by `submit --on-invalid skip`; --json lists them all. */
const REJECTED_SHOWN = 5;

/**
 * `rendermill submit <file>`: uploads a catalog (or a JSON batch request) and prints the new
 * batch's id on stdout — alone, so that `id=$(rendermill submit …)` works — with what the API
 * said about it on stderr. `--wait` follows it to its end.
 */
export async function submitCommand(
  client: ApiClient,
  file: string,
  options: SubmitOptions,
): Promise<number> {
  const upload = await batchUpload(file, options);
  const startedAt = Date.now();
  const submitted = await client.submitBatch(upload).catch(skipHint(options));
  if (!options.json) {
    say(submitted.id);
    describeSubmission(submitted);
  } else if (!options.wait) {
    printJson(submitted);
  }
  if (!options.wait) return CLIENT_EXIT.ok;

  const finished = await waitForBatch(client, submitted, { startedAt });
  if (options.json) {
    printJson(submitted.rejected ? { ...finished, rejected: submitted.rejected } : finished);
  } else {
    const manifest =
      finished.counts.total <= SUMMARY_MANIFEST_MAX_ITEMS
        ? await client.getManifest(finished.id)
        : undefined;
    printSummary(finished, (Date.now() - startedAt) / 1000, manifest);
  }
  return exitCodeOf(finished);
}

/** A catalog refused for its bad rows could go in without them: say how. */
const skipHint =
  (options: BatchOptions) =>
  (error: unknown): never => {
    if (
      error instanceof ApiError &&
      error.code === 'invalid_rows' &&
      options.onInvalid !== 'skip'
    ) {
      throw error.withHint('--on-invalid skip queues the valid rows');
    }
    throw error;
  };

function describeSubmission(batch: SubmitAnswer): void {
  const c = batch.counts;
  const cached = c.cached > 0 ? ` · ${c.cached} already in the cache` : '';
  note(`  ${c.total} items ${batch.status}${cached}`);
  describeRejected(batch.rejected, note);
}

/** The rows `--on-invalid skip` left out, the first few by line. */
function describeRejected(rejected: SubmitAnswer['rejected'], write: (line: string) => void) {
  if (!rejected || rejected.count === 0) return;
  write(`  ${rejected.count} invalid row(s) skipped:`);
  for (const row of rejected.rows.slice(0, REJECTED_SHOWN)) {
    const where = row.line === undefined ? '' : `line ${row.line}: `;
    write(`    ${where}${row.field ? `${row.field}: ` : ''}${row.message}`);
  }
  if (rejected.count > REJECTED_SHOWN) {
    write(`    … and ${rejected.count - REJECTED_SHOWN} more (--json lists them)`);
  }
}

/** `rendermill estimate <file>`: the price of a batch, with the cache's answer, before submitting. */
export async function estimateCommand(
  client: ApiClient,
  file: string,
  options: BatchOptions & { json?: boolean },
): Promise<number> {
  const estimate = await client
    .estimateBatch(await batchUpload(file, options))
    .catch(skipHint(options));
  if (options.json) printJson(estimate);
  else printEstimate(estimate);
  return CLIENT_EXIT.ok;
}

function printEstimate(e: EstimateAnswer): void {
  say(
    `Estimate: ${e.items} items · ${e.items_cached} cached · ${e.items_to_render} to render (${e.images_to_render} images)`,
  );
  const batchPrice = e.mode === 'provider_batch' ? ' (the Batch API’s price)' : '';
  say(
    `  price     up to ${formatDollars(e.max_usd)} · typically ${formatDollars(e.typical_usd)}${batchPrice}`,
  );
  // Absent from servers older than the mode.
  if (e.mode) say(`  mode      ${e.mode}${e.mode_requested ? ` (${e.mode_requested})` : ''}`);
  if (e.saved_usd > 0) say(`  cache     ${formatDollars(e.saved_usd)} saved`);
  if (e.budget_usd !== null) {
    say(
      `  budget    ${formatDollars(e.budget_usd)}: ${e.fits_budget ? 'fits' : `may not fit — items past it end budget_exceeded (the most it can cost is ${formatDollars(e.max_usd)})`}`,
    );
  }
  if (e.mode === 'provider_batch') {
    if (e.eta_seconds)
      say(`  time      within ${formatSeconds(e.eta_seconds)}: the provider batch’s window`);
  } else if (e.eta_seconds !== undefined && e.eta_seconds !== null) {
    const rate = e.images_per_minute ? ` at ${e.images_per_minute} images/min` : '';
    say(`  time      ~${formatSeconds(e.eta_seconds)}${rate}`);
  }
  // The plan per route, as the batch's routing would share it.
  if (e.routes?.length) say(`  routing   ${e.routing}`);
  for (const r of e.routes ?? []) {
    const inBatch = e.mode === 'provider_batch';
    const limit = inBatch
      ? 'Batch API'
      : r.images_per_minute === null
        ? 'no limit known'
        : `${r.images_per_minute}/min`;
    const time = r.eta_seconds === null || inBatch ? '' : ` · ~${formatSeconds(r.eta_seconds)}`;
    say(
      `    ${r.route}  ${r.model}: ${r.images} images · up to ${formatDollars(r.max_usd)} · ${limit}${time}`,
    );
  }
  describeRejected(e.rejected, say);
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)} s`;
  if (seconds < 5400) return `${Math.ceil(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
