import path from 'node:path';
import { Readable } from 'node:stream';
import { findFreePort } from '../../src/runtime/free-port.js';
import { startChild, type Child } from '../support/children.js';
import { BENCH_API_KEY, healthy, waitUntil } from '../support/rendermill-api.js';
import { cleanEnv, type Stack } from '../support/stack.js';
import { catalogQuery, csvCatalog, jsonBatchBody } from './shape.js';

const CLI = path.resolve('dist/src/cli/main.js');
/** Rows of the warm-up uploads: every code path runs once before anything is measured. */
const WARM_UP_ROWS = 200;

export type BodyKind = 'csv' | 'json';
export type Endpoint = 'submit' | 'estimate';

const ROUTES: Record<Endpoint, string> = {
  submit: '/v1/batches',
  estimate: '/v1/batches/estimate',
};

/** What the API answered about an upload: the rows it took, and the rows it refused. */
export interface UploadAnswer {
  accepted: number;
  rejected: number;
  /** The batch's id (submit only). */
  batchId: string | null;
}

/** A `rendermill api` process, alone: no worker, so queued render jobs just wait in Redis. */
export interface Api {
  child: Child;
  /**
   * Sends `rows` rows and resolves with the answer. The JSON body must be built by the
   * caller beforehand (`body`), so its making is not timed as the API's work.
   */
  upload(endpoint: Endpoint, kind: BodyKind, rows: number, body?: string): Promise<UploadAnswer>;
  stop(): Promise<void>;
}

/**
 * Starts `rendermill api` as production runs it (configured only through the environment),
 * waits for its health check and sends it one small upload of each kind, so that lazy
 * loading and the first compilations are paid before anything is measured.
 */
export async function startApi(
  stack: Stack,
  /** Node options for the API process only, for diagnosis (`--trace-gc`, `--heap-prof` …). */
  nodeOptions: string[] = [],
): Promise<Api> {
  const port = await findFreePort();
  const env = cleanEnv({
    ...stack.rendermillEnv(),
    RENDERMILL_API_KEYS: `bench=${BENCH_API_KEY}`,
    PORT: String(port),
  });
  const apiUrl = `http://127.0.0.1:${port}`;
  const child = startChild('rendermill api', process.execPath, [...nodeOptions, CLI, 'api'], env);

  const upload: Api['upload'] = async (endpoint, kind, rows, body) => {
    const headers = { authorization: `Bearer ${BENCH_API_KEY}` };
    const response =
      kind === 'csv'
        ? await fetch(`${apiUrl}${ROUTES[endpoint]}?${catalogQuery()}`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'text/csv' },
            // A stream, not a string: the request pulls rows from the generator as it sends.
            body: Readable.toWeb(csvCatalog(rows)) as ReadableStream<Uint8Array>,
            duplex: 'half',
          })
        : await fetch(`${apiUrl}${ROUTES[endpoint]}`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: body ?? jsonBatchBody(rows),
          });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(
        `${kind} ${endpoint} of ${rows} rows: HTTP ${response.status} ${text.slice(0, 500)}`,
      );
    }
    const answer = JSON.parse(text) as {
      id?: string;
      items?: number;
      counts?: { total: number };
      rejected: { count: number };
    };
    return {
      accepted: endpoint === 'submit' ? (answer.counts?.total ?? 0) : (answer.items ?? 0),
      rejected: answer.rejected.count,
      batchId: answer.id ?? null,
    };
  };

  try {
    await waitUntil(
      () => healthy(apiUrl),
      30_000,
      () => `rendermill api never answered:\n${child.output()}`,
    );
    for (const kind of ['csv', 'json'] as const) {
      for (const endpoint of ['submit', 'estimate'] as const) {
        await upload(endpoint, kind, WARM_UP_ROWS);
      }
    }
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { child, upload, stop: () => child.stop() };
}
