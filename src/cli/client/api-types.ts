import type { BatchView } from '../../batches/batch-view.js';
import type { BatchEstimate } from '../../batches/estimate-batch.js';

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
export type EstimateAnswer = BatchEstimate;

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
  /** Where the next page starts; null on the last page (absent from servers before paging). */
  next_cursor?: string | null;
}
