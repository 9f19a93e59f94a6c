import { partOpen, type ProviderBatchPart } from '../../src/batches/provider-batch-store.js';
import type { BatchRecord, ItemRecord } from '../../src/contracts/batch-records.js';
import { maxTokens, pricedRequest } from '../../src/models/pricing.js';
import { generationParams } from '../../src/providers/openai-provider.js';
import { isEnrolled } from '../render-item/enrol.js';
import { customIdOf, lineCandidate, type Conductor } from './context.js';

/** The endpoint every line of a part calls: provider batches take generations. */
export const GENERATIONS_ENDPOINT = '/v1/images/generations';

/**
 * The waiting items that should go to the provider now: all of them once every item of the
 * batch has been looked at (none queued, every running one enrolled) or enrolment has paused
 * for the gather time; while enrolment goes on, only whole files' worth (the rest waits for the
 * items behind it); else none.
 */
export function dueItems(
  conductor: Conductor,
  batch: BatchRecord,
  waiting: { items: string[]; lastAt: number | undefined },
  parts: readonly ProviderBatchPart[],
  now = Date.now(),
): string[] {
  const { items } = waiting;
  if (items.length === 0) return [];
  const { gatherMs, maxLines } = conductor.deps.settings;
  const { counts } = batch;
  const inParts = parts.filter(partOpen).reduce((sum, part) => sum + part.items.length, 0);
  const allEnrolled = counts.queued === 0 && counts.running <= items.length + inParts;
  if (allEnrolled || now - (waiting.lastAt ?? 0) >= gatherMs) return items;
  return items.slice(0, Math.floor(items.length / maxLines) * maxLines);
}

/**
 * Gathers the waiting items into new parts: one per route and model, split so that no file
 * has more lines or bytes than the provider takes, nor more tokens than the route's batch
 * queue holds. Each part is recorded with its items taken off the waiting list in one step.
 * Items that are no longer enrolled, or are in a part already (listed again after a crash),
 * are dropped from the list.
 */
export async function makeParts(
  conductor: Conductor,
  waitingIds: readonly string[],
  existing: readonly ProviderBatchPart[],
): Promise<ProviderBatchPart[]> {
  const { store, parts: partStore, settings } = conductor.deps;
  const batchId = conductor.batch.id;
  const inParts = new Set(existing.flatMap((part) => part.items));
  const found = await store.itemsById(batchId, waitingIds);
  const stale = waitingIds.filter((id, i) => !found[i] || !isEnrolled(found[i]) || inParts.has(id));
  await partStore.unenrol(batchId, stale);
  const groups = new Map<string, ItemRecord[]>();
  for (const item of found) {
    if (!item || !isEnrolled(item) || inParts.has(item.id)) continue;
    const key = `${item.batched!.route}\n${item.batched!.model}`;
    groups.set(key, [...(groups.get(key) ?? []), item]);
  }
  let next = Math.max(0, ...existing.map((part) => part.part)) + 1;
  const made: ProviderBatchPart[] = [];
  for (const items of groups.values()) {
    const { route, model } = items[0]!.batched!;
    const queueTokens = conductor.deps.routes.find((r) => r.name === route)?.batch?.queueTokens;
    let current: ProviderBatchPart | undefined;
    let bytes = 0;
    for (const item of items) {
      const weight = itemWeight(conductor, item);
      const full =
        current &&
        (current.lines + weight.lines > settings.maxLines ||
          bytes + weight.bytes > settings.maxBytes ||
          (queueTokens !== undefined && current.tokens + weight.tokens > queueTokens));
      if (!current || full) {
        current = {
          part: next++,
          route,
          model,
          items: [],
          lines: 0,
          tokens: 0,
          attempt: 0,
          status: 'submitting',
          counts: { total: 0, completed: 0, failed: 0 },
          times: { gathered: Date.now() },
        };
        made.push(current);
        bytes = 0;
      }
      current.items.push(item.id);
      current.lines += weight.lines;
      current.tokens += weight.tokens;
      bytes += weight.bytes;
    }
  }
  for (const part of made) await partStore.createPart(batchId, part);
  return made;
}

/** What an item adds to a part: its lines, their bytes and the tokens they may enqueue. */
function itemWeight(conductor: Conductor, item: ItemRecord) {
  const lines = requestLines(conductor, item);
  const one = { ...item.spec, n: 1 };
  const model = conductor.deps.registry.get(item.batched!.model);
  return {
    lines: lines.length,
    bytes: lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0),
    tokens: model ? maxTokens(model, pricedRequest(one)) * lines.length : 0,
  };
}

/**
 * The item's request lines, one per variant it is enrolled for: `{custom_id, method, url,
 * body}` with the body a realtime call of the route would send (n = 1). None when its route no
 * longer offers the model in batches (the part then fails the item, saying so).
 */
export function requestLines(conductor: Conductor, item: ItemRecord): string[] {
  const candidate = lineCandidate(conductor, item, item.batched!.route);
  if (!candidate) return [];
  return item.batched!.variants.map((variant) =>
    JSON.stringify({
      custom_id: customIdOf(item, variant),
      method: 'POST',
      url: GENERATIONS_ENDPOINT,
      body: generationParams({ ...item.spec, n: 1 }, candidate.remote),
    }),
  );
}

/** The part's request file, written afresh from its items: the same bytes every time. */
export async function partFile(conductor: Conductor, part: ProviderBatchPart): Promise<Buffer> {
  const items = await conductor.deps.store.itemsById(conductor.batch.id, part.items);
  const lines = items.flatMap((item) =>
    item && isEnrolled(item) ? requestLines(conductor, item) : [],
  );
  return Buffer.from(lines.map((line) => `${line}\n`).join(''));
}
