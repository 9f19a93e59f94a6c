import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export const CLI = path.resolve('dist/src/cli/main.js');

/** The environment without anything that would point rendermill at outside systems. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(REDIS_URL|S3_|AWS_|OPENAI_|RENDERMILL_|PORT$|LOG_LEVEL$)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * The environment of `rendermill api` and `worker` processes pointed at a test's own
 * redis-server, S3 server and provider simulator; `extra` adds or overrides settings.
 */
export function processEnv(
  parts: {
    redis: { url: string };
    s3: { endpoint: string; accessKeyId: string; secretAccessKey: string };
    sim: { url: string };
  },
  extra: Record<string, string>,
): NodeJS.ProcessEnv {
  return cleanEnv({
    REDIS_URL: parts.redis.url,
    S3_BUCKET: 'rendermill',
    AWS_ENDPOINT_URL_S3: parts.s3.endpoint,
    AWS_ACCESS_KEY_ID: parts.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: parts.s3.secretAccessKey,
    OPENAI_API_KEY: 'sk-e2e',
    OPENAI_BASE_URL: parts.sim.url,
    ...extra,
  });
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `rendermill` command to completion. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 120_000,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`rendermill ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `rendermill` process (api, worker …) and collects its output. */
export function startCli(args: string[], env: NodeJS.ProcessEnv) {
  const child: ChildProcess = spawn(process.execPath, [CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output.join(''),
    exited,
    async waitFor(pattern: RegExp, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output.join(''))) {
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`rendermill ${args[0]} never printed ${pattern}:\n${output.join('')}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}
