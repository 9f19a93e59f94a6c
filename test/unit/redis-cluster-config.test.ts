import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('REDIS_CLUSTER_NODES', () => {
  it('takes host:port seeds, with spaces and a trailing comma', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-2:7001 ,[::1]:7002,' });
    expect(config.redisUrl).toBeUndefined();
    expect(config.redisCluster).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
  });

  it('takes credentials and TLS from seeds written as URLs, for every node', () => {
    const config = loadConfig({
      REDIS_CLUSTER_NODES: 'rediss://ops:p%40ss@cache-1:6380,cache-2:6380',
    });
    expect(config.redisCluster).toEqual({
      nodes: [
        { host: 'cache-1', port: 6380 },
        { host: 'cache-2', port: 6380 },
      ],
      username: 'ops',
      password: 'p@ss',
      tls: true,
    });
  });

  it('is not needed: without it nothing changes', () => {
    expect(loadConfig({ REDIS_URL: 'redis://10.0.0.5:6380' }).redisCluster).toBeUndefined();
  });

  it.each([
    [
      { REDIS_CLUSTER_NODES: 'cache-1' },
      'expected host:port seeds separated by commas, got "cache-1"',
    ],
    [{ REDIS_CLUSTER_NODES: 'http://cache-1:80' }, 'REDIS_CLUSTER_NODES: expected host:port'],
    [{ REDIS_CLUSTER_NODES: ' , ' }, 'expected at least one host:port seed'],
    [
      { REDIS_CLUSTER_NODES: 'cache-1:7000', REDIS_URL: 'redis://cache-1:7000' },
      'give REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both',
    ],
  ])('refuses %o with a readable message', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
