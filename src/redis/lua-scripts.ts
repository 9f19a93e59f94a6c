import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RedisConnection } from './redis-connection.js';

/**
 * rendermill's Lua scripts, loaded one way.
 *
 * Each script is a file in `lua/` beside this module, beginning with a comment that names its
 * KEYS, ARGV and what it returns. A line `--- @include "<name>"` (BullMQ's directive) is
 * replaced by `lua/includes/<name>.lua`, so a piece shared by several scripts is written once.
 * Every script is defined as an ioredis command (`defineCommand`): ioredis sends EVALSHA and
 * falls back to EVAL when the server does not know the script yet, and on a cluster it routes
 * the command by its first key.
 *
 * The files are found relative to this module, so the folder must sit beside the compiled
 * module too: `npm run build` copies `src/redis/lua/` to `dist/src/redis/lua/`
 * (infra/scripts/copy-lua.mjs). Resolving them from the package root instead would break the
 * Docker image, which carries only `dist/`.
 */

/** Where the script files are: `lua/` beside this module, in `src/` and in `dist/` alike. */
export const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));

/** One script: its file in `lua/` (without `.lua`) and how many of its arguments are keys. */
export interface LuaScriptSpec {
  file: string;
  /**
   * Fixed number of KEYS. Left out for scripts whose number of keys varies per call: the
   * caller then passes the count as the first argument (see VARIABLE_KEY_SCRIPTS).
   */
  numberOfKeys?: number;
}

/** The commands the scripts become on a connection, with their arguments as the files say. */
export interface LuaCommands {
  // Batches and their ledger (batch-store.ts, spend-ledger.ts).
  rmTransition(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  rmReserve(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<[number, number]>;
  rmMarkCalling(meta: string, reservations: string, itemId: string): Promise<number>;
  rmChargeHold(meta: string, reservations: string, itemId: string): Promise<number>;
  rmReleaseHold(meta: string, reservations: string, itemId: string): Promise<number>;
  rmDelete(
    meta: string,
    items: string,
    reservations: string,
    tenantBatches: string,
    batchId: string,
  ): Promise<number>;
  rmCancel(meta: string, at: string): Promise<number>;
  // Schedules (schedule-store.ts).
  rmScheduleClaimRun(
    key: string,
    runTime: number,
    now: number,
    leaseMs: number,
    token: string,
  ): Promise<[string, string]>;
  rmScheduleReleaseRun(key: string, runTime: number, token: string): Promise<number>;
  rmScheduleRecordRun(
    key: string,
    runTime: number,
    outcome: string,
    at: string,
    batchId: string,
    error: string,
  ): Promise<number>;
  // Provider limits (redis-rate-limiter.ts, account-gate.ts).
  rmRateAcquire(
    ...keysThenArgs: (string | number)[]
  ): Promise<[number, number, number | string, number?]>;
  rmRateObserve(...keysThenArgs: (string | number)[]): Promise<[number, number, number]>;
  rmRateHeadroom(...keysThenArgs: (string | number)[]): Promise<number>;
  rmExtendPause(key: string, ms: number, pause: string): Promise<number>;
  // Locks (render-lock.ts, result-cache.ts).
  rmCompareAndDelete(key: string, token: string): Promise<number>;
  rmCompareAndPexpire(key: string, token: string, ms: number): Promise<number>;
  rmCompareAndSet(lock: string, key: string, token: string, value: string): Promise<'OK' | 0>;
  // The spool of paid images waiting for S3 (image-spool.ts).
  rmSpoolPut(
    sizes: string,
    expiry: string,
    entry: string,
    ...args: (string | number | Buffer)[]
  ): Promise<[number, number]>;
  // Webhooks (webhook-secrets.ts).
  rmRotateWebhookSecret(
    current: string,
    previous: string,
    secret: string,
    previousValidMs: string,
  ): Promise<number>;
}

/** Every script, by the name of the command it becomes. */
export const LUA_SCRIPTS = {
  rmTransition: { file: 'transition' },
  rmReserve: { file: 'reserve' },
  rmMarkCalling: { file: 'mark-calling', numberOfKeys: 2 },
  rmChargeHold: { file: 'charge-hold', numberOfKeys: 2 },
  rmReleaseHold: { file: 'release-hold', numberOfKeys: 2 },
  rmDelete: { file: 'delete-batch', numberOfKeys: 4 },
  rmCancel: { file: 'cancel-batch', numberOfKeys: 1 },
  rmScheduleClaimRun: { file: 'schedule-claim-run', numberOfKeys: 1 },
  rmScheduleReleaseRun: { file: 'schedule-release-run', numberOfKeys: 1 },
  rmScheduleRecordRun: { file: 'schedule-record-run', numberOfKeys: 1 },
  rmRateAcquire: { file: 'rate-acquire', numberOfKeys: 6 },
  rmRateObserve: { file: 'rate-observe', numberOfKeys: 5 },
  rmRateHeadroom: { file: 'rate-headroom', numberOfKeys: 5 },
  rmExtendPause: { file: 'extend-pause', numberOfKeys: 1 },
  rmCompareAndDelete: { file: 'compare-and-delete', numberOfKeys: 1 },
  rmCompareAndPexpire: { file: 'compare-and-pexpire', numberOfKeys: 1 },
  rmCompareAndSet: { file: 'compare-and-set', numberOfKeys: 2 },
  rmRotateWebhookSecret: { file: 'rotate-webhook-secret', numberOfKeys: 2 },
  rmSpoolPut: { file: 'spool-put', numberOfKeys: 3 },
} as const satisfies Record<keyof LuaCommands, LuaScriptSpec>;

/** A script's command name. */
export type LuaScriptName = keyof typeof LUA_SCRIPTS;

/**
 * The scripts whose number of keys varies per call. ioredis's auto-pipelining routes a script
 * call by its first argument, which for these is the key count, not a key: on a cluster it
 * would put them in a pipeline bound for another node, which ioredis then refuses. A
 * connection that auto-pipelines on a cluster must leave them out (services.ts does).
 */
export const VARIABLE_KEY_SCRIPTS: string[] = Object.entries(
  LUA_SCRIPTS as Record<string, LuaScriptSpec>,
)
  .filter(([, spec]) => spec.numberOfKeys === undefined)
  .map(([name]) => name);

/** A script file, or an include it names, that cannot be read or resolved. */
export class LuaScriptError extends Error {
  override name = 'LuaScriptError';
}

/** An include line; a new RegExp per use, as resolving an include nests another replace. */
const includeLines = () => /^--- @include "([^"]+)"[ \t]*$/gm;

