import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ResultCache, type CachedImage } from '../../src/cache/result-cache.js';
import type { ImageStorage } from '../../src/storage/image-storage.js';
import { startTestRedis } from '../support/redis-server.js';
import { startTestS3 } from '../support/s3-server.js';

/**
 * The cache index and the bucket behind it, on a real redis-server and s3rver: what a lookup
 * costs when the index can vouch for a miss, and how it recovers when Redis lost everything.
 */
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let s3: Awaited<ReturnType<typeof startTestS3>>;
let client: Redis;
let lists: string[];
let cache: ResultCache;

beforeAll(async () => {
  [redis, s3] = await Promise.all([startTestRedis(), startTestS3('rendermill')]);
  client = new Redis(redis.url);
  // The real store, with its LIST requests counted: the one S3 call a lookup may make.
  const counted: ImageStorage = Object.assign(Object.create(s3.storage) as ImageStorage, {
    list: (prefix: string) => {
      lists.push(prefix);
      return s3.storage.list(prefix);
    },
  });
  cache = new ResultCache(client, counted, 'global');
});
afterAll(async () => {
  client?.disconnect();
  await Promise.all([s3?.stop(), redis?.stop()]);
});
beforeEach(async () => {
  lists = [];
  await client.flushall();
});

const hashOf = (c: string) => c.repeat(64);

/** Stores one variant in S3 the way a render does, without telling the index. */
async function storeOnly(hash: string, index: number): Promise<CachedImage> {
  const image = {
    cost_micros: 4_000 + index,
    rendered_at: 1_700_000_000_000,
    model: 'gpt-image-2',
  };
  const key = cache.imageKey('shared', hash, index, 'png');
  await s3.storage.put({
    key,
    body: Buffer.from(`png ${hash} ${index}`),
    contentType: 'image/png',
    metadata: cache.objectMetadata(hash, image),
  });
  return { index, key, format: 'png', bytes: 0, derived: [], ...image };
}

describe('the result cache index', () => {
  it('without an epoch, finds images in S3, re-indexes them and rebuilds itself', async () => {
    const stored = await storeOnly(hashOf('a'), 0);
    const found = await cache.lookup('shared', hashOf('a'), 1);
    expect(found.get(0)).toMatchObject({
      key: stored.key,
      cost_micros: 4_000,
      model: 'gpt-image-2',
    });
    expect(lists).toContain(cache.folder('shared', hashOf('a')));

    // The lookup started a rebuild in the background; once done the index vouches for itself.
    const deadline = Date.now() + 5_000;
    while ((await client.exists('rm:cache:{index}:epoch')) === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await client.exists('rm:cache:{index}:epoch')).toBe(1);
    lists = [];
    expect((await cache.lookup('shared', hashOf('a'), 1)).size).toBe(1);
    expect(lists).toEqual([]); // answered by Redis alone
  });

  it('with an epoch, answers a miss from Redis alone', async () => {
    await cache.rebuildIndex();
    lists = [];
    expect((await cache.lookup('shared', hashOf('b'), 1)).size).toBe(0);
    expect(lists).toEqual([]);
  });

  it('after a rebuild, finds requests that only S3 knew', async () => {
    // Redis lost everything; the bucket still holds two variants of one request.
    await storeOnly(hashOf('c'), 0);
    await storeOnly(hashOf('c'), 1);
    await cache.rebuildIndex();
    const found = await cache.lookup('shared', hashOf('c'), 2);
    expect([...found.keys()].sort()).toEqual([0, 1]);
    expect(found.get(1)?.cost_micros).toBe(4_001);
    lists = [];
    // The marker is gone once the request is indexed: the next lookup is Redis alone.
    expect((await cache.lookup('shared', hashOf('c'), 2)).size).toBe(2);
    expect(lists).toEqual([]);
  });

  it('ignores objects in a request folder that are not its renders', async () => {
    await s3.storage.put({
      key: cache.imageKey('shared', hashOf('d'), 0, 'png'),
      body: Buffer.from('not ours'),
      contentType: 'image/png',
      metadata: { 'request-hash': hashOf('e') },
    });
    expect((await cache.lookup('shared', hashOf('d'), 1)).size).toBe(0);
  });

  it('verifies a trusted miss against S3 when asked: what a crash uploaded but never indexed', async () => {
    await cache.rebuildIndex();
    const stored = await storeOnly(hashOf('f'), 0); // uploaded, then the worker died
    expect((await cache.lookup('shared', hashOf('f'), 1)).size).toBe(0); // trusted miss
    const verified = await cache.lookup('shared', hashOf('f'), 1, { verify: true });
    expect(verified.get(0)?.key).toBe(stored.key);
  });

  it('does not reuse a derived copy of a render that was since replaced', async () => {
    const original = await storeOnly(hashOf('g'), 0);
    const copy = (source: number, name: string) =>
      s3.storage.put({
        key: cache.derivedKey('shared', hashOf('g'), 0, name),
        body: Buffer.from(`copy ${name}`),
        contentType: 'image/webp',
        metadata: { 'source-rendered-at': String(source) },
      });
    await copy(original.rendered_at, '128px.webp');
    await copy(original.rendered_at - 1, '64px.webp'); // made from the render `refresh` replaced
    const found = await cache.lookup('shared', hashOf('g'), 1);
    expect(found.get(0)?.derived.map((d) => d.name)).toEqual(['128px.webp']);
  });
});
