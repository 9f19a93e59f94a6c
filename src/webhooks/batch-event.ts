import type { BatchRecord } from '../contracts/batch-records.js';
import { batchView } from '../batches/batch-view.js';

/** The events a batch's `webhook_url` receives, one per batch, when the batch ends. */
export const BATCH_EVENT_TYPES = [
  'batch.completed',
  'batch.budget_exhausted',
  'batch.failed',
  'batch.cancelled',
] as const;
export type BatchEventType = (typeof BATCH_EVENT_TYPES)[number];

/** What is POSTed: the batch as the API shows it (no item list: the manifest has that). */
export interface BatchEvent {
  /** `evt_<batch id>`: the same on every attempt, so a receiver can drop a repeat. */
  id: string;
  type: BatchEventType;
  /** When the batch ended (ISO 8601). */
  timestamp: string;
  data: ReturnType<typeof batchView>;
}

/**
 * The event an ended batch sends, or undefined while it runs. In order: `cancelled` if it was
 * cancelled; `budget_exhausted` if any item hit a budget; `failed` if no item rendered or came
 * from the cache; else `completed`.
 */
export function batchEventType(batch: BatchRecord): BatchEventType | undefined {
  if (batch.status === 'cancelled') return 'batch.cancelled';
  if (batch.status !== 'completed') return undefined;
  if (batch.counts.budget_exceeded > 0) return 'batch.budget_exhausted';
  if (batch.counts.succeeded + batch.counts.cached === 0) return 'batch.failed';
  return 'batch.completed';
}

/** The event id of a batch: one event per batch, so the batch id makes it unique and stable. */
export const batchEventId = (batchId: string) => `evt_${batchId}`;

/** The event for an ended batch, or undefined while it runs. */
export function batchEvent(batch: BatchRecord, now = new Date()): BatchEvent | undefined {
  const type = batchEventType(batch);
  if (!type) return undefined;
  return {
    id: batchEventId(batch.id),
    type,
    timestamp: batch.completed_at ?? now.toISOString(),
    data: batchView(batch),
  };
}
