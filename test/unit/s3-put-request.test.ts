import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3ImageStorage } from '../../src/storage/s3-image-storage.js';

interface SentRequest {
  protocol: string;
  hostname: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/** An HTTP handler that keeps what the SDK sends and answers every request with an empty 200. */
function capturingHandler(sent: SentRequest[]) {
  return {
    handle: async (request: SentRequest) => {
      sent.push({ ...request, headers: { ...request.headers } });
      return { response: { statusCode: 200, headers: {}, body: Readable.from([]) } };
    },
  };
}

const BODY = Buffer.from('not really a png, but bytes S3 stores as they are');
const METADATA = { 'rendermill-hash': 'ab12', 'rendermill-cost-micros': '40000' };
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

async function sentByPut(endpoint: string | undefined): Promise<SentRequest> {
  const sent: SentRequest[] = [];
  const storage = new S3ImageStorage({
    bucket: 'images',
    endpoint,
    region: 'eu-west-1',
    ...CREDENTIALS,
    forcePathStyle: true,
    requestHandler: capturingHandler(sent),
  });
  await storage.put({ key: 'b/1.png', body: BODY, contentType: 'image/png', metadata: METADATA });
  storage.close();
  expect(sent).toHaveLength(1);
  return sent[0]!;
}

/** The same PutObject through a client configured as S3ImageStorage's, with nothing removed. */
async function sentByPlainSdk(endpoint: string | undefined): Promise<SentRequest> {
  const sent: SentRequest[] = [];
  const client = new S3Client({
    region: 'eu-west-1',
    endpoint,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: capturingHandler(sent),
  });
  await client.send(
    new PutObjectCommand({
      Bucket: 'images',
      Key: 'b/1.png',
      Body: BODY,
      ContentType: 'image/png',
      Metadata: METADATA,
    }),
  );
  client.destroy();
  return sent[0]!;
}

function signedHeaders(request: SentRequest): string[] {
  const match = /SignedHeaders=([^,]+)/.exec(request.headers.authorization ?? '');
  return match?.[1]?.split(';') ?? [];
}

/** Headers that differ between any two sends: the clock, the signature, a per-call id. */
const PER_CALL = new Set(['authorization', 'x-amz-date', 'amz-sdk-invocation-id']);
const stable = (headers: Record<string, string>) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_CALL.has(name)));

describe('the PutObject request S3ImageStorage has the SDK send', () => {
  it.each([
    ['AWS (https)', undefined],
    ['an https endpoint', 'https://s3.example.net'],
    ['a loopback http endpoint', 'http://127.0.0.1:4569'],
    ['localhost over http', 'http://localhost:4569'],
  ])('leaves the body out of the signature to %s', async (_, endpoint) => {
    const request = await sentByPut(endpoint);
    expect(request.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(signedHeaders(request)).toContain('x-amz-content-sha256');
  });

  it('signs the body hash over plain http to another host', async () => {
    const request = await sentByPut('http://s3.internal.example:9000');
    expect(request.headers['x-amz-content-sha256']).toBe(
      createHash('sha256').update(BODY).digest('hex'),
    );
    expect(signedHeaders(request)).toContain('x-amz-content-sha256');
  });

  it('sends the content type, metadata and a SigV4 signature over them', async () => {
    const request = await sentByPut('http://127.0.0.1:4569');
    expect(request.path).toBe('/images/b/1.png');
    expect(request.body).toBe(BODY);
    expect(request.headers).toMatchObject({
      'content-type': 'image/png',
      'content-length': String(BODY.length),
      'x-amz-meta-rendermill-hash': 'ab12',
      'x-amz-meta-rendermill-cost-micros': '40000',
    });
    expect(request.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=.+, Signature=[0-9a-f]{64}$/,
    );
    expect(signedHeaders(request)).toEqual(
      expect.arrayContaining([
        'content-type',
        'host',
        'x-amz-content-sha256',
        'x-amz-date',
        'x-amz-meta-rendermill-hash',
        'x-amz-meta-rendermill-cost-micros',
      ]),
    );
  });

  it.each([
    ['an https endpoint', 'https://s3.example.net', 'UNSIGNED-PAYLOAD'],
    [
      'plain http to another host',
      'http://s3.internal.example:9000',
      createHash('sha256').update(BODY).digest('hex'),
    ],
  ])(
    'differs from the SDK left as it is only in the body hash, to %s',
    async (_, endpoint, bodyHash) => {
      const ours = await sentByPut(endpoint);
      const plain = await sentByPlainSdk(endpoint);
      expect(stable(ours.headers)).toEqual({
        ...stable(plain.headers),
        'x-amz-content-sha256': bodyHash,
      });
      expect(signedHeaders(ours)).toEqual(signedHeaders(plain));
      expect(ours.path).toBe(plain.path);
    },
  );
});
