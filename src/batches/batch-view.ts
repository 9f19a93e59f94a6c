import { microsToUsd } from '../models/pricing.js';
import type { BatchRecord, ItemRecord } from './batch-store.js';

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
    manifest_key: batch.manifest_key ?? null,
    metadata: batch.metadata,
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
  /** The provider account that rendered it: `primary` or a fallback's name. */
  provider: string | null;
  size: string;
  n: number;
  prompt: string | null;
  hash: string;
  cost_usd: number;
  images: { key: string; url: string }[];
  error: { code: string; message: string } | null;
}

export interface Manifest {
  batch: BatchView;
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
      size: item.spec.size,
      n: item.spec.n,
      prompt: item.spec.prompt ?? null,
      hash: item.hash,
      cost_usd: microsToUsd(item.cost_micros),
      images: await Promise.all(
        item.images.map(async (image) => ({ key: image.key, url: await urlFor(image.key) })),
      ),
      error: item.error ?? null,
    });
  }
  return { batch: batchView(batch), items: manifestItems };
}

const CSV_COLUMNS = [
  'id',
  'status',
  'model',
  'provider',
  'size',
  'n',
  'cost_usd',
  'image_keys',
  'error_code',
  'error_message',
  'hash',
  'prompt',
];

function csvCell(value: string | number): string {
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The manifest as CSV, one row per item, for spreadsheets. */
export function manifestCsv(manifest: Manifest): string {
  const rows = manifest.items.map((item) =>
    [
      item.id,
      item.status,
      item.model,
      item.provider ?? '',
      item.size,
      item.n,
      item.cost_usd,
      item.images.map((i) => i.key).join(' '),
      item.error?.code ?? '',
      item.error?.message ?? '',
      item.hash,
      item.prompt ?? '',
    ]
      .map(csvCell)
      .join(','),
  );
  return [CSV_COLUMNS.join(','), ...rows].join('\n') + '\n';
}
