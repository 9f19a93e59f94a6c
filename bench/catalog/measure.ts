import { BULL_PREFIX, batchKeys, bullKey } from '../../src/redis/redis-keys.js';
import { PhaseMeter, otherLoadNote } from '../dedupe/load.js';
import type { Stack } from '../support/stack.js';
import { startApi, type BodyKind, type Endpoint } from './api.js';
import { FullGcLog, type FullGcs } from './gc-log.js';
import { MemorySampler, type MemoryTrace } from './memory.js';
import { jsonBatchBody, sleep } from './shape.js';

/** After Redis is emptied: the warm-up's garbage is collected and stray work ends. */
const SETTLE_MS = 1_500;
/** A GC line printed as the answer went out may reach the driver a moment later. */
const GC_LOG_GRACE_MS = 100;

/** One upload of one body to one endpoint, in a fresh `rendermill api`. */
export interface Upload {
  repetition: number;
  kind: BodyKind;
  endpoint: Endpoint;
  rows: number;
  /** Why the upload got no answer (the API died, say); null when it did. */
  failed: string | null;
  /** From just before the request until its answer was read. */
  seconds: number;
  /** Rows the API accepted per second of that. */
  rowsPerSecond: number;
  accepted: number;
  rejected: number;
  memory: MemoryTrace;
  /** The API's full garbage collections during the upload (from `--trace-gc`). */
  fullGcs: FullGcs;
  /** The API's peak RSS during the upload minus its RSS just before: what the upload cost. */
  peakGrowthBytes: number;
  /** Redis's `used_memory` (INFO memory) after the warm-up was flushed, and after the upload. */
  redisUsedMemoryBefore: number;
  redisUsedMemoryAfter: number;
  /** Items in the batch's hash in Redis after a submission (null for an estimate). */
  itemsInRedis: number | null;
  /** Render jobs waiting in BullMQ after the upload (no worker takes them). */
  renderJobsWaiting: number;
  /** CPU seconds per role during the upload, and `other`: the rest of the machine meanwhile. */
  cpuSeconds: Record<string, number>;
  notes: string[];
}

const usedMemory = async (stack: Stack) =>
  Number(/^used_memory:(\d+)/m.exec(await stack.redisClient.info('memory'))?.[1]);

/**
 * Measures one upload in a `rendermill api` of its own. A process shared by every upload
 * would measure each against a heap an earlier, larger one had already grown (V8 keeps the
 * pages it took), so a later upload's growth would read low. The API is warmed up, Redis
 * emptied, and the upload sent while the API's memory is read every 50 ms.
 */
export async function measureUpload(
  stack: Stack,
  plan: { repetition: number; kind: BodyKind; endpoint: Endpoint; rows: number },
  nodeOptions: string[] = [],
): Promise<Upload> {
  const { kind, endpoint, rows } = plan;
  await stack.resetState();
  // --trace-gc: the full collections tell rows held from garbage not yet collected.
  const api = await startApi(stack, ['--trace-gc', ...nodeOptions]);
  try {
    await stack.resetState();
    await sleep(SETTLE_MS);
    // Built before the clock starts: a JSON client has its body in memory already.
    const body = kind === 'json' ? jsonBatchBody(rows) : undefined;
    const redisUsedMemoryBefore = await usedMemory(stack);

    const cpu = new PhaseMeter();
    cpu.track('api', api.child.pid);
    cpu.track('redis', stack.redisPid);
    cpu.track('driver', process.pid);
    const gcs = new FullGcLog(api.child.process.stdout!);
    const sampler = new MemorySampler(api.child.pid);
    const started = performance.now();
    // An API that dies (say, under a heap limit given with --api-node-options) is a result.
    const { answer, failure } = await api.upload(endpoint, kind, rows, body).then(
      (answer) => ({ answer, failure: null }),
      (error: unknown) => ({
        answer: { accepted: 0, rejected: 0, batchId: null },
        failure: error instanceof Error ? error.message : String(error),
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const memory = sampler.finish();
    const cpuSeconds = cpu.finish();
    await sleep(GC_LOG_GRACE_MS);
    const fullGcs = gcs.finish();

    const redisUsedMemoryAfter = await usedMemory(stack);
    const itemsInRedis =
      answer.batchId === null
        ? null
        : await stack.redisClient.hlen(batchKeys().items(answer.batchId));
    const renderJobsWaiting = await stack.redisClient.llen(bullKey(BULL_PREFIX, 'render', 'wait'));

    const notes: string[] = [];
    if (failure !== null) {
      // Give a dying process a moment to be reaped, so its exit code or signal is known.
      await Promise.race([api.child.exited, sleep(1_000)]);
      const { exitCode, signalCode } = api.child.process;
      const exit = exitCode ?? signalCode;
      const said = api.child
        .output()
        .split('\n')
        .filter((text) => !/Scavenge|Mark-Compact/.test(text));
      // V8's "FATAL ERROR: … JavaScript heap out of memory" comes before a long native stack.
      const why =
        said.find((text) => /FATAL ERROR|Error:/.test(text)) ?? said.slice(-3).join(' / ');
      notes.push(
        `upload failed: ${failure}; the API ${exit === null ? 'is still running' : `exited (${exit})`}: ${why.slice(0, 600)}`,
      );
    } else if (answer.accepted !== rows || answer.rejected > 0)
      notes.push(`${answer.accepted} of ${rows} rows accepted, ${answer.rejected} rejected`);
    if (
      endpoint === 'submit' &&
      failure === null &&
      (itemsInRedis !== rows || renderJobsWaiting !== rows)
    )
      notes.push(`Redis holds ${itemsInRedis} items and ${renderJobsWaiting} render jobs`);
    if (endpoint === 'estimate' && renderJobsWaiting > 0)
      notes.push(`the estimate left ${renderJobsWaiting} render jobs queued`);
    if (memory.hwm === null)
      notes.push('VmHWM could not be reset: the peak is the highest 50 ms sample');
    notes.push(...otherLoadNote(`${kind} ${endpoint} ${rows}`, cpuSeconds, seconds));
    return {
      ...plan,
      failed: failure,
      seconds,
      rowsPerSecond: failure === null ? answer.accepted / seconds : NaN,
      accepted: answer.accepted,
      rejected: answer.rejected,
      memory,
      fullGcs,
      peakGrowthBytes: memory.peakRss - memory.rssBefore,
      redisUsedMemoryBefore,
      redisUsedMemoryAfter,
      itemsInRedis,
      renderJobsWaiting,
      cpuSeconds,
      notes,
    };
  } finally {
    await api.stop();
  }
}
