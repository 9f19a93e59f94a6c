import { csvCell } from '../catalog/csv-cell.js';
import { microsToUsd } from '../models/pricing.js';
import type { BatchRecord, ItemRecord, ItemWarning } from '../contracts/batch-records.js';
import { batchEnded } from '../contracts/item-status.js';
import {
  partEnded,
  type PartStatus,
  type ProviderBatchPart,
  type ProviderBatchStore,
} from './provider-batch-store.js';

/** Where a provider_batch batch's parts stand, as read from the provider batch store. */
export interface ProviderBatchProgress {
  parts: ProviderBatchPart[];
  /** Items enrolled and waiting for the next part. */
  waiting: number;
}

/** Reads a batch's provider batch progress; nothing for a realtime batch. */
export async function providerBatchProgress(
  store: ProviderBatchStore,
  batch: BatchRecord,
): Promise<ProviderBatchProgress | undefined> {
  if (batch.mode !== 'provider_batch') return undefined;
  const [parts, waiting] = await Promise.all([store.parts(batch.id), store.waitingCount(batch.id)]);
  return { parts, waiting };
}

/**
 * Where a provider batch as a whole stands: a part's own status, `gathering` while items wait
 * for a part, and `storing` once the provider has ended a part whose results are not stored yet
 * — the summary reads the phase a person waits on, the parts keep the provider's word.
 */
export type ProviderBatchPhase =
  'gathering' | Exclude<PartStatus, 'completed' | 'failed' | 'expired' | 'cancelled'> | 'storing';

/** Phases in the order a part passes them: the summary shows the least advanced. */
const PHASE_ORDER: readonly ProviderBatchPhase[] = [
  'gathering',
  'submitting',
  'waiting_for_room',
  'validating',
  'in_progress',
  'finalizing',
  'cancelling',
  'storing',
  'stored',
];

const phaseOf = (part: ProviderBatchPart): ProviderBatchPhase =>
  partEnded(part) ? 'storing' : (part.status as ProviderBatchPhase);

const isoOrNull = (ms: number | undefined) =>
  ms === undefined ? null : new Date(ms).toISOString();

/** One provider batch of a batch, as the API shows it: its phase, counts and times (ISO). */
export function providerBatchPartView(part: ProviderBatchPart) {
  const t = part.times;
  const endedAt = [t.completed, t.failed, t.expired, t.cancelled].filter(
    (at): at is number => at !== undefined,
  );
  return {
    part: part.part,
    route: part.route,
    model: part.model,
    provider_batch_id: part.batch_id ?? null,
    status: part.status,
    lines: part.lines,
    completed: part.counts.completed,
    failed: part.counts.failed,
    // The provider's own time when it has one: its phases are in its clock, to the second.
    submitted_at: isoOrNull(t.created ?? t.submitted),
    in_progress_at: isoOrNull(t.in_progress),
    finalizing_at: isoOrNull(t.finalizing),
    ended_at: isoOrNull(endedAt.length > 0 ? Math.min(...endedAt) : undefined),
    stored_at: isoOrNull(t.stored),
    error: part.error ?? null,
  };
}

export type ProviderBatchPartView = ReturnType<typeof providerBatchPartView>;

/** The provider batches of a batch together: the least advanced phase, lines and counts summed. */
export interface ProviderBatchSummary {
  status: ProviderBatchPhase;
  lines: number;
  completed: number;
  failed: number;
}

/**
 * The summary of a batch's parts, or null when there is nothing to follow: no part, no item
 * waiting for one, and the batch ended (every item came from the cache, or it was cancelled).
 */
export function providerBatchSummary(
  batch: BatchRecord,
  progress: ProviderBatchProgress,
): ProviderBatchSummary | null {
  const { parts, waiting } = progress;
  if (parts.length === 0 && waiting === 0 && batchEnded(batch.status)) return null;
  // Items not yet in a part (still enrolling, or waiting) are the batch's first phase.
  const phases = parts.map(phaseOf);
  if (waiting > 0 || parts.length === 0) phases.push('gathering');
  const status = phases.reduce((least, phase) =>
    PHASE_ORDER.indexOf(phase) < PHASE_ORDER.indexOf(least) ? phase : least,
  );
  return {
    status,
    lines: parts.reduce((sum, part) => sum + part.lines, 0),
    completed: parts.reduce((sum, part) => sum + part.counts.completed, 0),
    failed: parts.reduce((sum, part) => sum + part.counts.failed, 0),
  };
}

