import { promptFor, type ClientRunner } from '../scenario.js';
import { parseResult, startAnchorWorker } from './child-job.js';

/** Worker processes take a few hundred ms to load; all of them start calling at this offset. */
const START_DELAY_MS = 3_000;
/** Their CPU is counted from just before they start calling: loading tsx is not pacing work. */
const TRACK_BEFORE_START_MS = 200;

/** The naive anchor: the items split evenly over K worker processes that call flat out. */
export const runNaive: ClientRunner = async ({ stack, scenario, cpu, log, deadlineMs }) => {
  const startAt = Date.now() + START_DELAY_MS;
  const children = Array.from({ length: scenario.workers }, (_, worker) => {
    const prompts: string[] = [];
    for (let i = worker; i < scenario.items; i += scenario.workers)
      prompts.push(promptFor(scenario, i));
    return startAnchorWorker(`naive worker ${worker + 1}`, 'naive-worker.ts', {
      baseUrl: stack.simulator.baseUrl,
      concurrency: scenario.concurrency,
      n: scenario.n,
      prompts,
      startAt,
    });
  });
  try {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, startAt - TRACK_BEFORE_START_MS - Date.now())),
    );
    for (const child of children) cpu.track('workers', child.pid);
    const timer = setTimeout(() => {
      log('deadline passed: stopping the naive workers');
      for (const child of children) child.process.kill('SIGKILL');
    }, deadlineMs + START_DELAY_MS);
    await Promise.all(children.map((child) => child.exited));
    clearTimeout(timer);
    let succeeded = 0;
    const errors: Record<string, number> = {};
    for (const child of children) {
      try {
        const result = parseResult(child);
        succeeded += result.succeeded;
        for (const [why, count] of Object.entries(result.errors))
          errors[why] = (errors[why] ?? 0) + count;
      } catch {
        errors[`${child.name} did not finish`] = 1;
      }
    }
    const notes = Object.entries(errors).map(([why, count]) => `lost to ${why}: ${count}`);
    return { itemsSucceeded: succeeded, itemsLost: scenario.items - succeeded, notes };
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
};
