import { formatDollars, providerBatchLabel } from '../progress.js';
import type { BatchView, Manifest } from './api-types.js';
import { CLIENT_EXIT, type ClientExitCode } from './exit-codes.js';
import { say, shortTime } from './output.js';

/** Statuses a batch never leaves. */
export const FINISHED_BATCH_STATUSES: readonly string[] = ['completed', 'cancelled'];

/** Items whose outcome is final. */
export function itemsDone(batch: BatchView): number {
  const c = batch.counts;
  return c.succeeded + c.cached + c.failed + c.budget_exceeded + c.cancelled;
}

/** What a finished batch means for a script: see exit-codes.ts. */
export function exitCodeOf(batch: BatchView): ClientExitCode {
  if (batch.status === 'cancelled') return CLIENT_EXIT.cancelled;
  return batch.counts.succeeded + batch.counts.cached === batch.counts.total
    ? CLIENT_EXIT.ok
    : CLIENT_EXIT.itemsFailed;
}

/** `47 rendered · 3 cached · 0 failed · 0 over budget` (and cancelled, when some were). */
export function itemCounts(batch: BatchView): string {
  const c = batch.counts;
  return [
    `${c.total} total`,
    `${c.succeeded} rendered`,
    `${c.cached} cached`,
    `${c.failed} failed`,
    `${c.budget_exceeded} over budget`,
    ...(c.cancelled > 0 ? [`${c.cancelled} cancelled`] : []),
  ].join(' · ');
}

/** `$0.0470 of $1.0000 budget · $0.0030 saved by the cache`. */
export function spendLine(batch: BatchView): string {
  const budget = batch.budget_usd === null ? '' : ` of ${formatDollars(batch.budget_usd)} budget`;
  const saved =
    batch.saved_usd > 0 ? ` · ${formatDollars(batch.saved_usd)} saved by the cache` : '';
  return `${formatDollars(batch.spend_usd)}${budget}${saved}`;
}

/** Provider batch ids named in a line; the view lists every one. */
const PROVIDER_BATCH_IDS_SHOWN = 5;

/**
 * `provider_batch (auto) · provider batches batch_a, batch_b`: how the batch is rendered and,
 * in provider_batch mode, the provider's ids to look the batches up by at the provider.
 */
export function modeLine(batch: BatchView): string {
  // Servers older than the mode say nothing of it: realtime.
  const mode = `${batch.mode ?? 'realtime'}${batch.mode_requested ? ` (${batch.mode_requested})` : ''}`;
  const ids = (batch.provider_batches ?? []).flatMap((part) =>
    part.provider_batch_id ? [part.provider_batch_id] : [],
  );
  if (ids.length === 0) return mode;
  const more =
    ids.length > PROVIDER_BATCH_IDS_SHOWN
      ? ` … and ${ids.length - PROVIDER_BATCH_IDS_SHOWN} more`
      : '';
  const label = ids.length === 1 ? 'provider batch' : 'provider batches';
  return `${mode} · ${label} ${ids.slice(0, PROVIDER_BATCH_IDS_SHOWN).join(', ')}${more}`;
}

/** Where a batch stands: `rendermill status`. */
export function printBatch(batch: BatchView): void {
  const c = batch.counts;
  say(`Batch ${batch.id} ${batch.status}`);
  say(`  created   ${shortTime(batch.created_at)}`);
  if (batch.completed_at) say(`  finished  ${shortTime(batch.completed_at)}`);
  const waiting = c.queued + c.running > 0 ? ` · ${c.queued} queued · ${c.running} running` : '';
  say(`  done      ${itemsDone(batch)}/${c.total}${waiting}`);
  say(`  items     ${itemCounts(batch)}`);
  say(`  mode      ${modeLine(batch)}`);
  if (batch.provider_batch) say(`  progress  ${providerBatchLabel(batch.provider_batch)}`);
  const reserved = batch.reserved_usd > 0 ? ` (${formatDollars(batch.reserved_usd)} reserved)` : '';
  say(`  spend     ${spendLine(batch)}${reserved}`);
  if (batch.manifest_key) say(`  manifest  ${batch.manifest_key}`);
  if (batch.schedule_id) say(`  schedule  ${batch.schedule_id}`);
  if (batch.webhook_url) say(`  webhook   ${batch.webhook_url}`);
}

/**
 * The end of `submit --wait`, like `rendermill render`'s summary. `manifest` lists failures
 * and the first items; without it (a batch too large to fetch whole) only the counts are shown.
 */
export function printSummary(batch: BatchView, seconds: number, manifest?: Manifest): void {
  say('');
  const images = manifest
    ? `: ${manifest.totals.images} images, ${(manifest.totals.images / Math.max(seconds, 0.001)).toFixed(1)} images/s`
    : '';
  say(`Batch ${batch.id} ${batch.status} in ${seconds.toFixed(1)} s${images}`);
  say(`  items     ${itemCounts(batch)}`);
  say(`  spend     ${spendLine(batch)}`);
  say(`  mode      ${modeLine(batch)}`);
  say(
    `  manifest  ${batch.manifest_key ? `${batch.manifest_key} · ` : ''}rendermill manifest ${batch.id} [--format csv] [--out file]`,
  );
  if (!manifest) return;
  // Cancelled items carry an error saying so; they are counted above, not failures.
  const failures = manifest.items.filter((item) => item.error && item.status !== 'cancelled');
  for (const item of failures.slice(0, 5)) {
    say(`  ✗ ${item.id}: ${item.error?.code} — ${item.error?.message}`);
  }
  if (failures.length > 5) say(`  … and ${failures.length - 5} more failures in the manifest`);
  if (manifest.items.length === 0) return;
  say('');
  say('  first items:');
  for (const item of manifest.items.slice(0, 3)) {
    say(`    ${item.id}  ${item.status}  $${item.cost_usd}  ${item.images[0]?.key ?? '-'}`);
  }
}
