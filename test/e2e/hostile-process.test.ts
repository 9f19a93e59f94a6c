import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator } from '../../infra/simulator/server.js';
import { findFreePort } from '../../src/runtime/free-port.js';
import { processEnv, startCli } from '../support/cli.js';
import { startTestRedis } from '../support/redis-server.js';
import { startTestS3 } from '../support/s3-server.js';
import { nestedBrackets, oneLongLine, streamPost } from '../support/stream-post.js';

/**
 * Issue 12's reproductions against a real `rendermill start` process (API and worker in one,
 * two tenants): what a tenant sends is answered, and the process stays up and healthy. And the
 * policy for errors nothing handled, in a process of its own: log, not ready, exit 70.
 */
let redis: Awaited<ReturnType<typeof startTestRedis>>;
let s3: Awaited<ReturnType<typeof startTestS3>>;
let sim: Awaited<ReturnType<typeof startSimulator>>;
let server: ReturnType<typeof startCli>;
let apiUrl: string;
const KEYS = { acme: 'acme-key-0123456789abcdef', globex: 'globex-key-0123456789abcd' };

beforeAll(async () => {
  [redis, s3, sim] = await Promise.all([
    startTestRedis(),
    startTestS3('rendermill'),
    startSimulator({ imagesPerMinute: 6000 }),
  ]);
  const port = await findFreePort();
  apiUrl = `http://127.0.0.1:${port}`;
  server = startCli(
    ['start'],
    processEnv(
      { redis, s3, sim },
      {
        RENDERMILL_IMAGES_PER_MINUTE: '6000',
        RENDERMILL_API_KEYS: `acme=${KEYS.acme},globex=${KEYS.globex}`,
        RENDERMILL_METRICS_PORT: '0',
        PORT: String(port),
      },
    ),
  );
  await server.waitFor(/API listening/, 60_000);
}, 90_000);

afterAll(async () => {
  if (server?.child.exitCode === null) server.child.kill('SIGKILL');
  await Promise.all([sim?.stop(), s3?.stop(), redis?.stop()]);
});

/** The server's resident memory now and at its peak so far, in MiB (Linux /proc). */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

describe('rendermill start under hostile input', () => {
  it('refuses one NDJSON line of 48 MiB with 413 after reading ~1 MiB of it, and stays up', async () => {
    const pid = server.child.pid!;
    const before = memoryMiB(pid);
    const answer = await streamPost(
      `${apiUrl}/v1/batches/estimate?model=dall-e-2&size=256x256`,
      { authorization: `Bearer ${KEYS.acme}`, 'content-type': 'application/x-ndjson' },
      oneLongLine('{"sku":"a","prompt":"', 48 * 1024 * 1024),
    );
    const after = memoryMiB(pid);
    console.info(
      `48 MiB line: ${answer.status} in ${answer.ms.toFixed(0)} ms; RSS ${before.rss.toFixed(0)} → ` +
        `${after.rss.toFixed(0)} MiB (peak ${before.peak.toFixed(0)} → ${after.peak.toFixed(0)} MiB)`,
    );
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body).error).toMatchObject({ code: 'line_too_long', line: 1 });
    // The line is refused at its first MiB: memory does not follow the line's size.
    expect(after.rss - before.rss).toBeLessThan(40);

    expect(server.child.exitCode).toBeNull();
    for (const probe of ['/healthz', '/readyz']) {
      expect((await fetch(`${apiUrl}${probe}`)).status, probe).toBe(200);
    }
    // The other tenant is served as before.
    const other = await fetch(`${apiUrl}/v1/batches`, {
      headers: { authorization: `Bearer ${KEYS.globex}` },
    });
    expect(other.status).toBe(200);
    expect(server.output()).not.toMatch(/uncaughtException|unhandledRejection/);
  });

  it('answers 20 MB of nested brackets on /dashboard/login at once, /healthz meanwhile', async () => {
    const [login, health] = await Promise.all([
      streamPost(
        `${apiUrl}/dashboard/login`,
        { 'content-type': 'application/json', 'x-rendermill-csrf': '1' },
        nestedBrackets(10_000_000),
        { bodyAfterMs: 500 },
      ),
      (async () => {
        const started = performance.now();
        const response = await fetch(`${apiUrl}/healthz`);
        return { status: response.status, ms: performance.now() - started };
      })(),
    ]);
    console.info(
      `deep JSON on /dashboard/login (separate process): ${login.status} in ${login.ms.toFixed(1)} ms; ` +
        `/healthz meanwhile in ${health.ms.toFixed(1)} ms`,
    );
    expect(login.status).toBe(413);
    // The bound is 100 ms; 1 s leaves a loaded machine room and still tells this
    // apart from the 10 s that parsing the body takes.
    expect(login.ms).toBeLessThan(1_000);
    expect(health.status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });
});

/**
 * A process with the fatal-error policy installed, which then fails the way a bug would.
 * Its `exit` first reports what readiness says, to stdout, then exits.
 */
function runFailingProcess(failure: 'throw' | 'reject') {
  const dist = (file: string) => path.resolve('dist/src', file);
  const script = `
    const { installFatalErrorPolicy } = await import(${JSON.stringify(dist('metrics/fatal-errors.js'))});
    const { checkReadiness } = await import(${JSON.stringify(dist('metrics/readiness.js'))});
    const { createLogger } = await import(${JSON.stringify(dist('logging.js'))});
    const probes = { redis: { ping: async () => 'PONG' }, storage: { ping: async () => undefined } };
    installFatalErrorPolicy({
      logger: createLogger('info'),
      exit: (code) => {
        void checkReadiness(probes).then((readiness) => {
          process.stdout.write('READINESS ' + JSON.stringify(readiness) + '\\n', () => process.exit(code));
        });
      },
    });
    setTimeout(() => ${failure === 'throw' ? "{ throw new Error('a bug in a timer'); }" : "void Promise.reject(new Error('a bug in a promise'))"}, 10);
    setInterval(() => {}, 1000); // a server would keep the process alive
  `;
  return new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}

describe('the policy for errors nothing handled', () => {
  for (const [failure, kind, message] of [
    ['throw', 'uncaughtException', 'a bug in a timer'],
    ['reject', 'unhandledRejection', 'a bug in a promise'],
  ] as const) {
    it(`${kind}: logged at fatal, readiness fails, exit 70`, async () => {
      const { code, stdout } = await runFailingProcess(failure);
      expect(code).toBe(70);
      const fatal = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.level === 60);
      expect(fatal).toMatchObject({ kind, err: expect.objectContaining({ message }) });
      const readiness = JSON.parse(/READINESS (.*)/.exec(stdout)![1]!) as {
        ready: boolean;
        checks: Record<string, string>;
      };
      expect(readiness.ready).toBe(false);
      expect(readiness.checks.process).toBe(`${kind}: ${message}`);
    });
  }
});
