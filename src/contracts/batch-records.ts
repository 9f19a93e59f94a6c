import type { DeriveSpec } from './derive-spec.js';
import type { Micros } from '../models/pricing.js';
import type { ItemWarning, RenderSpec } from '../models/render-spec.js';

export type { ItemWarning } from '../models/render-spec.js';
import {
  ITEM_STATUSES,
  TERMINAL_STATUSES,
  type BatchStatus,
  type ItemStatus,
} from './item-status.js';

/**
 * The records of a batch and its items, as the batch store keeps them in Redis and every
 * reader (views, manifests, webhooks, the façade, metrics) sees them.
 */

/** A smaller copy of a rendered image, made with sharp at no provider cost. */
export interface DerivedImage {
  /** What was asked, e.g. `128px.webp`: the identity of a derivation. */
  name: string;
  key: string;
  bytes: number;
}

export interface StoredImage {
  key: string;
  format: string;
  bytes: number;
  /** Smaller copies asked by the batch (`derive`), made with sharp at no provider cost. */
  derived?: DerivedImage[] | undefined;
  /** Whether it came from the result cache rather than from a provider call for this item. */
  cached?: boolean | undefined;
}

/** Where an item's images came from: the route, its API, the model and the route's id for it. */
export interface RenderedBy {
  /** The route's name (the providers file's `name`; `primary` for OPENAI_API_KEY's account). */
  provider: string;
  /** The provider's batch id, when its Batch API rendered the images (`provider_batch` mode). */
  provider_batch?: string | undefined;
  /** The route's API: openai, openai-responses, replicate or fal (absent in older records). */
  kind?: string | undefined;
  /** The registry's model id. */
  model: string;
  /** The provider's own id for the model, when it differs (Replicate's `owner/name` …). */
  remote_model?: string | undefined;
}

/** A queued prediction an item waits for (see ItemRecord.pending). */
export interface PendingRender {
  /** The route it was submitted to, and the model. */
  route: string;
  model: string;
  /** The provider's handle: its id and the URLs to follow and cancel it. */
  prediction: {
    id: string;
    urls: { status: string; result?: string | undefined; cancel?: string | undefined };
    submittedAt: number;
  };
  /** The item's variants (indexes) it renders: what the run that collects it stores. */
  variants: number[];
  /** How many images the prediction itself renders (a split item's first call: fewer). */
  images: number;
  /**
   * What the item's hold was, charged as spent when the prediction was handed back: whatever
   * becomes of the item now (cancelled, its worker killed, its route removed), the money the
   * prediction may cost is counted. The run that collects it pays only what is above this.
   */
  charged_micros: number;
  /** The render lock's token, handed from the run that submitted it to the one that follows it. */
  lock_token?: string | undefined;
}

/**
 * An item enrolled in its batch's provider batch (see ItemRecord.batched): its variants go as
 * request lines of a file the provider renders within its window, at the batch price.
 */
export interface BatchedRender {
  /** The route whose Batch API renders it, and the model. */
  route: string;
  model: string;
  /** The item's variants (indexes) the lines render. */
  variants: number[];
  /** What the item holds reserved (the batch price): released when its lines settle. */
  held_micros: number;
  /** The render lock's token, handed on until the lines are stored. */
  lock_token?: string | undefined;
  /** When it was enrolled (epoch ms). */
  enrolled_at: number;
}

/** Paid images of an item that S3 would not take, waiting in the spool (see ItemRecord.spooled). */
export interface SpooledRender {
  /** The spool entry holding them (src/storage/image-spool.ts). */
  entry: string;
  /** The item's variants (indexes) they are: what the run that uploads them stores. */
  variants: number[];
  /** Upload rounds that failed so far, the inline one included: the next wait doubles with it. */
  tries: number;
  /** When they were spooled (ISO). */
  since: string;
  /** The render lock's token, handed from run to run until they are stored. */
  lock_token?: string | undefined;
}

