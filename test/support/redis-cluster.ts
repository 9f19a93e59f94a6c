import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { findFreePort } from '../../src/runtime/free-port.js';

const HOST = '127.0.0.1';

export interface TestRedisCluster {
  /** Every master, `host:port`, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[];
  ports: number[];
  /** Kills every node and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster of `masters` redis-server processes (no replicas), each on a free port
 * with its cluster bus on another, in a fresh temp dir; never the shared 127.0.0.1:6379.
 * Resolves once every node reports `cluster_state:ok`. On any failure the nodes are killed.
 */
export async function startTestRedisCluster(
  masters = 3,
  timeoutMs = 15_000,
): Promise<TestRedisCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rendermill-cluster-'));
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const killAll = () => children.forEach((child) => child.kill('SIGKILL'));
  process.on('exit', killAll);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      const exits = children
        .filter((child) => child.exitCode === null && child.signalCode === null)
        .map((child) => once(child, 'exit'));
      killAll();
      await Promise.all(exits);
      process.off('exit', killAll);
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i += 1) {
      const [port, busPort] = [await findFreePort(HOST), await findFreePort(HOST)];
      const nodeDir = path.join(dir, String(i));
      await mkdir(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          HOST,
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          path.join(nodeDir, 'nodes.conf'),
          '--dir',
          nodeDir,
          '--appendonly',
          'no',
          '--save',
          '',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      children.push(child);
      ports.push(port);
    }
    const deadline = Date.now() + timeoutMs;
    await Promise.all(
      ports.map((port) => waitFor(port, deadline, async (r) => (await r.ping()) === 'PONG')),
    );

    const create = spawn(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `${HOST}:${p}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    create.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    create.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const [code] = (await once(create, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`redis-cli --cluster create exited with ${code}`);

    await Promise.all(
      ports.map((port) =>
        waitFor(port, deadline, async (r) =>
          /cluster_state:ok/.test(String(await r.call('CLUSTER', 'INFO'))),
        ),
      ),
    );
    return { nodes: ports.map((p) => `${HOST}:${p}`), ports, stop };
  } catch (error) {
    await stop();
    throw new Error(
      `could not start a Redis Cluster: ${(error as Error).message}\n${output.join('').slice(-3000)}`,
    );
  }
}

/** Polls one node with a plain (non-cluster) connection until `check` holds. */
async function waitFor(port: number, deadline: number, check: (redis: Redis) => Promise<boolean>) {
  const redis = new Redis(port, HOST, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined); // refused until the node listens: polled again below
  try {
    for (;;) {
      try {
        if (redis.status !== 'ready') await redis.connect();
        if (await check(redis)) return;
      } catch {
        redis.disconnect();
      }
      if (Date.now() > deadline) throw new Error(`node 127.0.0.1:${port} not ready in time`);
      await sleep(50);
    }
  } finally {
    redis.disconnect();
  }
}
