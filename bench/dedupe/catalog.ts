import type { Child } from '../support/children.js';
import type { Stack } from '../support/stack.js';
import { PhaseMeter, otherLoadNote } from './load.js';
import { startRendermill, type BatchRun } from './rendermill.js';
import { catalogPrompt, sleep } from './shape.js';

/** Between the two runs: the first batch's manifest upload and stray connections finish. */
const SETTLE_MS = 2_000;

export interface CatalogRun {
  seconds: number;
  /** The same to the batch's own completed_at (no poll granularity, never under the POST). */
  secondsToCompletedAt: number | null;
  /** Of `seconds`, the POST alone. */
  submitSeconds: number;
  itemsPerSecond: number;
  status: string;
  /** Items by final status, as the batch reports them. */
  counts: Record<string, number>;
  /** Images the simulator billed during the run. */
  billedImages: number;
  /** CPU seconds per role during the run, and `other`: the rest of the machine meanwhile. */
  cpuSeconds: Record<string, number>;
}

export interface CatalogResult {
  /** Every item new: every image rendered, uploaded and recorded. */
  first: CatalogRun & { images: number; workerCpuMsPerImage: number };
  /** The identical catalog again. */
  rerun: CatalogRun & { cachedItems: number; workerCpuMsPerItem: number };
  notes: string[];
}

/**
 * A catalog rendered, then submitted again unchanged (same ids, prompts and options): the
 * second run is what a result cache makes free. The bench does not assume one exists; it
 * reports how the re-run's items ended and what the provider billed.
 */
export async function runCatalog(
  stack: Stack,
  options: {
    items: number;
    /** Images per item. */
    n: number;
    workers: number;
    concurrency: number;
    repetition: number;
    deadlineMs: number;
  },
  log: (line: string) => void,
): Promise<CatalogResult> {
  const deployment = await startRendermill(stack, options);
  const items = Array.from({ length: options.items }, (_, i) => ({
    id: `sku-${i}`,
    prompt: catalogPrompt(options.repetition, i),
  }));
  const meter = () => {
    const cpu = new PhaseMeter();
    const track = (role: string, children: Child[]) => {
      for (const child of children) cpu.track(role, child.pid);
    };
    track('workers', deployment.workers);
    track('api', [deployment.api]);
    track('s3rver', [stack.s3.child]);
    track('simulator', [stack.simulator.child]);
    cpu.track('redis', stack.redisPid);
    cpu.track('driver', process.pid);
    return cpu;
  };
  const summary = (run: BatchRun, billedImages: number, cpuSeconds: Record<string, number>) => ({
    seconds: run.seconds,
    secondsToCompletedAt: run.secondsToCompletedAt,
    submitSeconds: run.submitSeconds,
    itemsPerSecond: options.items / run.seconds,
    status: run.batch.status,
    counts: run.batch.counts,
    billedImages,
    cpuSeconds,
  });

  try {
    log(`first run: ${options.items} new items`);
    const firstCpu = meter();
    const firstRun = await deployment.runBatch(items, options.deadlineMs, log);
    const firstCpuSeconds = firstCpu.finish();
    const billedAfterFirst = (await stack.simulator.stats()).billedImages;
    const images = options.items * options.n;
    const first = {
      ...summary(firstRun, billedAfterFirst, firstCpuSeconds),
      images,
      workerCpuMsPerImage: ((firstCpuSeconds.workers ?? 0) * 1000) / images,
    };
    log(
      `first run: ${first.seconds.toFixed(2)} s = ${Math.round(first.itemsPerSecond)} items/s, ` +
        `worker CPU ${first.workerCpuMsPerImage.toFixed(2)} ms/image`,
    );

    await sleep(SETTLE_MS);
    log(`re-run: the same ${options.items} items`);
    const rerunCpu = meter();
    const rerunRun = await deployment.runBatch(items, options.deadlineMs, log);
    const rerunCpuSeconds = rerunCpu.finish();
    const billedAfterRerun = (await stack.simulator.stats()).billedImages;
    const rerun = {
      ...summary(rerunRun, billedAfterRerun - billedAfterFirst, rerunCpuSeconds),
      cachedItems: rerunRun.batch.counts.cached ?? 0,
      workerCpuMsPerItem: ((rerunCpuSeconds.workers ?? 0) * 1000) / options.items,
    };
    log(
      `re-run: ${rerun.seconds.toFixed(2)} s = ${Math.round(rerun.itemsPerSecond)} items/s, ` +
        `${rerun.cachedItems} cached, ${rerun.billedImages} images billed`,
    );

    return { first, rerun, notes: notesFor(first, rerun, options.items, deployment.errorLines()) };
  } finally {
    await deployment.stop();
  }
}

function notesFor(
  first: CatalogResult['first'],
  rerun: CatalogResult['rerun'],
  items: number,
  errorLines: string[],
): string[] {
  const notes: string[] = [];
  const unfinished = (run: CatalogRun, name: string) => {
    if (run.status !== 'completed') notes.push(`${name}: batch ${run.status} at the deadline`);
    const other = Object.entries(run.counts)
      .filter(([status, count]) => count > 0 && !['total', 'succeeded', 'cached'].includes(status))
      .map(([status, count]) => `${count} ${status}`);
    if (other.length > 0) notes.push(`${name}: ${other.join(', ')}`);
  };
  unfinished(first, 'first run');
  unfinished(rerun, 're-run');
  notes.push(...otherLoadNote('first run', first.cpuSeconds, first.seconds));
  notes.push(...otherLoadNote('re-run', rerun.cpuSeconds, rerun.seconds));
  if (first.billedImages !== first.images)
    notes.push(
      `first run: simulator billed ${first.billedImages} images, expected ${first.images}`,
    );
  if (rerun.cachedItems < items)
    notes.push(
      `re-run: ${rerun.cachedItems} of ${items} items cached (${rerun.counts.succeeded ?? 0} rendered again)`,
    );
  if (first.seconds > 60)
    notes.push(`first run took ${first.seconds.toFixed(0)} s: more than the ~60 s planned for`);
  if (errorLines.length > 0)
    notes.push(`${errorLines.length} error log lines, e.g. ${errorLines[0]}`);
  return notes;
}
