import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findFreePort } from './free-port.js';
import { MissingDependencyError } from './missing-dependency-error.js';

export interface EmbeddedRedisOptions {
  dataDir: string;
  /** Defaults to a free port. Never 6379: that is the machine's shared Redis. */
  port?: number;
  /** AOF persistence so queued jobs survive restarts and crashes. Default true. */
  persistent?: boolean;
  /** Executable name (looked up on `searchPath`) or path. Default `redis-server`. */
  redisServerBinary?: string;
  /** PATH used to look the binary up. Default `process.env.PATH`. */
  searchPath?: string;
}

export interface EmbeddedRedis {
  url: string;
  port: number;
  dataDir: string;
  /** Graceful shutdown (SIGTERM: Redis flushes the AOF and exits). */
  stop(): Promise<void>;
  /** SIGKILL, simulates a crash. */
  kill(): void;
  /** stop() then start again on the same port and dataDir. */
  restart(): Promise<void>;
}

const HOST = '127.0.0.1';
const OUTPUT_LINES_KEPT = 30;
/**
 * How long a start waits for the server to answer PING, and a stop for it to exit before it is
 * killed. Fixed, not configured: the embedded Redis is for single-process use, where replaying
 * a large AOF is the only slow case, and a deployment that outgrows this sets REDIS_URL.
 */
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

function redisServerMissing(): MissingDependencyError {
  const installCommand =
    process.platform === 'darwin' ? 'brew install redis' : 'sudo apt-get install -y redis-server';
  return new MissingDependencyError(
    'redis-server is not installed. Install it with: sudo apt-get install -y redis-server   ' +
      '(macOS: brew install redis) — or set REDIS_URL to an existing Redis.',
    installCommand,
  );
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Resolves the binary like a shell would, so a missing install is reported before spawning. */
async function resolveBinary(binary: string, searchPath: string): Promise<string> {
  if (binary.includes(path.sep)) {
    if (await isExecutable(binary)) return binary;
    throw redisServerMissing();
  }
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, binary);
    if (await isExecutable(candidate)) return candidate;
  }
  throw redisServerMissing();
}

/**
 * Sends PING and INFO on a fresh connection. PING fails with -LOADING while the AOF is replayed,
 * so `+PONG` means "ready for commands"; INFO's process_id proves we are talking to *our* child
 * and not some other server that happened to hold the port.
 */
function probe(port: number): Promise<{ ready: boolean; pid?: number }> {
  return new Promise((resolve) => {
    let data = '';
    const socket = connect({ host: HOST, port });
    const done = (result: { ready: boolean; pid?: number }) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1_000, () => done({ ready: false }));
    socket.on('error', () => done({ ready: false }));
    // Something other than Redis on the port may just hang up: 'close' without 'error'.
    socket.on('close', () => done({ ready: false }));
    socket.on('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString('utf8');
      const pid = /process_id:(\d+)\r\n/.exec(data);
      if (pid) done({ ready: data.startsWith('+PONG\r\n'), pid: Number(pid[1]) });
    });
  });
}

function redisArgs(port: number, dataDir: string, persistent: boolean): string[] {
  const args = ['--port', String(port), '--bind', HOST, '--dir', dataDir];
  // `--save ""` disables RDB snapshots: with persistence on, the AOF is the single source of
  // truth (everysec fsync: at most ~1 s lost on a machine crash, nothing on a process crash).
  return persistent
    ? [...args, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '']
    : [...args, '--save', '', '--appendonly', 'no'];
}

export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const dataDir = path.resolve(opts.dataDir);
  const persistent = opts.persistent ?? true;
  const binary = await resolveBinary(
    opts.redisServerBinary ?? 'redis-server',
    opts.searchPath ?? process.env.PATH ?? '',
  );
  await mkdir(dataDir, { recursive: true });
  const port = opts.port ?? (await findFreePort(HOST));

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  // The parent may exit without calling stop() (crash, process.exit()). Only synchronous work is
  // possible in an 'exit' listener, so SIGKILL the child there; data is safe because Redis
  // write()s the AOF before replying, so only an OS crash could lose the last second.
  const killOnExit = () => child?.kill('SIGKILL');

  async function start(): Promise<void> {
    const output: string[] = [];
    const remember = (chunk: Buffer) => {
      output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      output.splice(0, Math.max(0, output.length - OUTPUT_LINES_KEPT));
    };
    const proc = spawn(binary, redisArgs(port, dataDir, persistent), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout?.on('data', remember);
    proc.stderr?.on('data', remember);
    let exitReason: string | undefined;
    exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        exitReason = `exited with ${signal ?? `code ${code}`}`;
        resolve();
      });
      // 'error' without 'exit' happens when spawn itself fails (e.g. the binary vanished).
      proc.once('error', (err) => {
        exitReason = `failed to spawn: ${err.message}`;
        resolve();
      });
    });
    process.on('exit', killOnExit);

    const fail = async (why: string): Promise<never> => {
      proc.kill('SIGKILL');
      await exited;
      process.off('exit', killOnExit);
      const tail = output.length > 0 ? output.join('\n') : '(no output)';
      throw new Error(`redis-server (${binary}) on ${HOST}:${port} ${why}. Last output:\n${tail}`);
    };

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exitReason !== undefined) {
        if (exitReason.includes('ENOENT')) {
          process.off('exit', killOnExit);
          throw redisServerMissing();
        }
        return fail(exitReason);
      }
      const result = await probe(port);
      if (result.pid !== undefined && result.pid !== proc.pid) {
        return fail(`lost the port to another Redis (pid ${result.pid})`);
      }
      if (result.ready) return;
      if (Date.now() > deadline) return fail(`did not answer PING within ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (proc === undefined) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    child = undefined;
    process.off('exit', killOnExit);
  }

  await start();
  return {
    url: `redis://${HOST}:${port}`,
    port,
    dataDir,
    stop,
    kill: () => {
      child?.kill('SIGKILL');
    },
    restart: async () => {
      await stop();
      await start();
    },
  };
}