export interface ItemRecord {
  id: string;
  index: number;
  status: ItemStatus;
  spec: RenderSpec;
  /**
   * The canonical request hash (request-hash.ts): the result cache's key. For an edit it
   * depends on the input images' content, so it is null until a worker has read them.
   */
  hash: string | null;
  /** What the provider was paid for this item. */
  cost_micros: Micros;
  /** What its cached images cost when they were rendered: what the cache saved. */
  saved_micros?: Micros | undefined;
  images: StoredImage[];
  /** Cached renders older than this (ms since epoch) are not reused: the batch asked `refresh`. */
  reuse_after?: number | undefined;
  /** Smaller copies to make of every image. */
  derive?: DeriveSpec[] | undefined;
  /** Which route and model rendered it (another route's, when the first gave up). */
  rendered_by?: RenderedBy | undefined;
  /**
   * A queued prediction (Replicate, fal) this item started and is waiting for: its job comes
   * back to follow it, never to start another. The item keeps its hold meanwhile.
   */
  pending?: PendingRender | undefined;
  /**
   * Enrolled in its batch's provider batch, which renders it: the item stays `running`, holding
   * the batch price, until the provider's results are stored (jobs/provider-batch.ts).
   */
  batched?: BatchedRender | undefined;
  /**
   * Images this item paid for that wait in the spool for S3: its job comes back to upload
   * them, never to buy them again. Their price is already counted in its cost and spend.
   */
  spooled?: SpooledRender | undefined;
  error?: { code: string; message: string } | undefined;
  /** What was asked and what is done instead, when they differ (never silently). */
  warnings?: ItemWarning[] | undefined;
  attempts: number;
  updated_at: string;
}

export interface BatchRecord {
  id: string;
  tenant: string;
  status: BatchStatus;
  created_at: string;
  completed_at?: string | undefined;
  total: number;
  counts: Record<ItemStatus, number>;
  budget_micros?: Micros | undefined;
  spent_micros: Micros;
  reserved_micros: Micros;
  /** What cache hits saved: the price their images were bought at. */
  saved_micros: Micros;
  manifest_key?: string | undefined;
  metadata: Record<string, string>;
  /** Where `batch.*` events are delivered (Standard Webhooks signed). */
  webhook_url?: string | undefined;
  /** How its items choose among routes; absent: the workers' default. */
  routing?: string | undefined;
  /** The schedule whose run created this batch. */
  schedule_id?: string | undefined;
  /**
   * How it is rendered: `realtime`, or `provider_batch` (the provider's Batch API, at its
   * price). Absent in records older than the mode: realtime.
   */
  mode?: 'realtime' | 'provider_batch' | undefined;
  /** `auto` when the mode was chosen by rendermill, from `complete_by`. */
  mode_requested?: 'auto' | undefined;
  complete_by?: string | undefined;
  /** What becomes of items an expired provider batch never reached (default `fail`). */
  on_expiry?: 'fail' | 'realtime' | undefined;
}

/** How many items of a batch are in each state, and what their cache hits saved. */
export interface ItemTally {
  total: number;
  counts: Record<ItemStatus, number>;
  savedMicros: Micros;
}

export function emptyTally(): ItemTally {
  const counts = Object.fromEntries(ITEM_STATUSES.map((s) => [s, 0])) as Record<ItemStatus, number>;
  return { total: 0, counts, savedMicros: 0 };
}

/** Adds items to a tally (in place) and returns it. */
export function tallyItems(items: readonly ItemRecord[], tally = emptyTally()): ItemTally {
  for (const item of items) {
    tally.total += 1;
    tally.counts[item.status] += 1;
    if (TERMINAL_STATUSES.includes(item.status)) tally.savedMicros += item.saved_micros ?? 0;
  }
  return tally;
}

/** An item as its batch's cancellation leaves it. */
export function cancelledItem(item: ItemRecord): ItemRecord {
  return {
    ...item,
    status: 'cancelled',
    error: { code: 'cancelled', message: 'the batch was cancelled before this item was rendered' },
    updated_at: new Date().toISOString(),
  };
}
