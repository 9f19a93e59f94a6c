/** The files a batch's manifest is written as, side by side in the bucket, and their types. */
export const MANIFEST_FORMATS = {
  json: 'application/json',
  csv: 'text/csv',
  jsonl: 'application/x-ndjson',
} as const;
export type ManifestFormat = keyof typeof MANIFEST_FORMATS;

export const manifestKey = (batchId: string, ext: ManifestFormat) =>
  `batches/${batchId}/manifest.${ext}`;
