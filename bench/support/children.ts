import { spawn, type ChildProcess } from 'node:child_process';

/** Lines of a child's output kept for error messages. */
const OUTPUT_LINES_KEPT = 200;
const STOP_TIMEOUT_MS = 15_000;

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** The last lines the child printed (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; fails if the child exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL if it has not exited in time. */
  stop(): Promise<void>;
}

const live = new Set<Child>();

/**
 * Every child process the bench starts goes through here, so that whatever happens to the
 * driver (normal end, an exception, Ctrl-C) none is left running: they would hold ports and
 * burn the CPU of the next run.
 */
export function startChild(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Child {
  const proc = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  const lines: string[] = [];
  let text = '';
  const remember = (chunk: Buffer) => {
    const added = chunk.toString('utf8');
    text += added;
    lines.push(...added.split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - OUTPUT_LINES_KEPT));
    // Only the unmatched tail matters to waitFor; keep it from growing without bound.
    if (text.length > 1_000_000) text = text.slice(-100_000);
  };
  proc.stdout?.on('data', remember);
  proc.stderr?.on('data', remember);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', () => resolve(null));
  });
  const child: Child = {
    name,
    process: proc,
    pid: proc.pid,
    output: () => lines.join('\n'),
    exited,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(text);
        if (match) return match;
        if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
          throw new Error(`${name} never printed ${pattern}; its output:\n${child.output()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      live.delete(child);
    },
  };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

/** Stops every child still running, gracefully and in parallel. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => child.stop()));
}

let installed = false;
const interruptHooks: (() => Promise<void>)[] = [];

/** Work to do on Ctrl-C before the children are stopped (e.g. stopping the shared stack). */
export function onInterrupt(hook: () => Promise<void>): void {
  interruptHooks.push(hook);
}

/**
 * On Ctrl-C or SIGTERM: stop the children gracefully, then exit 130. On any other exit (an
 * uncaught error, process.exit) only synchronous work is possible, so SIGKILL what is left.
 */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const child of live) child.process.kill('SIGKILL');
  });
  let interrupted = false;
  const interrupt = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // A second Ctrl-C: no more patience.
      for (const child of live) child.process.kill('SIGKILL');
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping ${live.size} child processes…\n`);
    void (async () => {
      for (const hook of interruptHooks) await hook().catch(() => undefined);
      await stopAllChildren();
      process.exit(130);
    })();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
}
