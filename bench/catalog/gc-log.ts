import type { Readable } from 'node:stream';

/**
 * The API runs with `--trace-gc`, which prints a line per collection to stdout. A full
 * collection (Mark-Compact) reads e.g. `Mark-Compact 197.2 (225.6) -> 48.0 (165.9) MB`: the
 * heap before and after, committed memory in parentheses. The "after" is what is still alive.
 */
const FULL_GC = /Mark-Compact[^\d]*([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/;

/** What the API's full collections said while an upload ran. */
export interface FullGcs {
  count: number;
  /** V8 heap in use before each, MiB: how far garbage piled up before it was collected. */
  heapBeforeMiB: number[];
  /** V8 heap still alive after each, MiB: what the upload really held at that moment. */
  heapAfterMiB: number[];
}

/**
 * Collects the full-GC lines a process prints from now until `finish`. RSS alone cannot tell
 * rows held from garbage not yet collected: V8 lets its old generation grow to a few times
 * the live heap before a full collection, so the peak RSS of a long upload is that ceiling.
 */
export class FullGcLog {
  private readonly result: FullGcs = { count: 0, heapBeforeMiB: [], heapAfterMiB: [] };
  private partial = '';
  private readonly listener = (chunk: Buffer) => {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.read(line);
  };

  constructor(private readonly stdout: Readable) {
    stdout.on('data', this.listener);
  }

  private read(line: string) {
    const match = FULL_GC.exec(line);
    if (!match) return;
    this.result.count += 1;
    this.result.heapBeforeMiB.push(Number(match[1]));
    this.result.heapAfterMiB.push(Number(match[3]));
  }

  finish(): FullGcs {
    this.stdout.off('data', this.listener);
    this.read(this.partial);
    return this.result;
  }
}
