import { readFileSync } from 'node:fs';
import { CpuMeter } from '../support/cpu.js';

/** USER_HZ, as in bench/support/cpu.ts. */
const TICKS_PER_SECOND = 100;

/** CPU seconds every core of the machine has spent busy since boot, or undefined off Linux. */
function machineBusySeconds(): number | undefined {
  try {
    const [cpuLine] = readFileSync('/proc/stat', 'utf8').split('\n');
    // cpu user nice system …: what processes ran. Interrupt time is left out: loopback
    // traffic lands there and belongs to no process, so it would read as load that isn't.
    const [user, nice, system] = (cpuLine ?? '').trim().split(/\s+/).slice(1, 4).map(Number);
    const busy = (user ?? NaN) + (nice ?? NaN) + (system ?? NaN);
    return Number.isFinite(busy) ? busy / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU per role as CpuMeter counts it, plus `other`: what the rest of the machine used in the
 * meantime (a test suite, a build). On a 2-core machine a few seconds of it skew every figure,
 * and the processes the bench tracks cannot show it.
 */
export class PhaseMeter {
  private readonly roles = new CpuMeter();
  private readonly busyAtStart = machineBusySeconds();

  track(role: string, pid: number): void {
    this.roles.track(role, pid);
  }

  finish(): Record<string, number> {
    const byRole = this.roles.finish();
    const busyAtEnd = machineBusySeconds();
    if (this.busyAtStart === undefined || busyAtEnd === undefined) return byRole;
    const tracked = Object.values(byRole).reduce((sum, seconds) => sum + seconds, 0);
    // Tick rounding (and processes sampled a little apart) can put this a hair under zero.
    const other = Math.max(0, busyAtEnd - this.busyAtStart - tracked);
    return { ...byRole, other: Math.round(other * 100) / 100 };
  }
}

/**
 * A note when other processes used more than a tenth of a core on average during a phase,
 * and half a CPU second at least: below that it is tick rounding and the machine's own chores.
 */
export function otherLoadNote(phase: string, cpu: Record<string, number>, seconds: number) {
  const other = cpu.other ?? 0;
  return other > Math.max(0.5, 0.1 * seconds)
    ? [
        `${phase}: other processes used ${other.toFixed(1)} CPU s in ${seconds.toFixed(1)} s — ` +
          'the machine was shared, figures are low',
      ]
    : [];
}
