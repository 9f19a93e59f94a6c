import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../../support/children.js';
import { cleanEnv } from '../../support/stack.js';

/** What the driver hands an anchor's worker process (as JSON in BENCH_JOB). */
export interface NaiveJob {
  baseUrl: string;
  concurrency: number;
  /** Images per request. */
  n: number;
  prompts: string[];
  /** Epoch ms at which every worker starts, so the K processes begin together. */
  startAt: number;
}

export interface BullmqJob {
  baseUrl: string;
  redisUrl: string;
  queue: string;
  prefix: string;
  concurrency: number;
  /** Images per request. */
  n: number;
  limiter: { max: number; duration: number };
}

/** What an anchor worker prints as its last line: `RESULT {"succeeded":…,"lost":…,"errors":{…}}`. */
export interface WorkerResult {
  succeeded: number;
  lost: number;
  /** Why items were lost, counted by error message. */
  errors: Record<string, number>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Anchor workers are TypeScript run through tsx's loader: they are bench code, not part of
 * the build. Each is its own process, as K real workers would be.
 */
export function startAnchorWorker(name: string, file: string, job: NaiveJob | BullmqJob): Child {
  return startChild(
    name,
    process.execPath,
    ['--import', 'tsx', path.join(here, file)],
    cleanEnv({ BENCH_JOB: JSON.stringify(job) }),
  );
}

export function readJob<T>(): T {
  const raw = process.env.BENCH_JOB;
  if (!raw) throw new Error('BENCH_JOB is not set: this file is started by the rate bench');
  return JSON.parse(raw) as T;
}

export function parseResult(child: Child): WorkerResult {
  const line = /RESULT (\{.*\})/.exec(child.output());
  if (!line) throw new Error(`${child.name} printed no RESULT line:\n${child.output()}`);
  return JSON.parse(line[1]!) as WorkerResult;
}

/** Counts an error under a short, stable description (status and code, not the whole message). */
export function describeError(error: unknown): string {
  const e = error as { status?: number; code?: string | null; message?: string };
  if (e.status !== undefined) return `HTTP ${e.status} ${e.code ?? ''}`.trim();
  return (e.message ?? String(error)).slice(0, 120);
}
