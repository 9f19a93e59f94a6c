import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3 } from '../../src/runtime/embedded-s3.js';
import { S3ImageStorage } from '../../src/storage/s3-image-storage.js';
import { startTestS3 } from '../support/s3-server.js';

// Not valid PNG, just bytes a text round trip would corrupt (NUL, high bytes, CR/LF).
const PNG_LIKE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0x80]);

describe('S3ImageStorage on embedded s3rver', () => {
  let s3: Awaited<ReturnType<typeof startTestS3>>;
  const extraStorages: S3ImageStorage[] = [];

  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    for (const storage of extraStorages) storage.close();
    await s3?.stop();
  });

  function storageFor(bucket: string, extra: { listPageSize?: number } = {}): S3ImageStorage {
    const storage = new S3ImageStorage({
      bucket,
      endpoint: s3.endpoint,
      region: s3.region,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: true,
      ...extra,
    });
    extraStorages.push(storage);
    return storage;
  }

  it('round-trips bytes, Content-Type and metadata', async () => {
    await s3.storage.put({
      key: 'batches/b1/cat.png',
      body: PNG_LIKE,
      contentType: 'image/png',
      metadata: { 'prompt-sha256': 'abc123', model: 'gpt-image-1' },
    });
    const got = await s3.storage.get('batches/b1/cat.png');
    expect(got).toEqual({
      key: 'batches/b1/cat.png',
      body: PNG_LIKE,
      contentType: 'image/png',
      metadata: { 'prompt-sha256': 'abc123', model: 'gpt-image-1' },
    });
    expect(Buffer.isBuffer(got?.body)).toBe(true);

    expect(await s3.storage.head('batches/b1/cat.png')).toEqual({
      key: 'batches/b1/cat.png',
      contentType: 'image/png',
      metadata: { 'prompt-sha256': 'abc123', model: 'gpt-image-1' },
      bytes: PNG_LIKE.length,
    });
  });

  it('stores string bodies (manifests) as UTF-8', async () => {
    const manifest = JSON.stringify({ images: ['é', '✓'] });
    await s3.storage.put({ key: 'm.json', body: manifest, contentType: 'application/json' });
    const got = await s3.storage.get('m.json');
    expect(got?.body.toString('utf8')).toBe(manifest);
    expect(got?.contentType).toBe('application/json');
    expect(got?.metadata).toEqual({});
  });

  it('returns undefined for missing keys from get() and head()', async () => {
    expect(await s3.storage.get('nope/missing.png')).toBeUndefined();
    expect(await s3.storage.head('nope/missing.png')).toBeUndefined();
  });

  it('throws (rather than returning undefined) when the bucket itself is missing', async () => {
    await expect(storageFor('no-such-bucket').get('x')).rejects.toMatchObject({
      name: 'NoSuchBucket',
    });
  });

  it('lists every key under a prefix across several pages', async () => {
    const keys = Array.from({ length: 20 }, (_, i) => `list/${String(i).padStart(2, '0')}.png`);
    await Promise.all(
      keys.map((key) => s3.storage.put({ key, body: key, contentType: 'image/png' })),
    );
    // Neighbours that share a string prefix but must not be listed.
    await s3.storage.put({ key: 'listing/other.png', body: 'x', contentType: 'image/png' });

    const paged = storageFor(s3.storage.bucket, { listPageSize: 7 }); // 7 + 7 + 6
    expect(await paged.list('list/')).toEqual(keys);
    expect(await s3.storage.list('list/')).toEqual(keys);
    expect(await paged.list('list/1')).toEqual(keys.slice(10));
    expect(await paged.list('empty/')).toEqual([]);
  });

  it('serves presigned URLs to a plain HTTP client', async () => {
    await s3.storage.put({ key: 'share/pic.png', body: PNG_LIKE, contentType: 'image/png' });
    const url = await s3.storage.presignedUrl('share/pic.png', 60);
    expect(url).toMatch(new RegExp(`^${s3.endpoint}/rendermill-test/share/pic\\.png\\?`));
    expect(url).toContain('X-Amz-Expires=60');

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(PNG_LIKE);
  });

  it('presigned URLs stop working once they expire', async () => {
    // s3rver does not verify SigV4 signatures (it only checks the access key id exists), so this
    // suite cannot prove the signature is right for AWS; it does enforce X-Amz-Expires.
    await s3.storage.put({ key: 'share/short.png', body: PNG_LIKE, contentType: 'image/png' });
    const url = await s3.storage.presignedUrl('share/short.png', 1);
    expect(url).toContain('X-Amz-Credential=S3RVER%2F');
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect((await fetch(url)).status).toBe(403);
  });

  it('names objects with stable s3:// URIs', () => {
    expect(s3.storage.uri('batches/b1/cat.png')).toBe('s3://rendermill-test/batches/b1/cat.png');
  });

  it('ensureBucket() creates a missing bucket and is idempotent', async () => {
    const fresh = storageFor('fresh-bucket');
    await expect(fresh.ping()).rejects.toThrow();
    await fresh.ensureBucket();
    await fresh.ensureBucket();
    await expect(fresh.ping()).resolves.toBeUndefined();
    await fresh.put({ key: 'k', body: 'v', contentType: 'text/plain' });
    expect((await fresh.get('k'))?.body.toString()).toBe('v');
    await s3.storage.ensureBucket(); // already exists: no-op
  });
});

describe('embedded s3rver persistence', () => {
  it('still has buckets and objects after a restart on the same dataDir', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-s3-restart-'));
    const open = async () => {
      const server = await startEmbeddedS3({ dataDir, buckets: ['images'] });
      const storage = new S3ImageStorage({
        bucket: 'images',
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
        forcePathStyle: true,
      });
      return { server, storage };
    };
    try {
      const first = await open();
      await first.storage.put({
        key: 'kept.png',
        body: PNG_LIKE,
        contentType: 'image/png',
        metadata: { batch: 'b7' },
      });
      first.storage.close();
      await first.server.stop();

      const second = await open(); // configureBuckets must tolerate the existing bucket
      try {
        const got = await second.storage.get('kept.png');
        expect(got?.body).toEqual(PNG_LIKE);
        expect(got?.metadata).toEqual({ batch: 'b7' });
        expect(await second.storage.list('')).toEqual(['kept.png']);
      } finally {
        second.storage.close();
        await second.server.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
