import type { BatchView } from '../../batches/batch-view.js';

/**
 * What the API answers, as the client reads it. Batch views and manifests are the API's own
 * types (src/batches); the rest is written here from the API's contract.
 */
export type { BatchView, Manifest } from '../../batches/batch-view.js';

/** A catalog row the API left out of a batch submitted with `on_invalid=skip`. */
export interface RejectedRow {
  line?: number;
  field?: string | null;
  message: string;
}

/** `POST /v1/batches` → 202: the batch, and with `on_invalid=skip` the rows left out. */
export type SubmitAnswer = BatchView & { rejected?: { count: number; rows: RejectedRow[] } };

/** `POST /v1/batches/estimate`: the price, the cache's answer and how long it would take. */
export interface EstimateAnswer {
  items: number;
  /** Items the cache already holds entirely: $0, no provider call. */
  items_cached: number;
  items_to_render: number;
  images_to_render: number;
  /** The most it can cost. */
  max_usd: number;
  /** What it usually costs. */
  typical_usd: number;
  /** What the cached items' images were bought at. */
  saved_usd: number;
  budget_usd: number | null;
  fits_budget: boolean | null;
  /** At the account's images-per-minute limit, with nothing else queued. */
  eta_seconds?: number | null;
  images_per_minute?: number | null;
  /** With `on_invalid=skip`: the rows that would be left out. */
  rejected?: { count: number; rows: RejectedRow[] };
}

/** `GET /v1/batches`: newest first, one page. */
export interface BatchPage {
  data: BatchView[];
  next_cursor: string | null;
}

/** The body of `POST /v1/schedules`. */
export interface ScheduleRequest {
  name?: string;
  cron?: string;
  timezone?: string;
  template?: string;
  variables?: Record<string, string>;
  items?: unknown[];
  variations?: number;
  model?: string;
  size?: string;
  quality?: string;
  n?: number;
  budget_usd?: number;
  end_date?: string;
  webhook_url?: string;
  metadata?: Record<string, string>;
  [field: string]: unknown;
}

/** A schedule as the API shows it. */
export interface ScheduleView extends ScheduleRequest {
  id: string;
  /** The next few times it runs, ISO 8601. */
  next_runs: string[];
}

/** `GET /v1/schedules`. */
export interface ScheduleList {
  data: ScheduleView[];
}
