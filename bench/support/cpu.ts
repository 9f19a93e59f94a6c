import { readFileSync } from 'node:fs';

/**
 * Linux reports a process's CPU time in clock ticks; USER_HZ is 100 on every mainstream
 * architecture (it is fixed in the kernel ABI), so no `getconf CLK_TCK` call is needed.
 */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, or undefined if it is gone or not Linux. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count from its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 here.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/** How often tracked processes are sampled: a process that exits keeps its last sample. */
const SAMPLE_MS = 250;

/**
 * CPU used by named processes during a scenario: where the machine's cores went, to tell a
 * provider limit from a bench bottleneck. Processes are sampled periodically because a
 * client's workers have exited (and left /proc) by the time the scenario is measured.
 */
export class CpuMeter {
  private readonly processes = new Map<number, { role: string; first: number; last: number }>();
  private readonly timer = setInterval(() => this.sample(), SAMPLE_MS);

  track(role: string, pid: number): void {
    const cpu = cpuSeconds(pid);
    if (cpu !== undefined) this.processes.set(pid, { role, first: cpu, last: cpu });
  }

  private sample(): void {
    for (const [pid, entry] of this.processes) entry.last = cpuSeconds(pid) ?? entry.last;
  }

  /** CPU seconds per role (summed over its processes) since each was tracked; stops sampling. */
  finish(): Record<string, number> {
    this.sample();
    clearInterval(this.timer);
    const byRole: Record<string, number> = {};
    for (const { role, first, last } of this.processes.values()) {
      byRole[role] = Math.round(((byRole[role] ?? 0) + last - first) * 100) / 100;
    }
    return byRole;
  }
}
