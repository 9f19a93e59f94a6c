import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedS3, type EmbeddedS3 } from '../../src/runtime/embedded-s3.js';
import { S3ImageStorage } from '../../src/storage/s3-image-storage.js';

/** An s3rver in a fresh temp dir with `bucket` created, plus a storage pointed at it. */
export async function startTestS3(
  bucket = 'rendermill-test',
): Promise<EmbeddedS3 & { storage: S3ImageStorage }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-s3-'));
  let s3: EmbeddedS3;
  try {
    s3 = await startEmbeddedS3({ dataDir, buckets: [bucket] });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const storage = new S3ImageStorage({
    bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
  });
  return {
    ...s3,
    storage,
    stop: async () => {
      storage.close();
      await s3.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
