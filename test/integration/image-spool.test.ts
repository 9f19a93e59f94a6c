import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageSpool, type SpoolEntry } from '../../src/storage/image-spool.js';
import { startTestRedis } from '../support/redis-server.js';

let server: Awaited<ReturnType<typeof startTestRedis>>;
let redis: Redis;
let run = 0;

beforeAll(async () => {
  server = await startTestRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

/** A spool of its own (its own key prefix) per test. */
const spoolOf = (maxBytes: number, ttlMs?: number) =>
  new ImageSpool(redis, { maxBytes, ttlMs }, `spool-test-${++run}`);

/** An entry of one object of `bytes` bytes, every byte value in it. */
const entryOf = (bytes: number, key = 'images/a/0.png'): SpoolEntry => ({
  objects: [
    {
      key,
      body: Buffer.from(Array.from({ length: bytes }, (_, i) => i % 256)),
      contentType: 'image/png',
      metadata: { 'request-hash': 'a', 'cost-micros': '16000' },
    },
  ],
  about: { images: [{ index: 0 }] },
});

describe('the image spool', () => {
  it('gives back the bodies byte for byte, with their keys, types, metadata and note', async () => {
    const spool = spoolOf(10_000);
    const entry: SpoolEntry = {
      objects: [entryOf(700).objects[0]!, { ...entryOf(300, 'images/a/1.png').objects[0]! }],
      about: { images: [{ index: 0 }, { index: 1 }] },
    };
    expect(await spool.put('b1:i1', entry)).toEqual({ kept: true, usedBytes: 1000 });
    expect(await spool.get('b1:i1')).toEqual(entry);
    expect(await spool.entries()).toEqual(['b1:i1']);
    await spool.remove('b1:i1');
    expect(await spool.get('b1:i1')).toBeUndefined();
    expect(await spool.entries()).toEqual([]);
    expect(await spool.usedBytes()).toBe(0);
  });

  it('refuses an entry that would take it past its cap, and frees room on removal', async () => {
    const spool = spoolOf(1000);
    expect(await spool.put('one', entryOf(600))).toEqual({ kept: true, usedBytes: 600 });
    expect(await spool.put('two', entryOf(401))).toEqual({
      kept: false,
      usedBytes: 600,
      maxBytes: 1000,
    });
    expect(await spool.get('two')).toBeUndefined();
    expect(await spool.put('two', entryOf(400))).toEqual({ kept: true, usedBytes: 1000 });
    // An entry put again replaces itself: its old size does not count against it.
    expect(await spool.put('one', entryOf(550))).toEqual({ kept: true, usedBytes: 950 });
    expect(await spool.usedBytes()).toBe(950);
    await spool.remove('one');
    expect(await spool.put('three', entryOf(600))).toEqual({ kept: true, usedBytes: 1000 });
    expect((await spool.entries()).sort()).toEqual(['three', 'two']);
  });

  it('drops an entry after its time to live, and no longer counts it against the cap', async () => {
    const spool = spoolOf(1000, 300);
    expect((await spool.put('old', entryOf(900))).kept).toBe(true);
    expect((await spool.put('new', entryOf(900))).kept).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await spool.get('old')).toBeUndefined();
    expect(await spool.entries()).toEqual([]);
    expect(await spool.usedBytes()).toBe(0);
    expect(await spool.put('new', entryOf(900))).toEqual({ kept: true, usedBytes: 900 });
  });
});
