import { csvCell } from '../catalog/csv-cell.js';
import { microsToUsd } from '../models/pricing.js';
import type { BatchRecord, ItemRecord, ItemWarning } from '../contracts/batch-records.js';

/** A batch as the API and manifests show it: money in USD, counts by item status. */
export function batchView(batch: BatchRecord) {
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
 */
export async function buildManifest(
  batch: BatchRecord,
  items: ItemRecord[],
  urlFor: (key: string) => Promise<string> | string,
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
  const view = batchView(batch);
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
