import { describe, expect, it } from 'vitest';
import type { BatchRecord } from '../../src/contracts/batch-records.js';
import { ITEM_STATUSES, type ItemStatus } from '../../src/contracts/item-status.js';
import { batchEvent, batchEventType } from '../../src/webhooks/batch-event.js';

function batch(status: BatchRecord['status'], counts: Partial<Record<ItemStatus, number>>) {
  const all = Object.fromEntries(ITEM_STATUSES.map((s) => [s, counts[s] ?? 0]));
  return {
    id: 'batch_x',
    tenant: 'acme',
    status,
    created_at: '2026-11-02T09:00:00.000Z',
    completed_at:
      status === 'completed' || status === 'cancelled' ? '2026-11-02T09:05:00.000Z' : undefined,
    total: Object.values(all).reduce((a, b) => a + b, 0),
    counts: all,
    spent_micros: 16_000,
    reserved_micros: 0,
    saved_micros: 0,
    metadata: {},
    webhook_url: 'https://example.com/hook',
    manifest_key: 'batches/batch_x/manifest.json',
  } as unknown as BatchRecord;
}

describe('the event a batch sends', () => {
  it.each([
    ['completed', { succeeded: 3 }, 'batch.completed'],
    ['completed', { cached: 2, failed: 1 }, 'batch.completed'],
    ['completed', { succeeded: 1, budget_exceeded: 1 }, 'batch.budget_exhausted'],
    ['completed', { failed: 2, budget_exceeded: 1 }, 'batch.budget_exhausted'],
    ['completed', { failed: 3 }, 'batch.failed'],
    ['cancelled', { succeeded: 1, cancelled: 4 }, 'batch.cancelled'],
    ['cancelled', { budget_exceeded: 1, cancelled: 4 }, 'batch.cancelled'],
  ] as const)('%s with %o → %s', (status, counts, type) => {
    expect(batchEventType(batch(status, counts))).toBe(type);
  });

  it.each(['queued', 'running', 'cancelling'] as const)('none while %s', (status) => {
    expect(batchEvent(batch(status, { queued: 1 } as never))).toBeUndefined();
  });

  it('is the batch view, stamped with when the batch ended, with an id stable per batch', () => {
    const event = batchEvent(batch('completed', { succeeded: 1 }))!;
    expect(event).toMatchObject({
      id: 'evt_batch_x',
      type: 'batch.completed',
      timestamp: '2026-11-02T09:05:00.000Z',
      data: { id: 'batch_x', manifest_key: 'batches/batch_x/manifest.json', spend_usd: 0.016 },
    });
    expect(event.data).not.toHaveProperty('items');
  });
});
