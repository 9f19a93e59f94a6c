import { ListObjectsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { S3ImageStorage } from '../../src/storage/s3-image-storage.js';
import { closedPort } from '../support/closed-port.js';
import { startSigV4Server } from '../support/sigv4-server.js';

/**
 * S3ImageStorage sends PutObject and the empty ListObjects itself (s3-direct-requests.ts), not
 * through the SDK's middleware stack. Its requests must be what S3 accepts: checked here by a
 * server that verifies SigV4 from the raw request, independently of AWS's code — and shown to
 * accept what the SDK itself sends, and to refuse a request signed with another key.
 */
const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const BODY = Buffer.from('not really a png, but bytes S3 stores as they are');
const METADATA = { 'rendermill-hash': 'ab12', 'rendermill-cost-micros': '40000' };

let s3: Awaited<ReturnType<typeof startSigV4Server>>;
beforeAll(async () => {
  s3 = await startSigV4Server(CREDENTIALS);
});
afterAll(() => s3?.stop());
beforeEach(() => {
  s3.received.length = 0;
  s3.list([]);
  s3.failListingsWith(undefined);
});

function storage(secretAccessKey = CREDENTIALS.secretAccessKey, endpoint = s3.url) {
  return new S3ImageStorage({
    bucket: 'images',
    endpoint,
    region: 'eu-west-1',
    accessKeyId: CREDENTIALS.accessKeyId,
    secretAccessKey,
    forcePathStyle: true,
  });
}

function sdkClient() {
  return new S3Client({
    region: 'eu-west-1',
    endpoint: s3.url,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

describe('the verifying server', () => {
  it('accepts what the SDK sends, and refuses a request signed with another key', async () => {
    const client = sdkClient();
    await client.send(
      new PutObjectCommand({
        Bucket: 'images',
        Key: "a folder/it's (1)*.png",
        Body: BODY,
        ContentType: 'image/png',
        Metadata: METADATA,
      }),
    );
    await client.send(new ListObjectsCommand({ Bucket: 'images', Prefix: 'images/acme/ab/' }));
    client.destroy();
    expect(s3.received.map((r) => r.refused)).toEqual([undefined, undefined]);

    // Signed for another region than the bucket's: refused, as S3 refuses it.
    const elsewhere = new S3ImageStorage({
      bucket: 'images',
      endpoint: s3.url,
      region: 'us-west-2',
      ...CREDENTIALS,
      forcePathStyle: true,
    });
    await expect(
      elsewhere.put({ key: 'x.png', body: BODY, contentType: 'image/png' }),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch' });
    elsewhere.close();
    expect(s3.received.at(-1)?.refused).toBe('signed for region us-west-2, not eu-west-1');

    const wrong = storage('not-the-secret');
    await expect(
      wrong.put({ key: 'x.png', body: BODY, contentType: 'image/png' }),
    ).rejects.toMatchObject({
      name: 'SignatureDoesNotMatch',
      $metadata: { httpStatusCode: 403 },
    });
    wrong.close();
    expect(s3.received.at(-1)?.refused).toBe('the signature does not match');
  });
});

describe('PutObject without the SDK', () => {
  it('is signed as S3 checks it, and carries the body, the content type and the metadata', async () => {
    const store = storage();
    const keys = ['images/acme/ab/0123/0.png', "odd keys/it's (1)*~ü+&=.png"];
    for (const key of keys) {
      await store.put({ key, body: BODY, contentType: 'image/png', metadata: METADATA });
    }
    await store.put({
      key: 'manifests/b.json',
      body: '{"ok":true}',
      contentType: 'application/json',
    });
    store.close();

    expect(s3.received.map((r) => [r.method, r.refused])).toEqual([
      ['PUT', undefined],
      ['PUT', undefined],
      ['PUT', undefined],
    ]);
    const [first, odd, manifest] = s3.received;
    expect(decodeURIComponent(first!.url)).toBe(`/images/${keys[0]}`);
    expect(decodeURIComponent(odd!.url)).toBe(`/images/${keys[1]}`);
    expect(first!.body.equals(BODY)).toBe(true);
    expect(first!.headers).toMatchObject({
      'content-type': 'image/png',
      'content-length': String(BODY.byteLength),
      'x-amz-meta-rendermill-hash': 'ab12',
      'x-amz-meta-rendermill-cost-micros': '40000',
      // A server on this machine: nothing in between can swap the body.
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
    });
    expect(manifest!.body.toString()).toBe('{"ok":true}');
    expect(manifest!.headers['content-type']).toBe('application/json');
  });

  it('signs the body’s hash over plain http to another host', async () => {
    // 127.0.0.2 is this machine too, but not one of the loopback names the storage trusts
    // (localhost, 127.0.0.1, ::1): it stands for another host.
    const other = await startSigV4Server(CREDENTIALS, { host: '127.0.0.2' });
    const store = storage(CREDENTIALS.secretAccessKey, other.url);
    await store.put({ key: 'b/1.png', body: BODY, contentType: 'image/png' });
    store.close();
    await other.stop();
    const [put] = other.received;
    expect(put!.refused).toBeUndefined();
    expect(put!.headers['x-amz-content-sha256']).toBe(
      createHash('sha256').update(BODY).digest('hex'),
    );
  });

  it('fails with the reason when S3 cannot be reached', async () => {
    const store = storage(CREDENTIALS.secretAccessKey, `http://127.0.0.1:${await closedPort()}`);
    await expect(
      store.put({ key: 'b/1.png', body: BODY, contentType: 'image/png' }),
    ).rejects.toThrow(/ECONNREFUSED/);
    store.close();
  });
});

describe('listing a request’s folder', () => {
  it('fails, never answers "empty", when S3 cannot list: no image is bought on a listing that failed', async () => {
    s3.failListingsWith(500);
    const store = storage();
    await expect(store.list('images/acme/ab/0123/')).rejects.toMatchObject({
      $metadata: { httpStatusCode: 500 },
    });
    store.close();
    // The quick look failed, then the SDK's listing with its own retries.
    expect(s3.received.length).toBeGreaterThan(2);
    expect(s3.received.every((r) => r.method === 'GET' && r.refused === undefined)).toBe(true);
  });

  it('answers an empty folder from one signed request, and reads a full one through the SDK', async () => {
    const store = storage();
    expect(await store.list('images/acme/ab/0123/')).toEqual([]);
    expect(s3.received).toHaveLength(1);
    expect(s3.received[0]!.refused).toBeUndefined();
    expect(s3.received[0]!.url).toContain('prefix=images%2Facme%2Fab%2F0123%2F');

    s3.list(['images/acme/ab/0123/0.png', 'images/acme/ab/0123/0-thumb.webp']);
    expect(await store.list('images/acme/ab/0123/')).toEqual([
      'images/acme/ab/0123/0.png',
      'images/acme/ab/0123/0-thumb.webp',
    ]);
    store.close();
    // The quick look, then the SDK's own listing: every one signed as S3 checks it.
    expect(s3.received.map((r) => [r.method, r.refused])).toEqual([
      ['GET', undefined],
      ['GET', undefined],
      ['GET', undefined],
    ]);
  });
});
