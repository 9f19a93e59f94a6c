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

export const BATCH_STATUSES = ['queued', 'running', 'completed', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
