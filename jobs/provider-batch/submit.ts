import type { ProviderBatchPart } from '../../src/batches/provider-batch-store.js';
import type { ProviderBatchState } from '../../src/providers/openai-batch-api.js';
import { batchRoute, type Conductor } from './context.js';
import { GENERATIONS_ENDPOINT, partFile } from './gather.js';

/** How the part's own file is named at the provider: found by it after a crash. */
export const partFilename = (batchId: string, part: ProviderBatchPart) =>
  `rendermill-${batchId}-part-${part.part}.jsonl`;

/** The metadata the part's provider batch is created with: found by it after a crash. */
export const partMetadata = (batchId: string, part: ProviderBatchPart) => ({
  rendermill_batch: batchId,
  rendermill_part: String(part.part),
  rendermill_attempt: String(part.attempt),
});

/** Where the part is counted in its route's batch queue. */
export const queueOwner = (batchId: string, part: ProviderBatchPart) => `${batchId}:${part.part}`;

/**
 * Submits a part, resuming wherever a run before stopped, and records each provider id the
 * moment it has it: the file (found by its name if an upload's answer was lost, else
 * uploaded), then — once the route's batch queue has room for the part's tokens — the batch
 * (found by its metadata if a creation's answer was lost, else created). The provider's own
 * retries are off: a call whose answer is lost is looked for before it is made again. Returns
 * the part as it now stands.
 */
export async function submitPart(
  conductor: Conductor,
  part: ProviderBatchPart,
): Promise<ProviderBatchPart> {
  const { parts } = conductor.deps;
  const batchId = conductor.batch.id;
  const route = batchRoute(conductor, part.route);
  if (!route?.batch) {
    return failPart(conductor, part, `route "${part.route}" no longer offers its Batch API`);
  }
  const { api, queueTokens } = route.batch;
  if (!part.file_id) {
    const filename = partFilename(batchId, part);
    const found = await api.findFile(filename);
    const file = found ?? (await api.uploadFile(filename, await partFile(conductor, part)));
    part.file_id = file.id;
    part.times.uploaded = Date.now();
    await parts.save(batchId, part);
    conductor.log.info(
      { part: part.part, file: file.id, lines: part.lines },
      'request file uploaded',
    );
  }
  if (part.batch_id) return part;
  const owner = queueOwner(batchId, part);
  if (queueTokens !== undefined) {
    const enqueued = await parts.enqueuedTokens(part.route, part.model, owner);
    // A part alone is never above the limit (makeParts splits by it): it waits for room only
    // behind others.
    if (enqueued > 0 && enqueued + part.tokens > queueTokens) {
      if (part.status !== 'waiting_for_room') {
        part.status = 'waiting_for_room';
        await parts.save(batchId, part);
        conductor.log.info(
          { part: part.part, tokens: part.tokens, enqueued, limit: queueTokens },
          'the route’s batch queue is full; the part waits for room',
        );
      }
      return part;
    }
  }
  // Counted before it is created: a crash in between over-counts until the part ends, never under.
  await parts.setEnqueued(part.route, part.model, owner, part.tokens);
  const metadata = partMetadata(batchId, part);
  const state =
    (await api.findBatch(metadata)) ??
    (await api.createBatch({
      inputFileId: part.file_id,
      endpoint: GENERATIONS_ENDPOINT,
      metadata,
    }));
  part.batch_id = state.id;
  part.times.submitted = Date.now();
  applyState(part, state);
  await parts.save(batchId, part);
  conductor.log.info({ part: part.part, provider_batch: state.id }, 'provider batch created');
  return part;
}

/** The provider's view of the part: its status, counts and the times of its phases. */
export function applyState(part: ProviderBatchPart, state: ProviderBatchState): void {
  part.status = state.status;
  part.counts = { ...state.counts };
  for (const [phase, at] of Object.entries(state.times)) {
    if (at !== undefined) part.times[phase] = at;
  }
  if (state.status === 'failed' && state.errors.length > 0) {
    part.error = state.errors.map((e) => `${e.code}: ${e.message}`).join('; ');
  }
}

/** Ends a part the provider will never render: its items fail with `reason` when collected. */
async function failPart(
  conductor: Conductor,
  part: ProviderBatchPart,
  reason: string,
): Promise<ProviderBatchPart> {
  part.status = 'failed';
  part.error = reason;
  await conductor.deps.parts.save(conductor.batch.id, part);
  return part;
}