/**
 * A batch as the API and manifests show it: money in USD, counts by item status, its mode and,
 * given its provider batch progress, the provider batches that render it.
 */
export function batchView(batch: BatchRecord, progress?: ProviderBatchProgress) {
  return {
    id: batch.id,
    status: batch.status,
    created_at: batch.created_at,
    completed_at: batch.completed_at ?? null,
    counts: { total: batch.total, ...batch.counts },
    spend_usd: microsToUsd(batch.spent_micros),
    reserved_usd: microsToUsd(batch.reserved_micros),
    budget_usd: batch.budget_micros === undefined ? null : microsToUsd(batch.budget_micros),
    /** What the result cache saved: the price its reused images were bought at. */
    saved_usd: microsToUsd(batch.saved_micros),
    manifest_key: batch.manifest_key ?? null,
    metadata: batch.metadata,
    webhook_url: batch.webhook_url ?? null,
    schedule_id: batch.schedule_id ?? null,
    routing: batch.routing ?? null,
    mode: batch.mode ?? 'realtime',
    ...(batch.mode_requested === undefined ? {} : { mode_requested: batch.mode_requested }),
    ...(batch.complete_by === undefined ? {} : { complete_by: batch.complete_by }),
    ...(batch.on_expiry === undefined ? {} : { on_expiry: batch.on_expiry }),
    ...(progress === undefined
      ? {}
      : {
          provider_batch: providerBatchSummary(batch, progress),
          provider_batches: progress.parts.map(providerBatchPartView),
        }),
  };
}

export type BatchView = ReturnType<typeof batchView>;

export interface ManifestItem {
  id: string;
  status: ItemRecord['status'];
  operation: string;
  /** The model that rendered it; `requested_model` differs when a fallback used its own. */
  model: string;
  requested_model: string;
  /** The route that rendered it: its name in the providers file, or `primary` / a fallback's. */
  provider: string | null;
  /** The same route's name, under the name the providers file gives it. */
  route: string | null;
  /** The provider's batch id, when its Batch API rendered the images (`provider_batch` mode). */
  provider_batch: string | null;
  /** The provider's own id for the model on that route (Replicate's `owner/name` …). */
  provider_model: string | null;
  size: string;
  n: number;
  prompt: string | null;
  hash: string | null;
  cost_usd: number;
  /** What reusing cached images saved this item. */
  saved_usd: number;
  images: ManifestImage[];
  error: { code: string; message: string } | null;
  /** What was asked and what was done instead (a fitted size, a converted format, n in calls). */
  warnings: ItemWarning[];
}

export interface ManifestImage {
  key: string;
  url: string;
  /** Reused from the result cache rather than bought for this item. */
  cached: boolean;
  bytes: number;
  /** Smaller copies asked by the batch (`derive`), by name: `128px.webp`. */
  derived: { name: string; key: string; url: string }[];
}

/** The batch's money and images in one place: what a user checks first. */
export interface ManifestTotals {
  items: number;
  images: number;
  /** Images reused from the cache: no provider call. */
  images_cached: number;
  derived_images: number;
  items_failed: number;
  items_budget_exceeded: number;
  spend_usd: number;
  budget_usd: number | null;
  /** Left of the budget; null without one. */
  budget_left_usd: number | null;
  saved_by_cache_usd: number;
}

export interface Manifest {
  batch: BatchView;
  totals: ManifestTotals;
  /** Whether the batch was still running when this was written (a checkpoint). */
  partial: boolean;
  written_at: string;
  items: ManifestItem[];
}

/**
 * What happened to every item of a batch and what it cost. `urlFor` decides what an image's
 * URL is: a presigned link for an API response, a stable s3:// URI in the stored manifest.
 * `progress` (a provider_batch batch's parts) puts its provider batches in the batch section.
 */
