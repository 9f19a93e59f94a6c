import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/runtime/embedded-redis.js';

/** A private, persistent redis-server in a fresh temp dir (never the shared 127.0.0.1:6379). */
export async function startTestRedis(): Promise<EmbeddedRedis> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-redis-'));
  let redis: EmbeddedRedis;
  try {
    redis = await startEmbeddedRedis({ dataDir, persistent: true });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...redis,
    stop: async () => {
      await redis.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
