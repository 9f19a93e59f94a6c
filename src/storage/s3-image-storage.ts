import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ImageStorage, PutObjectInput, StoredObject } from './image-storage.js';

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
  /** Replaces the SDK's HTTP handler; tests use it to see the request the SDK would send. */
  requestHandler?: S3ClientConfig['requestHandler'];
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

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** The fields of the SDK's HttpRequest that decide whether a body may go unsigned. */
interface OutgoingRequest {
  protocol: string;
  hostname: string;
  headers: Record<string, string>;
}

/**
 * Whether a PutObject may leave its body out of the SigV4 signature: only where nothing on the
 * way can swap the body. TLS already protects it, and a server on this machine has no network in
 * between; over plain http to another host the body's hash is still signed.
 */
const bodyMayGoUnsigned = (request: OutgoingRequest) =>
  request.protocol === 'https:' || LOOPBACK_HOSTS.has(request.hostname);

export class S3ImageStorage implements ImageStorage {
  readonly bucket: string;
  private readonly client: S3Client;
  private readonly region: string;
  private readonly listPageSize: number;

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
      requestHandler: opts.requestHandler,
    });
    // It only formats input and output for a logger, and this client is given none: without it
    // each call skips filtering its input for a log line nobody writes.
    this.client.middlewareStack.remove('loggerMiddleware');
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
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: input.key,
      Body: input.body,
      ContentType: input.contentType,
      Metadata: input.metadata,
    });
    // Spares the signer a SHA-256 of every image, about a quarter of the SDK's CPU per put. The
    // signer takes a body hash already in x-amz-content-sha256 as it is (getPayloadHash) and
    // signs the header; S3 accepts UNSIGNED-PAYLOAD there for PutObject.
    command.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as OutgoingRequest;
        if (bodyMayGoUnsigned(request))
          request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'unsignedPayloadOverSafeTransport' },
    );
    await this.client.send(command);
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
    this.client.destroy();
  }
}
