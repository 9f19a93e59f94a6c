import type { ProviderBatchPart } from '../../src/batches/provider-batch-store.js';
import type { CachedImage } from '../../src/cache/result-cache.js';
import type { ItemRecord } from '../../src/contracts/batch-records.js';
import type { ProviderUsage } from '../../src/errors.js';
import { pricedRequest } from '../../src/models/pricing.js';
import {
  parseBatchLine,
  type BatchLineResult,
  type ProviderBatchState,
} from '../../src/providers/openai-batch-api.js';
import { decodeB64Image } from '../../src/providers/openai-provider.js';
import { costOn } from '../../src/render/route-candidates.js';
import { storeRendered } from '../../src/render/store-images.js';
import { itemError } from '../render-item/attempt.js';
import { isEnrolled } from '../render-item/enrol.js';
import { lineCandidate, parseCustomId, type Conductor } from './context.js';
import { queueRealtime, settleBatchedItem, type LineOutcomes } from './settle-items.js';

/**
 * Collects an ended part: reads the provider's output and error files line by line (an output
 * of a thousand 1024² images is over a gigabyte: never held whole), stores each rendered image
 * as a realtime render would — same keys, cache index and derived copies — priced at what its
 * line cost, then settles every item of the part (settle-items.ts). Items settled by an earlier
 * run are skipped, so a run that dies half-way is finished by the next, paying nothing twice.
 */
export async function collectPart(
  conductor: Conductor,
  part: ProviderBatchPart,
  state: ProviderBatchState | undefined,
): Promise<void> {
  const { store } = conductor.deps;
  const found = await store.itemsById(conductor.batch.id, part.items);
  const byIndex = new Map<number, ItemRecord>();
  for (const item of found) {
    if (item && isEnrolled(item)) byIndex.set(item.index, item);
    // Moved back to the queue by a run that died before queueing its realtime render.
    if (item?.status === 'queued' && item.error?.code === 'provider_batch_expired') {
      await queueRealtime(conductor, item);
    }
  }
  const outcomes = new Map<string, LineOutcomes>();
  const api = conductor.deps.routes.find((route) => route.name === part.route)?.batch?.api;
  for (const fileId of [state?.outputFileId, state?.errorFileId]) {
    if (!fileId || !api || byIndex.size === 0) continue;
    for await (const line of api.fileLines(fileId)) {
      const result = parseBatchLine(line);
      const target = parseCustomId(result.customId);
      const item = target && byIndex.get(target.index);
      if (!item || !item.batched!.variants.includes(target.variant)) continue;
      const outcome = outcomes.get(item.id) ?? { stored: [], paidMicros: 0, errors: [], seen: 0 };
      outcomes.set(item.id, outcome);
      outcome.seen += 1;
      await takeLine(conductor, item, part, target.variant, result, outcome);
    }
  }
  for (const item of byIndex.values()) {
    await settleBatchedItem(conductor, item, part, state, outcomes.get(item.id));
  }
}

/** Error codes of lines the provider never ran: OpenAI writes expired ones to the error file. */
const NOT_RUN: ReadonlySet<string> = new Set(['batch_expired', 'batch_cancelled']);

/** One result line: its image stored and its cost counted, or its error kept for the item. */
async function takeLine(
  conductor: Conductor,
  item: ItemRecord,
  part: ProviderBatchPart,
  variant: number,
  result: BatchLineResult,
  outcome: LineOutcomes,
): Promise<void> {
  if (!result.ok) {
    // A line the provider never ran (its window ended first) is no failure of the item's own:
    // the part's ending decides what becomes of it (settle-items.ts).
    if (!NOT_RUN.has(result.code))
      outcome.errors.push({ code: result.code, message: result.message });
    return;
  }
  const body = result.body as {
    data?: { b64_json?: string }[];
    usage?: ProviderUsage;
  };
  const candidate = lineCandidate(conductor, item, part.route);
  const one = { ...item.spec, n: 1 };
  // The line is billed whether or not its image can be used: it is counted first.
  const paid = candidate ? costOn(candidate, pricedRequest(one), body.usage) : 0;
  outcome.paidMicros += paid;
  try {
    const image = decodeB64Image(body.data?.[0]?.b64_json, body.usage);
    const { cache, storage } = conductor.deps;
    const stored: CachedImage[] = await storeRendered(
      { storage, cache, scope: cache.scopeFor(conductor.batch.tenant), hash: item.hash! },
      [image],
      [variant],
      { paidMicros: paid, model: item.batched!.model },
      item.derive ?? [],
    );
    outcome.stored.push(...stored);
  } catch (error) {
    outcome.errors.push(itemError(error));
  }
}
