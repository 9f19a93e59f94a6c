import path from 'node:path';
import { findFreePort } from '../../src/runtime/free-port.js';
import { startChild, type Child } from './children.js';
import { BENCH_API_KEY, healthy, waitForWorkers, waitUntil } from './rendermill-api.js';
import { cleanEnv, type Stack } from './stack.js';

const CLI = path.resolve('dist/src/cli/main.js');

/** A batch as `GET /v1/batches/:id` shows it, as far as the benches read it. */
export interface BatchView {
  id: string;
  status: string;
  completed_at: string | null;
  counts: Record<string, number> & { total: number };
}

/** One `rendermill api` and N `rendermill worker` processes, ready. */
export interface RendermillProcesses {
  apiUrl: string;
  api: Child;
  /** The worker processes, for the CPU meter. */
  workers: Child[];
  /** Error-level lines the processes logged, for the notes. */
  errorLines(): string[];
  stop(): Promise<void>;
}

/**
 * rendermill exactly as production runs it: one `rendermill api` and N `rendermill worker`
 * processes, configured only through the environment (the stack's, plus `env`), so whatever
 * the service ships is what gets measured. Resolves once the API answers and every worker has
 * registered with its queue; on failure, stops them and says why, in the workers' own words.
 */
export async function startRendermillProcesses(
  stack: Stack,
  options: { workers: number; env: Record<string, string> },
): Promise<RendermillProcesses> {
  const port = await findFreePort();
  const env = cleanEnv({
    ...stack.rendermillEnv(),
    RENDERMILL_API_KEYS: `bench=${BENCH_API_KEY}`,
    PORT: String(port),
    // Each worker would serve /metrics on the same default port: only the first could.
    RENDERMILL_METRICS_PORT: '0',
    ...options.env,
  });
  const apiUrl = `http://127.0.0.1:${port}`;
  const api = startChild('rendermill api', process.execPath, [CLI, 'api'], env);
  const workers = Array.from({ length: options.workers }, (_, i) =>
    startChild(`rendermill worker ${i + 1}`, process.execPath, [CLI, 'worker'], env),
  );
  const children = [api, ...workers];
  const stop = async () => {
    await Promise.all(children.map((child) => child.stop()));
  };
  try {
    await waitUntil(
      () => healthy(apiUrl),
      30_000,
      () => `rendermill api never answered:\n${api.output()}`,
    );
    await waitForWorkers(stack.redis.url, options.workers);
  } catch (error) {
    await stop();
    // The shared helper says only how many registered; the workers' own words say why.
    const outputs = workers.map((worker) => `${worker.name}:\n${worker.output() || '(no output)'}`);
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n${outputs.join('\n')}`,
    );
  }
  return {
    apiUrl,
    api,
    workers,
    stop,
    errorLines: () =>
      children.flatMap((child) =>
        child
          .output()
          .split('\n')
          .filter((line) => /"level":(50|60)/.test(line))
          .map((line) => `${child.name}: ${line.slice(0, 300)}`),
      ),
  };
}
