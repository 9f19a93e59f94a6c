/** Every state an item of a batch can be in. */
export const ITEM_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'cached',
  'failed',
  'budget_exceeded',
  'cancelled',
] as const;
export type ItemStatus = (typeof ITEM_STATUSES)[number];

/** States an item never leaves: the item's outcome is final. */
export const TERMINAL_STATUSES: readonly ItemStatus[] = [
  'succeeded',
  'cached',
  'failed',
  'budget_exceeded',
  'cancelled',
];

/**
 * `cancelling`: cancel was asked; queued items became `cancelled`, items already rendering
 * finish. It becomes `cancelled` when they have. `completed` and `cancelled` are final.
 */
export const BATCH_STATUSES = [
  'queued',
  'running',
  'completed',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** Whether a batch has ended: every item is final and its manifest is (or is due to be) written. */
export const batchEnded = (status: BatchStatus) => status === 'completed' || status === 'cancelled';
