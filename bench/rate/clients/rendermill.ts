import path from 'node:path';
import { findFreePort } from '../../../src/runtime/free-port.js';
import { startChild, type Child } from '../../support/children.js';
import {
  BENCH_API_KEY,
  callApi,
  healthy,
  waitForWorkers,
  waitUntil,
} from '../../support/rendermill-api.js';
import { cleanEnv } from '../../support/stack.js';
import { REQUEST_SHAPE, promptFor, type ClientRunner } from '../scenario.js';

const CLI = path.resolve('dist/src/cli/main.js');
const POLL_MS = 250;

interface BatchView {
  id: string;
  status: string;
  counts: Record<string, number> & { total: number };
}

/**
 * The real thing: K `rendermill worker` processes and one `rendermill api`, exactly as they
 * run in production, so whatever limiter rendermill ships is what gets measured. The batch is
 * submitted over HTTP and polled until it completes.
 */
export const runRendermill: ClientRunner = async ({ stack, scenario, cpu, log, deadlineMs }) => {
  const port = await findFreePort();
  const env = cleanEnv({
    ...stack.rendermillEnv(),
    RENDERMILL_IMAGES_PER_MINUTE: String(scenario.configuredLimit),
    RENDERMILL_CONCURRENCY: String(scenario.concurrency),
    // rendermill's clock knob, matching the simulator's minuteMs (60,000 is a real minute).
    RENDERMILL_LIMIT_MINUTE_MS: String(scenario.minuteMs),
    // As in the old bench: each worker would serve /metrics on the same default port.
    RENDERMILL_METRICS_PORT: '0',
    RENDERMILL_API_KEYS: `bench=${BENCH_API_KEY}`,
    PORT: String(port),
  });
  const apiUrl = `http://127.0.0.1:${port}`;
  const children: Child[] = [];
  try {
    const api = startChild('rendermill api', process.execPath, [CLI, 'api'], env);
    children.push(api);
    for (let i = 0; i < scenario.workers; i++) {
      children.push(
        startChild(`rendermill worker ${i + 1}`, process.execPath, [CLI, 'worker'], env),
      );
    }
    await waitUntil(
      () => healthy(apiUrl),
      30_000,
      () => `rendermill api never answered:\n${api.output()}`,
    );
    await waitForWorkers(stack.redis.url, scenario.workers);
    for (const child of children)
      cpu.track(child.name.startsWith('rendermill worker') ? 'workers' : 'api', child.pid);

    const items = Array.from({ length: scenario.items }, (_, i) => ({
      id: `item-${i}`,
      prompt: promptFor(scenario, i),
    }));
    const { model, size, quality } = REQUEST_SHAPE;
    const { n } = scenario;
    let submitted: BatchView;
    try {
      submitted = await callApi<BatchView>(apiUrl, 'POST', '/v1/batches', {
        model,
        size,
        quality,
        n,
        items,
      });
    } catch (error) {
      // A batch rendermill refuses outright (e.g. n larger than the limit allows at once) is a
      // result of the row, every item lost, not a reason to stop the whole run.
      const why = error instanceof Error ? error.message : String(error);
      log(`batch refused: ${why.slice(0, 200)}`);
      return {
        itemsSucceeded: 0,
        itemsLost: scenario.items,
        notes: [`batch refused at submission: ${why.slice(0, 300)}`],
      };
    }

    const deadline = Date.now() + deadlineMs;
    let lastLog = Date.now();
    for (;;) {
      const batch = await callApi<BatchView>(apiUrl, 'GET', `/v1/batches/${submitted.id}`);
      const done = batch.counts.total - (batch.counts.queued ?? 0) - (batch.counts.running ?? 0);
      if (batch.status === 'completed' || Date.now() > deadline) {
        const succeeded = (batch.counts.succeeded ?? 0) + (batch.counts.cached ?? 0);
        const notes = Object.entries(batch.counts)
          .filter(([status, count]) => count > 0 && !['total', 'succeeded'].includes(status))
          .map(([status, count]) => `${count} items ${status}`);
        if (batch.status !== 'completed')
          notes.push(`batch not completed within ${deadlineMs / 1000} s`);
        for (const child of children) {
          const errors = child
            .output()
            .split('\n')
            .filter((line) => /"level":(50|60)/.test(line));
          if (errors.length > 0)
            notes.push(
              `${child.name}: ${errors.length} error log lines, e.g. ${errors[0]!.slice(0, 300)}`,
            );
        }
        return { itemsSucceeded: succeeded, itemsLost: scenario.items - succeeded, notes };
      }
      if (Date.now() - lastLog >= 5_000) {
        log(`${done}/${batch.counts.total} items done`);
        lastLog = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    await Promise.all(children.map((child) => child.stop()));
  }
};
