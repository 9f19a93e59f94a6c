import type { JobHandler, JobPayload } from '../src/contracts/job-catalog.js';
import { batchEnded } from '../src/contracts/item-status.js';
import { ProviderBatchRunningError } from '../src/errors.js';
import {
  partEnded,
  partOpen,
  type ProviderBatchPart,
} from '../src/batches/provider-batch-store.js';
import type { ProviderBatchState } from '../src/providers/openai-batch-api.js';
import { collectPart } from './provider-batch/collect.js';
import {
  batchRoute,
  openConductor,
  type Conductor,
  type ProviderBatchDeps,
} from './provider-batch/context.js';
import { dueItems, makeParts } from './provider-batch/gather.js';
import { cancelWaiting, giveUpParts } from './provider-batch/stop.js';
import { applyState, queueOwner, submitPart } from './provider-batch/submit.js';

export type { ProviderBatchDeps } from './provider-batch/context.js';

/**
 * A batch's provider-batch job: one per rendermill batch in `provider_batch` mode, alive until
 * the batch has ended. Each run does what is due and comes back later without holding a
 * worker slot (ProviderBatchRunningError) — for a day if the provider takes its whole window:
 * - gathers the items enrolled by their render jobs into parts (gather.ts) once enrolment has
 *   paused, every item has been looked at, or a file is full;
 * - submits each part: JSONL uploaded, provider batch created, ids recorded (submit.ts);
 * - follows each part's status and counts (the batch view shows them), asks the provider to
 *   cancel parts of a cancelled batch;
 * - collects each ended part: images stored, items settled at their lines' price (collect.ts).
 * Every step is recorded before the next, so a run killed anywhere is resumed by the next one.
 */
export function createProviderBatchProcessor(deps: ProviderBatchDeps) {
  return async function conductProviderBatch({
    batchId,
  }: JobPayload<'provider-batch'>): Promise<void> {
    const batch = await deps.store.get(batchId);
    if (!batch) return;
    const conductor = openConductor(deps, batch);
    const cancelling = batch.status === 'cancelling';
    for (const part of await deps.parts.parts(batchId)) {
      if (partOpen(part)) await advance(conductor, part, cancelling);
    }
    const waiting = await deps.parts.waiting(batchId);
    if (waiting.items.length > 0 && cancelling) {
      await cancelWaiting(conductor, waiting.items);
    } else {
      // The batch as it is now: collecting a part above may have taken a while.
      const current = (await deps.store.get(batchId)) ?? batch;
      const existing = await deps.parts.parts(batchId);
      const take = dueItems(conductor, current, waiting, existing);
      if (take.length > 0) {
        for (const part of await makeParts(conductor, take, existing)) {
          await submitPart(conductor, part);
        }
      }
    }
    const now = await deps.store.get(batchId);
    const open = (await deps.parts.parts(batchId)).filter(partOpen);
    const stillWaiting = await deps.parts.waiting(batchId);
    if (now && batchEnded(now.status) && open.length === 0 && stillWaiting.items.length === 0) {
      conductor.log.info('every provider batch of the batch is stored; done');
      return;
    }
    throw new ProviderBatchRunningError(
      'provider batches still running',
      Date.now() + nextLookMs(conductor, open, stillWaiting),
    );
  };
}

/** One step of an open part: submit it, follow it, or collect it once the provider is done. */
async function advance(
  conductor: Conductor,
  part: ProviderBatchPart,
  cancelling: boolean,
): Promise<void> {
  const { parts } = conductor.deps;
  const batchId = conductor.batch.id;
  if (!part.batch_id && !partEnded(part)) {
    if (cancelling) {
      // Never submitted (or its creation's answer was lost: the provider may hold it).
      await giveUpParts(conductor, [part]);
      return;
    }
    part = await submitPart(conductor, part);
    if (!part.batch_id) return;
  }
  const api = batchRoute(conductor, part.route)?.batch?.api;
  let state: ProviderBatchState | undefined;
  if (part.batch_id && api) {
    if (cancelling && !part.cancel_requested && !partEnded(part)) {
      await api.cancelBatch(part.batch_id).catch((error: Error) => {
        conductor.log.warn({ part: part.part, err: error.message }, 'cancel refused');
      });
      part.cancel_requested = true;
    }
    state = await api.getBatch(part.batch_id);
    if (state.status === 'failed' && state.errors.some((e) => e.code === 'token_limit_exceeded')) {
      // Refused for the route's enqueued-token limit, nothing rendered or billed: the same file
      // goes again as a new batch once there is room.
      part.attempt += 1;
      part.batch_id = undefined;
      part.status = 'waiting_for_room';
      await parts.setEnqueued(part.route, part.model, queueOwner(batchId, part), 0);
      await parts.save(batchId, part);
      conductor.log.info(
        { part: part.part },
        'the provider’s batch queue was full; resubmitting later',
      );
      return;
    }
    applyState(part, state);
    await parts.save(batchId, part);
  }
  if (!partEnded(part)) return;
  await collectPart(conductor, part, state);
  part.status = 'stored';
  part.times.stored = Date.now();
  await parts.save(batchId, part);
  await parts.setEnqueued(part.route, part.model, queueOwner(batchId, part), 0);
  conductor.log.info(
    { part: part.part, provider_batch: part.batch_id, ended: state?.status, counts: part.counts },
    'provider batch results stored',
  );
}

/**
 * When to look again: while items are still being enrolled, every half second at most (the
 * batch goes as soon as its last item is enrolled, or when enrolment has paused for the gather
 * time); while provider batches run, at the poll interval.
 */
function nextLookMs(
  conductor: Conductor,
  open: readonly ProviderBatchPart[],
  waiting: { items: string[]; lastAt: number | undefined },
): number {
  const { pollMs, gatherMs } = conductor.deps.settings;
  const running = open.some((part) => part.batch_id && !partEnded(part));
  const gathering = conductor.batch.counts.queued > 0 || waiting.items.length > 0;
  if (!gathering) return Math.max(100, running ? pollMs : gatherMs);
  const quietLeft = gatherMs - (Date.now() - (waiting.lastAt ?? Date.now()));
  return Math.max(100, Math.min(GATHER_LOOK_MS, quietLeft, running ? pollMs : GATHER_LOOK_MS));
}

/** The longest pause between looks while items are being enrolled. */
const GATHER_LOOK_MS = 500;

/** The provider-batch job as workers run it, and what happens if it never finishes. */
export function createProviderBatchHandler(deps: ProviderBatchDeps): JobHandler<'provider-batch'> {
  return {
    process: createProviderBatchProcessor(deps),
    onGiveUp: async (data) => {
      const batchId = (data as { batchId?: string }).batchId;
      const batch = batchId ? await deps.store.get(batchId) : undefined;
      if (!batch) return;
      const conductor = openConductor(deps, batch);
      await cancelWaiting(conductor, (await deps.parts.waiting(batch.id)).items, 'gave_up');
      await giveUpParts(conductor, (await deps.parts.parts(batch.id)).filter(partOpen));
    },
  };
}