export async function buildManifest(
  batch: BatchRecord,
  items: ItemRecord[],
  urlFor: (key: string) => Promise<string> | string,
  progress?: ProviderBatchProgress,
): Promise<Manifest> {
  const manifestItems: ManifestItem[] = [];
  for (const item of items) {
    manifestItems.push({
      id: item.id,
      status: item.status,
      operation: item.spec.operation,
      model: item.rendered_by?.model ?? item.spec.model,
      requested_model: item.spec.model,
      provider: item.rendered_by?.provider ?? null,
      route: item.rendered_by?.provider ?? null,
      provider_batch: item.rendered_by?.provider_batch ?? null,
      provider_model: item.rendered_by
        ? (item.rendered_by.remote_model ?? item.rendered_by.model)
        : null,
      size: item.spec.size,
      n: item.spec.n,
      prompt: item.spec.prompt ?? null,
      hash: item.hash,
      cost_usd: microsToUsd(item.cost_micros),
      saved_usd: microsToUsd(item.saved_micros ?? 0),
      images: await Promise.all(
        item.images.map(async (image) => ({
          key: image.key,
          url: await urlFor(image.key),
          cached: image.cached ?? false,
          bytes: image.bytes,
          derived: await Promise.all(
            (image.derived ?? []).map(async (copy) => ({
              name: copy.name,
              key: copy.key,
              url: await urlFor(copy.key),
            })),
          ),
        })),
      ),
      error: item.error ?? null,
      warnings: item.warnings ?? [],
    });
  }
  const view = batchView(batch, progress);
  const images = manifestItems.flatMap((item) => item.images);
  return {
    batch: view,
    totals: {
      items: batch.total,
      images: images.length,
      images_cached: images.filter((image) => image.cached).length,
      derived_images: images.reduce((sum, image) => sum + image.derived.length, 0),
      items_failed: batch.counts.failed,
      items_budget_exceeded: batch.counts.budget_exceeded,
      spend_usd: view.spend_usd,
      budget_usd: view.budget_usd,
      budget_left_usd:
        batch.budget_micros === undefined
          ? null
          : microsToUsd(batch.budget_micros - batch.spent_micros),
      saved_by_cache_usd: view.saved_usd,
    },
    partial: batch.status !== 'completed' && batch.status !== 'cancelled',
    written_at: new Date().toISOString(),
    items: manifestItems,
  };
}

const CSV_COLUMNS = [
  'id',
  'status',
  'model',
  'provider',
  'provider_model',
  'provider_batch',
  'size',
  'n',
  'cost_usd',
  'saved_usd',
  'cached_images',
  'image_keys',
  'derived_keys',
  'error_code',
  'error_message',
  'warnings',
  'hash',
  'prompt',
];

/**
 * The manifest as CSV, one row per item, for spreadsheets: every cell goes through `csvCell`,
 * so an id or prompt written as a formula shows as text.
 */
export function manifestCsv(manifest: Manifest): string {
  const rows = manifest.items.map((item) =>
    [
      item.id,
      item.status,
      item.model,
      item.provider ?? '',
      item.provider_model ?? '',
      item.provider_batch ?? '',
      item.size,
      item.n,
      item.cost_usd,
      item.saved_usd,
      item.images.filter((i) => i.cached).length,
      item.images.map((i) => i.key).join(' '),
      item.images.flatMap((i) => i.derived.map((d) => d.key)).join(' '),
      item.error?.code ?? '',
      item.error?.message ?? '',
      item.warnings.map((w) => w.message).join('; '),
      item.hash ?? '',
      item.prompt ?? '',
    ]
      .map(csvCell)
      .join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}

/**
 * The manifest as JSON Lines: a first line with the batch and its totals, then one line per
 * item — for tools that stream it rather than load a 100,000-item document.
 */
export function manifestJsonl(manifest: Manifest): string {
  const { items, ...head } = manifest;
  return (
    [
      JSON.stringify({ type: 'batch', ...head }),
      ...items.map((item) => JSON.stringify({ type: 'item', ...item })),
    ].join('\n') + '\n'
  );
}