/**
 * A script's source with its includes resolved: each `--- @include "<name>"` line becomes the
 * text of `includes/<name>.lua` (whose own includes are resolved too). An include met twice
 * is put in once; a missing include, or one that includes itself round a loop, is an error
 * naming the script.
 */
export function readLuaScript(file: string, dir: string = LUA_DIR): string {
  const included = new Set<string>();
  const resolve = (path: string, source: string, stack: readonly string[]): string =>
    source.replace(includeLines(), (_line, name: string) => {
      if (stack.includes(name)) {
        throw new LuaScriptError(
          `${file}.lua: include "${name}" includes itself (${stack.join(' → ')})`,
        );
      }
      if (included.has(name)) return '';
      included.add(name);
      const includePath = `includes/${name}.lua`;
      return resolve(includePath, readSource(dir, includePath, `${path} includes "${name}"`), [
        ...stack,
        name,
      ]);
    });
  const path = `${file}.lua`;
  return resolve(path, readSource(dir, path, `script ${path}`), []);
}

function readSource(dir: string, path: string, what: string): string {
  try {
    return readFileSync(`${dir}${dir.endsWith('/') ? '' : '/'}${path}`, 'utf8');
  } catch (error) {
    throw new LuaScriptError(
      `${what}, but ${path} cannot be read in ${dir}: ${(error as Error).message}`,
    );
  }
}

/** Each script's resolved source, read from disk on first use only. */
let sources: Map<LuaScriptName, string> | undefined;

/** Every script's resolved source, by command name (read once per process). */
export function luaSources(): ReadonlyMap<LuaScriptName, string> {
  sources ??= new Map(
    (Object.keys(LUA_SCRIPTS) as LuaScriptName[]).map((name) => [
      name,
      readLuaScript(LUA_SCRIPTS[name].file),
    ]),
  );
  return sources;
}

const defined = new WeakSet<RedisConnection>();

/**
 * The connection with every script defined on it as a command (once per connection), typed
 * with the scripts' arguments. The only way rendermill runs Lua.
 */
export function luaCommands(redis: RedisConnection): LuaCommands {
  if (!defined.has(redis)) {
    for (const [name, lua] of luaSources()) {
      const spec: LuaScriptSpec = LUA_SCRIPTS[name];
      redis.defineCommand(name, {
        lua,
        ...(spec.numberOfKeys === undefined ? {} : { numberOfKeys: spec.numberOfKeys }),
      });
    }
    defined.add(redis);
  }
  return redis as unknown as LuaCommands;
}
