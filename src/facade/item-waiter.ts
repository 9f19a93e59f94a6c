import type { BatchStore } from '../batches/batch-store.js';
import type { ItemRecord } from '../contracts/batch-records.js';
import { TERMINAL_STATUSES } from '../contracts/item-status.js';

/**
 * How often waited items are looked at. Fixed, not configured: one pipelined read per tick for
 * every waiting request, short enough that an image is handed over as soon as it is stored.
 */
export const ITEM_POLL_MS = 50;

/**
 * Longest wait: under the openai SDK's default 10-minute timeout, so the caller gets our 504.
 * Fixed, not configured: it follows the SDK's timeout, not the deployment.
 */
export const MAX_IMAGES_WAIT_MS = 9 * 60_000;

/**
 * How long the Images API waits for a request's render before answering 504 with its batch
 * id: as long as a provider call may take through every retry (RENDERMILL_REQUEST_TIMEOUT_MS ×
 * (RENDERMILL_RETRIES + 1)), at most MAX_IMAGES_WAIT_MS, which the default settings reach.
 */
export function imagesWaitMs(requestTimeoutMs: number, retries: number): number {
  return Math.min(requestTimeoutMs * (retries + 1), MAX_IMAGES_WAIT_MS);
}

/**
 * How a wait ended: `final` (the item reached a final state), `timeout`, `aborted` (the
 * caller left), `vanished` (the item no longer exists: its batch was deleted) or `closing`
 * (the API is shutting down: the render goes on without this wait).
 */
export type WaitEnd = 'final' | 'timeout' | 'aborted' | 'vanished' | 'closing';

/** What a wait ended with: the item in its final state, or its last known state. */
export interface WaitOutcome {
  item: ItemRecord | undefined;
  end: WaitEnd;
}

interface Waiting {
  batchId: string;
  itemId: string;
  deadline: number;
  last: ItemRecord | undefined;
  resolve(outcome: WaitOutcome): void;
}

/**
 * Waits for items to reach a final state. One timer per process looks at every waited item
 * each ITEM_POLL_MS, all reads issued together (the state connection pipelines them into one
 * round trip), so a hundred waiting requests cost one Redis round trip per tick, not a
 * hundred timers. A read that fails (Redis away for a moment) is tried again next tick.
 */
export class ItemWaiter {
  private readonly waiting = new Set<Waiting>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closed = false;

  constructor(
    private readonly store: Pick<BatchStore, 'item'>,
    private readonly pollMs = ITEM_POLL_MS,
  ) {}

  /**
   * Resolves when the item reaches a final state or vanishes, when `timeoutMs` have passed,
   * when `signal` aborts (the client left), or when the waiter is closed (at once if it
   * already is); never rejects.
   */
  wait(
    batchId: string,
    itemId: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      const entry: Waiting = {
        batchId,
        itemId,
        deadline: Date.now() + options.timeoutMs,
        last: undefined,
        resolve,
      };
      if (this.closed) return resolve({ item: undefined, end: 'closing' });
      if (options.signal?.aborted) return resolve({ item: undefined, end: 'aborted' });
      options.signal?.addEventListener('abort', () => this.settle(entry, 'aborted'), {
        once: true,
      });
      this.waiting.add(entry);
      this.schedule();
    });
  }

  /**
   * Ends every wait, and every wait asked for later, with `closing` (the API is shutting
   * down): each resolves with what it last saw.
   */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of [...this.waiting]) this.settle(entry, 'closing');
  }

  private settle(entry: Waiting, end: WaitEnd) {
    if (!this.waiting.delete(entry)) return;
    entry.resolve({ item: entry.last, end });
  }

  private schedule() {
    if (this.timer || this.ticking || this.waiting.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), this.pollMs);
  }

  private async tick() {
    this.timer = undefined;
    this.ticking = true;
    try {
      const round = [...this.waiting];
      const reads = await Promise.allSettled(
        round.map((entry) => this.store.item(entry.batchId, entry.itemId)),
      );
      const now = Date.now();
      round.forEach((entry, i) => {
        const read = reads[i]!;
        if (read.status === 'fulfilled') {
          // A vanished item (its batch deleted) will never finish: stop waiting for it.
          if (!read.value) return this.settle(entry, 'vanished');
          entry.last = read.value;
          if (TERMINAL_STATUSES.includes(read.value.status)) return this.settle(entry, 'final');
        }
        if (now >= entry.deadline) this.settle(entry, 'timeout');
      });
    } finally {
      this.ticking = false;
      this.schedule();
    }
  }
}
