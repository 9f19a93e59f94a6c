import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector';

/**
 * Loaded into a rendermill process with `--import` (Node 20 refuses `--cpu-prof` in
 * NODE_OPTIONS): profiles the process from its first module, and cuts the profile into
 * phases on SIGUSR2 — each signal writes what was recorded since the last one as
 * `<BENCH_PROFILE_DIR>/<pid>.<phase>.cpuprofile` (0 = start-up, 1 = the measured row, …) and
 * starts anew, so the row's profile holds exactly the row. What is left is written at exit.
 * The same-thread inspector session answers synchronously, which is what lets `exit` write.
 * Plain JavaScript: under tsx's loader thread this preload left the processes hung at start.
 */
const dir = process.env.BENCH_PROFILE_DIR;
if (!dir) throw new Error('BENCH_PROFILE_DIR is not set: this file is loaded by the CPU bench');

const session = new Session();
session.connect();
let phase = 0;

function start() {
  session.post('Profiler.enable');
  // V8's default 1 ms interval; finer sampling costs the process more than it tells.
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
}

function writePhase() {
  session.post('Profiler.stop', (error, result) => {
    if (error) return;
    writeFileSync(
      path.join(dir, `${process.pid}.${phase}.cpuprofile`),
      JSON.stringify(result.profile),
    );
    phase++;
  });
}

start();
process.on('SIGUSR2', () => {
  writePhase();
  start();
});
process.on('exit', writePhase);
