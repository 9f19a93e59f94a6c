import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';

export interface EmbeddedS3Options {
  dataDir: string;
  buckets: string[];
  /** Defaults to a free port chosen by the OS. */
  port?: number;
}

export interface EmbeddedS3 {
  /** http://127.0.0.1:PORT — use with path-style addressing. */
  endpoint: string;
  port: number;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  dataDir: string;
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * An in-process S3 (s3rver) storing objects as plain files under dataDir, so they survive
 * restarts. It accepts the fixed S3RVER/S3RVER credentials; note that it does not verify SigV4
 * signatures (only the access key id), so it is a stand-in for S3, not a test of signing.
 */
export async function startEmbeddedS3(opts: EmbeddedS3Options): Promise<EmbeddedS3> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const server = new S3rver({
    address: HOST,
    // Port 0 lets the OS pick, avoiding the findFreePort() close-then-bind race.
    port: opts.port ?? 0,
    silent: true,
    directory: dataDir,
    // run() (re)creates these; putBucket is a no-op for buckets already on disk.
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  return {
    endpoint: `http://${HOST}:${port}`,
    port,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    dataDir,
    stop: () => server.close(),
  };
}
