import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readCatalogStream, type CatalogLine } from '../../src/catalog/catalog-stream.js';
import { CatalogLineTooLongError } from '../../src/catalog/line-length-guard.js';

async function readAll(input: Readable, format: 'csv' | 'jsonl', max: number) {
  const lines: CatalogLine[] = [];
  try {
    for await (const line of readCatalogStream(input, format, max)) lines.push(line);
    return { lines };
  } catch (error) {
    return { lines, error };
  }
}

/** A stream of `text` in chunks of `size` bytes, counting how many bytes were read from it. */
function chunked(text: string, size: number) {
  const bytes = Buffer.from(text);
  const source = { read: 0 };
  const stream = Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) {
        source.read = Math.min(bytes.length, i + size);
        yield bytes.subarray(i, i + size);
      }
    })(),
  );
  return { stream, source };
}

describe('catalog lines over the bound', () => {
  it('a JSON Lines line one byte over is refused, naming its line', async () => {
    const long = JSON.stringify({ sku: 'c', prompt: 'x'.repeat(100) });
    const text = `{"sku":"a","prompt":"a"}\n{"sku":"b","prompt":"b"}\n${long}\n`;
    const { lines, error } = await readAll(
      chunked(text, 7).stream,
      'jsonl',
      Buffer.byteLength(long) - 1,
    );
    expect(error).toBeInstanceOf(CatalogLineTooLongError);
    expect(error).toMatchObject({ line: 3, code: 'line_too_long' });
    expect(lines.map((l) => l.values?.sku)).toEqual(['a', 'b']);
  });

  it('a line exactly at the bound is read', async () => {
    const long = JSON.stringify({ sku: 'c', prompt: 'x'.repeat(100) });
    const { lines, error } = await readAll(
      chunked(`${long}\n`, 16).stream,
      'jsonl',
      Buffer.byteLength(long),
    );
    expect(error).toBeUndefined();
    expect(lines).toHaveLength(1);
  });

  it('a CSV line over the bound is refused, naming its line', async () => {
    const text = `sku,prompt\na,a mug\nb,${'y'.repeat(500)}\nc,a cup\n`;
    // Rows csv-parse still held when the line was refused are not handed out: the catalog is
    // refused whole either way.
    const { error } = await readAll(chunked(text, 64).stream, 'csv', 256);
    expect(error).toBeInstanceOf(CatalogLineTooLongError);
    expect(error).toMatchObject({ line: 3 });
  });

  it('stops reading a line without end near the bound: the rest of the input stays unread', async () => {
    // 8 MiB without a newline, in 64 KiB chunks; the bound is 256 KiB.
    const { stream, source } = chunked(
      '{"sku":"a","prompt":"' + 'z'.repeat(8 * 1024 * 1024),
      65_536,
    );
    const { error } = await readAll(stream, 'jsonl', 256 * 1024);
    expect(error).toBeInstanceOf(CatalogLineTooLongError);
    // Streams read ahead a little: a few chunks past the bound, never the whole input.
    expect(source.read).toBeLessThan(1024 * 1024);
  });

  it('CRLF line endings and many short lines are fine', async () => {
    const text = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ sku: `s${i}` })).join(
      '\r\n',
    );
    const { lines, error } = await readAll(chunked(text, 1000).stream, 'jsonl', 64);
    expect(error).toBeUndefined();
    expect(lines).toHaveLength(1000);
  });
});
