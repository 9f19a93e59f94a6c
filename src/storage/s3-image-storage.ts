import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ImageStorage, PutObjectInput, StoredObject } from './image-storage.js';
import { S3DirectRequests } from './s3-direct-requests.js';

export interface S3ImageStorageOptions {
  bucket: string;
  /** For S3-compatible stores (s3rver, MinIO, R2). Omit for AWS. */
  endpoint?: string;
  region: string;
  /** Omit both to use the SDK's default credential chain (env, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style URLs, which most S3-compatible servers need (S3_FORCE_PATH_STYLE). */
  forcePathStyle: boolean;
  /** Keys per list request (S3 caps it at 1000). Small values exercise pagination in tests. */
  listPageSize?: number;
}

/** The SDK's error shape, narrowed to the two fields we branch on. */
function errorInfo(err: unknown): { name?: string; status?: number } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return {
    name: typeof e.name === 'string' ? e.name : undefined,
    status:
      typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined,
  };
}

/** The most keys S3 returns for one list request. */
const S3_MAX_KEYS_PER_LIST = 1000;

export class S3ImageStorage implements ImageStorage {
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly region: string;
  private readonly listPageSize: number;
  /** PutObject and the empty listing, sent without the SDK's middleware stack, where it can. */
  private readonly direct: Promise<S3DirectRequests | undefined>;

  constructor(opts: S3ImageStorageOptions) {
    this.bucket = opts.bucket;
    this.region = opts.region;
    this.listPageSize = opts.listPageSize ?? S3_MAX_KEYS_PER_LIST;
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      credentials:
        opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined
          ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey }
          : undefined,
      // Since v3.729 the SDK adds CRC32 checksums to every upload and asks for them on every
      // download. s3rver ignores them for Buffer bodies, but several S3-compatible stores reject
      // the headers (or the aws-chunked encoding used for streams). Send them only where the S3
      // API requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // It only formats input and output for a logger, and this client is given none: without it
    // each call skips filtering its input for a log line nobody writes.
    this.client.middlewareStack.remove('loggerMiddleware');
    this.direct = S3DirectRequests.forBucket(this.client, this.bucket, opts);
  }

  async ensureBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return;
    } catch (err) {
      if (errorInfo(err).status !== 404) throw err;
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // us-east-1 is the default location and AWS rejects it when given explicitly.
          CreateBucketConfiguration:
            this.region === 'us-east-1'
              ? undefined
              : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      );
    } catch (err) {
      // Another process created it between our HEAD and CREATE.
      const { name } = errorInfo(err);
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
    }
  }

  async put(input: PutObjectInput): Promise<void> {
    const body = typeof input.body === 'string' ? Buffer.from(input.body) : input.body;
    const direct = await this.direct;
    if (direct) return direct.put({ ...input, body });
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: input.key,
        Body: body,
        ContentType: input.contentType,
        Metadata: input.metadata,
      }),
    );
  }

  async get(key: string): Promise<StoredObject | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const bytes = (await res.Body?.transformToByteArray()) ?? new Uint8Array();
      return {
        key,
        body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        contentType: res.ContentType ?? 'application/octet-stream',
        metadata: res.Metadata ?? {},
      };
    } catch (err) {
      const { name, status } = errorInfo(err);
      // A missing bucket is a misconfiguration, not a missing image: let it throw.
      if (name === 'NoSuchKey' || (status === 404 && name !== 'NoSuchBucket')) return undefined;
      throw err;
    }
  }

  async head(key: string): Promise<(Omit<StoredObject, 'body'> & { bytes?: number }) | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        contentType: res.ContentType ?? 'application/octet-stream',
        metadata: res.Metadata ?? {},
        bytes: res.ContentLength,
      };
    } catch (err) {
      // HEAD responses carry no body, so the SDK can only report a generic NotFound/404.
      if (errorInfo(err).status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Pages with ListObjects (v1) and Marker = last key seen, not v2's ContinuationToken: s3rver
   * encrypts v2 tokens with DES, which OpenSSL 3 (Node >= 17) no longer ships, so any truncated
   * v2 listing fails there with InternalError. Marker paging is equivalent on AWS S3 and works on
   * every S3-compatible server.
   */
  async list(prefix: string): Promise<string[]> {
    // A render asks for its request's folder right before paying, and it is nearly always empty.
    // Anything else — something there, or the quick look failing — is read through the SDK.
    const direct = await this.direct;
    if (direct && (await direct.isEmpty(prefix).catch(() => false))) return [];
    const keys: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const res = await this.client.send(
        new ListObjectsCommand({
          Bucket: this.bucket,
          Prefix: prefix,
          MaxKeys: this.listPageSize,
          Marker: marker,
        }),
      );
      for (const object of res.Contents ?? []) if (object.Key !== undefined) keys.push(object.Key);
      // Keys come back in lexicographic order; NextMarker is only sent with a Delimiter.
      const last = keys[keys.length - 1];
      if (!res.IsTruncated || last === undefined || last === marker) return keys;
      marker = last;
    }
  }

  presignedUrl(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: expiresInSeconds,
    });
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${key}`;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    await this.client.send(
      new HeadBucketCommand({ Bucket: this.bucket }),
      signal ? { abortSignal: signal } : undefined,
    );
  }

  close(): void {
    void this.direct.then((direct) => direct?.close());
    this.client.destroy();
  }
}
