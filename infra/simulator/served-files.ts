import { randomUUID } from 'node:crypto';

/** An image kept for a `url` answer until it expires. */
export interface ServedFile {
  data: Buffer;
  /** Its content type, e.g. image/png. */
  type: string;
  /** Epoch ms after which it is gone, as OpenAI's image URLs expire. */
  expires: number;
}

/** How often expired images are dropped even if nobody asks for them again. */
const SWEEP_INTERVAL_MS = 10_000;

/**
 * The images behind `url` answers (DALL·E's default), served under `/files/…` until they expire.
 * A sweep drops expired ones so a long run of url answers does not grow the heap without end.
 */
export class ServedFiles {
  private readonly files = new Map<string, ServedFile>();
  private readonly sweep: NodeJS.Timeout;

  constructor() {
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const [id, file] of this.files) if (file.expires < now) this.files.delete(id);
    }, SWEEP_INTERVAL_MS);
    // The sweep alone must not keep a process (a test, the CLI) alive.
    this.sweep.unref();
  }

  /** Keeps `data` for `ttlMs` and returns the id it is served under. */
  add(file: { data: Buffer; type: string; ttlMs: number }): string {
    const id = randomUUID();
    this.files.set(id, { data: file.data, type: file.type, expires: Date.now() + file.ttlMs });
    return id;
  }

  /** The file with this id, or undefined when unknown or expired (an expired one is dropped). */
  get(id: string): ServedFile | undefined {
    const file = this.files.get(id);
    if (!file || file.expires < Date.now()) {
      this.files.delete(id);
      return undefined;
    }
    return file;
  }

  /** Stops the sweep and drops every file. */
  close(): void {
    clearInterval(this.sweep);
    this.files.clear();
  }
}
