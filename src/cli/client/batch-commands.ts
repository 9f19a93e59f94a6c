import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { formatDollars } from '../progress.js';
import type { ApiClient, BatchStatusFilter } from './api-client.js';
import type { BatchView } from './api-types.js';
import { itemCounts, itemsDone, printBatch } from './batch-summary.js';
import { CLIENT_EXIT } from './exit-codes.js';
import { note, printJson, printTable, say, shortTime } from './output.js';

/** `rendermill status <batch-id>`. */
export async function statusCommand(
  client: ApiClient,
  id: string,
  options: { json?: boolean },
): Promise<number> {
  const batch = await client.getBatch(id);
  if (options.json) printJson(batch);
  else printBatch(batch);
  return CLIENT_EXIT.ok;
}

export interface ListOptions {
  status?: BatchStatusFilter;
  schedule?: string;
  /** Most batches shown (`--limit`, whose default the command line sets). */
  limit: number;
  json?: boolean;
}

/** Batches asked of the API per page; the API may answer fewer. */
const LIST_PAGE_SIZE = 100;

/** `rendermill list`: the newest batches, following pages only until `--limit` are shown. */
export async function listCommand(client: ApiClient, options: ListOptions): Promise<number> {
  const { limit } = options;
  const batches: BatchView[] = [];
  let cursor: string | undefined;
  let more = false;
  do {
    const page = await client.listBatches({
      status: options.status,
      scheduleId: options.schedule,
      limit: Math.min(limit - batches.length, LIST_PAGE_SIZE),
      cursor,
    });
    batches.push(...page.data.slice(0, limit - batches.length));
    cursor = page.next_cursor ?? undefined;
    more = cursor !== undefined;
    // An empty page with a cursor would loop for ever.
    if (page.data.length === 0) break;
  } while (more && batches.length < limit);

  if (options.json) {
    printJson(batches);
    return CLIENT_EXIT.ok;
  }
  if (batches.length === 0) {
    note('no batches');
    return CLIENT_EXIT.ok;
  }
  printTable(
    ['ID', 'STATUS', 'DONE', 'SPEND', 'BUDGET', 'CREATED', 'SCHEDULE'],
    batches.map((b) => [
      b.id,
      b.status,
      `${itemsDone(b)}/${b.counts.total}`,
      formatDollars(b.spend_usd),
      b.budget_usd === null ? '-' : formatDollars(b.budget_usd),
      shortTime(b.created_at),
      b.schedule_id ?? '-',
    ]),
  );
  if (more) note(`(the first ${batches.length}; --limit shows more)`);
  return CLIENT_EXIT.ok;
}

/**
 * `rendermill manifest <batch-id>`: the manifest as the API serves it (image URLs presigned),
 * copied to stdout or `--out` as it arrives. A file is written beside its name and renamed
 * when complete, so a cut download never leaves half a manifest under that name.
 */
export async function manifestCommand(
  client: ApiClient,
  id: string,
  options: { format?: 'json' | 'csv'; out?: string },
): Promise<number> {
  const format = options.format ?? 'json';
  const body = Readable.fromWeb(
    (await client.manifestStream(id, format)) as NodeReadableStream<Uint8Array>,
  );
  if (!options.out) {
    for await (const chunk of body) {
      if (!process.stdout.write(chunk as Uint8Array)) await once(process.stdout, 'drain');
    }
    return CLIENT_EXIT.ok;
  }
  const partial = `${options.out}.part`;
  try {
    await pipeline(body, createWriteStream(partial));
    await rename(partial, options.out);
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  note(`manifest of ${id} (${format}) written to ${options.out}`);
  return CLIENT_EXIT.ok;
}

/** `rendermill cancel <batch-id>`: queued items are cancelled; items being rendered finish. */
export async function cancelCommand(
  client: ApiClient,
  id: string,
  options: { json?: boolean },
): Promise<number> {
  const batch = await client.cancelBatch(id);
  if (options.json) {
    printJson(batch);
    return CLIENT_EXIT.ok;
  }
  const running = batch.counts.running;
  say(
    `Batch ${batch.id} ${batch.status}: ${itemCounts(batch)}${running > 0 ? ` · ${running} in flight finish` : ''}`,
  );
  return CLIENT_EXIT.ok;
}
