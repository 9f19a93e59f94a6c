/**
 * The object store rendermill writes images and manifests to. One small interface so the
 * domain never imports the AWS SDK; the S3 implementation lives in s3-image-storage.ts.
 */
export interface StoredObject {
  key: string;
  body: Buffer;
  contentType: string;
  metadata: Record<string, string>;
}

export interface PutObjectInput {
  key: string;
  body: Buffer | string;
  contentType: string;
  /** User metadata (x-amz-meta-*). Keys are lower-case ASCII; values must be ASCII. */
  metadata?: Record<string, string>;
}

export interface ImageStorage {
  readonly bucket: string;
  /** Creates the bucket if it does not exist. Idempotent. */
  ensureBucket(): Promise<void>;
  put(input: PutObjectInput): Promise<void>;
  /** Returns undefined when the key does not exist. */
  get(key: string): Promise<StoredObject | undefined>;
  /** Returns the metadata and size without the body, or undefined when the key does not exist. */
  head(key: string): Promise<(Omit<StoredObject, 'body'> & { bytes?: number }) | undefined>;
  list(prefix: string): Promise<string[]>;
  /** A time-limited GET URL for the key. */
  presignedUrl(key: string, expiresInSeconds: number): Promise<string>;
  /** A stable, non-expiring address for the key, e.g. s3://bucket/key. */
  uri(key: string): string;
  /**
   * Checks the store is reachable and the bucket there (HeadBucket; readiness checks).
   * `signal` gives up on the request.
   */
  ping(signal?: AbortSignal): Promise<void>;
  close(): void;
}
