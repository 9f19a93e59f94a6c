import { randomBytes } from 'node:crypto';

/** What OpenAI's Files API knows a file for: inputs a client uploads, outputs a batch writes. */
export type FilePurpose = 'batch' | 'batch_output';

/** A file of the Files API, its content kept in memory as the chunks it was written in. */
export interface StoredFile {
  id: string;
  filename: string;
  purpose: FilePurpose;
  bytes: number;
  /** Epoch seconds, as OpenAI gives every timestamp. */
  createdAt: number;
  /** Chunks rather than one Buffer: an output file of large images can outgrow a Buffer. */
  chunks: Buffer[];
}

/** The File object as OpenAI answers it. */
export function fileObject(file: StoredFile) {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: null,
    status_details: null,
  };
}

/** One page of a cursor list: `{object: 'list', data, first_id, last_id, has_more}`. */
export function cursorPage<T extends { id: string }, A>(
  items: readonly T[],
  query: { after?: string | undefined; limit: number },
  answer: (item: T) => A,
) {
  const start = query.after ? items.findIndex((item) => item.id === query.after) + 1 : 0;
  // An unknown cursor lists nothing rather than everything: a client must not loop forever.
  const page = query.after && start === 0 ? [] : items.slice(start, start + query.limit);
  return {
    object: 'list',
    data: page.map(answer),
    first_id: page[0]?.id ?? null,
    last_id: page.at(-1)?.id ?? null,
    has_more: start + page.length < items.length && page.length > 0,
  };
}

/** An id in OpenAI's style: the prefix, then random letters and digits. */
export function openAiId(prefix: string): string {
  return prefix + randomBytes(18).toString('base64url').replace(/[-_]/g, 'x');
}

/** The Files API's store: every file, in the order it was created. */
export class BatchFiles {
  private readonly files = new Map<string, StoredFile>();

  add(input: { filename: string; purpose: FilePurpose; chunks: Buffer[] }): StoredFile {
    const file: StoredFile = {
      ...input,
      id: openAiId('file-'),
      bytes: input.chunks.reduce((sum, chunk) => sum + chunk.length, 0),
      createdAt: Math.floor(Date.now() / 1000),
    };
    this.files.set(file.id, file);
    return file;
  }

  get(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  delete(id: string): boolean {
    return this.files.delete(id);
  }

  /** The files of `purpose` (all when absent), oldest first or newest first. */
  list(purpose: string | undefined, order: 'asc' | 'desc'): StoredFile[] {
    const files = [...this.files.values()].filter((file) => !purpose || file.purpose === purpose);
    return order === 'desc' ? files.reverse() : files;
  }

  clear(): void {
    this.files.clear();
  }
}
