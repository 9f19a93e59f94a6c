import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/runtime/embedded-redis.js';
import { MissingDependencyError } from '../../src/runtime/missing-dependency-error.js';
import { startTestRedis } from '../support/redis-server.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Runs `fn` with a short-lived client so restarts never depend on ioredis reconnect logic. */
async function withClient<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  // Connection failures surface as rejected commands; don't also log them as unhandled events.
  redis.on('error', () => {});
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** True while `pid` runs. A zombie (dead, not yet reaped by init) counts as dead. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // /proc/PID/stat: "pid (comm) STATE ..."; absent on macOS, where kill(0) must do.
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

describe('embedded redis-server', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-redis-test-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async function testRedis(): Promise<EmbeddedRedis> {
    const redis = await startTestRedis();
    cleanups.push(() => redis.stop());
    return redis;
  }

  it('starts a private server on its own port and serves SET/GET', async () => {
    const redis = await testRedis();
    expect(redis.port).not.toBe(6379);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    await withClient(redis.url, async (client) => {
      await client.set('greeting', 'hello');
      expect(await client.get('greeting')).toBe('hello');
      // Make sure this really is our child, configured as asked.
      expect(await client.config('GET', 'dir')).toEqual(['dir', redis.dataDir]);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    });
  });

  it('keeps data across restart() on the same port thanks to the AOF', async () => {
    const redis = await testRedis();
    await withClient(redis.url, (client) => client.set('job:1', 'queued'));
    const port = redis.port;
    await redis.restart();
    expect(redis.port).toBe(port);
    await withClient(redis.url, async (client) => {
      expect(await client.get('job:1')).toBe('queued');
    });
    expect(await readdir(redis.dataDir)).toContain('appendonlydir');
  });

  it('comes back after kill() (crash) with acknowledged writes intact', async () => {
    const redis = await testRedis();
    await withClient(redis.url, (client) => client.set('job:2', 'running'));
    redis.kill();
    await expect(withClient(redis.url, (client) => client.ping())).rejects.toThrow();
    await redis.restart();
    // Redis write()s the AOF before replying, so a process crash loses nothing acknowledged.
    await withClient(redis.url, async (client) => {
      expect(await client.get('job:2')).toBe('running');
    });
  });

  it('loses data on restart when persistent is false', async () => {
    const redis = await startEmbeddedRedis({ dataDir: await tempDir(), persistent: false });
    cleanups.push(() => redis.stop());
    await withClient(redis.url, (client) => client.set('ephemeral', '1'));
    await redis.restart();
    await withClient(redis.url, async (client) => {
      expect(await client.get('ephemeral')).toBeNull();
    });
  });

  it('throws MissingDependencyError when redis-server is not on PATH', async () => {
    const dataDir = await tempDir();
    const error = await startEmbeddedRedis({ dataDir, searchPath: '/nonexistent' }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(MissingDependencyError);
    expect(error).toMatchObject({
      name: 'MissingDependencyError',
      installCommand: expect.stringMatching(/apt-get install -y redis-server|brew install redis/),
      message: expect.stringContaining('redis-server is not installed. Install it with:'),
    });
    await expect(
      startEmbeddedRedis({ dataDir, redisServerBinary: '/nonexistent/redis-server' }),
    ).rejects.toBeInstanceOf(MissingDependencyError);
  });

  it("reports redis-server's own output when it cannot start", async () => {
    // Hold the port with something that is not Redis, so redis-server fails to bind.
    const blocker: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => blocker.close(resolve)));
    const { port } = blocker.address() as { port: number };
    await expect(startEmbeddedRedis({ dataDir: await tempDir(), port })).rejects.toThrow(
      /redis-server .* exited with code 1\. Last output:\n[\s\S]*Address already in use/,
    );
  });

  it('kills the child when the parent process exits without calling stop()', async () => {
    const dataDir = await tempDir();
    const script = `
      import { startEmbeddedRedis } from './src/runtime/embedded-redis.ts';
      const redis = await startEmbeddedRedis({ dataDir: ${JSON.stringify(dataDir)} });
      const { execSync } = await import('node:child_process');
      console.log(execSync('pgrep -P ' + process.pid + ' redis-server').toString().trim());
      process.exit(0);
    `;
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    parent.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise((resolve) => parent.on('exit', resolve));
    expect(code).toBe(0);
    const childPid = Number(stdout.trim());
    expect(childPid).toBeGreaterThan(0);
    // SIGKILL is delivered synchronously, but reaping by init can take a moment.
    for (let i = 0; i < 50 && isAlive(childPid); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isAlive(childPid)).toBe(false);
  });
});
