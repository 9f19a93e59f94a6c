import { Cluster, Redis } from 'ioredis';
import type { RedisClusterConfig } from '../config/env-parsers.js';

/**
 * What rendermill talks to Redis through: one server, or a Redis Cluster (REDIS_CLUSTER_NODES).
 * ioredis gives both the same command API; only opening and copying connections differ, and
 * that is done here. Code that runs commands takes this type, never `Redis` alone.
 */
export type RedisConnection = Redis | Cluster;

/** Per-connection settings that mean the same for one server and for a cluster. */
export interface ConnectionSettings {
  /**
   * null: a command waits out a lost connection instead of failing after some retries.
   * BullMQ needs it on the connections it is given. Default ioredis's (20 retries).
   */
  maxRetriesPerRequest?: number | null;
  /** Sends the commands issued in one tick in one write (per node on a cluster). Default false. */
  enableAutoPipelining?: boolean;
  /** Commands (and scripts, by name) that auto-pipelining must send on their own. */
  autoPipeliningIgnoredCommands?: string[];
}

/** Where Redis is: a URL (`redis://…`), or the seed nodes of a cluster. */
export type RedisTarget = { url: string } | { cluster: RedisClusterConfig };

/**
 * Opens a connection to one Redis or to a cluster. A cluster client learns every master from
 * any seed, and sends each command to the master holding its key's slot.
 */
export function connectRedis(
  target: RedisTarget,
  settings: ConnectionSettings = {},
): RedisConnection {
  if ('url' in target) return new Redis(target.url, settings);
  const { nodes, username, password, tls } = target.cluster;
  const { enableAutoPipelining, autoPipeliningIgnoredCommands, ...perNode } = settings;
  return new Cluster(nodes, {
    enableAutoPipelining,
    autoPipeliningIgnoredCommands,
    // Credentials and TLS must reach every node the client discovers, not only the seeds.
    redisOptions: { ...perNode, username, password, ...(tls ? { tls: {} } : {}) },
  });
}

/** A new connection to the same Redis or cluster, with some settings changed. */
export function duplicateConnection(
  connection: RedisConnection,
  settings: ConnectionSettings,
): RedisConnection {
  if (!isCluster(connection)) return connection.duplicate(settings);
  const { enableAutoPipelining, autoPipeliningIgnoredCommands, ...perNode } = settings;
  return connection.duplicate(undefined, {
    ...(enableAutoPipelining === undefined ? {} : { enableAutoPipelining }),
    ...(autoPipeliningIgnoredCommands ? { autoPipeliningIgnoredCommands } : {}),
    redisOptions: { ...connection.options.redisOptions, ...perNode },
  });
}

export function isCluster(connection: RedisConnection): connection is Cluster {
  return connection.isCluster;
}
