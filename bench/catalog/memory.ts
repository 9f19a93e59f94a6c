import { readFileSync, writeFileSync } from 'node:fs';

/** How often the API's memory is read while an upload runs. */
export const SAMPLE_MS = 50;
/** Points of the RSS curve kept per upload in the JSON (the peak is always among them). */
const CURVE_POINTS = 80;

/** A process's resident set now and its high-water mark, in bytes, from /proc/<pid>/status. */
export function residentMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * Sets a process's VmHWM back to its current RSS (Linux ≥ 4.0, `clear_refs` value 5), so the
 * next reading is the peak of what follows, not of the process's whole life. False when the
 * kernel or the permissions refuse: the sampled peak is then all there is.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const { rss, hwm } = residentMemory(pid);
    // A little slack: the process may have grown between the write and the read.
    return hwm <= rss + 2 ** 20;
  } catch {
    return false;
  }
}

export interface MemoryTrace {
  /** RSS just before the upload started. */
  rssBefore: number;
  /** The highest RSS seen: VmHWM since the reset, or the highest sample if it could not be reset. */
  peakRss: number;
  /** The highest of the 50 ms samples alone. */
  sampledPeakRss: number;
  /** VmHWM at the end; null when it could not be reset (it would be the process's lifetime peak). */
  hwm: number | null;
  /** RSS right after the response (the last reading, if the process exited). */
  rssAfter: number;
  /** The process exited during the upload. */
  processExited: boolean;
  samples: number;
  /** The longest gap between two samples: the driver's event loop is busy sending the body. */
  longestGapMs: number;
  /** [ms since start, RSS MiB], thinned to ~80 points, the peak sample kept. */
  curve: [number, number][];
}

/**
 * Reads a process's memory every 50 ms from the moment it is made until `finish`. The
 * kernel's high-water mark catches a peak between two samples; the samples show its shape.
 */
export class MemorySampler {
  private readonly started = performance.now();
  private readonly points: [number, number][] = [];
  private readonly rssBefore: number;
  private readonly peakReset: boolean;
  private lastSampleAt = this.started;
  private longestGapMs = 0;
  private hwm = 0;
  /** The process exited (an API killed by its heap limit, say): its last readings stand. */
  private gone = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.peakReset = resetPeak(pid);
    this.rssBefore = residentMemory(pid).rss;
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  private sample() {
    if (this.gone) return;
    const now = performance.now();
    let reading;
    try {
      reading = residentMemory(this.pid);
    } catch {
      this.gone = true;
      clearInterval(this.timer);
      return;
    }
    this.longestGapMs = Math.max(this.longestGapMs, now - this.lastSampleAt);
    this.lastSampleAt = now;
    this.hwm = reading.hwm;
    this.points.push([Math.round(now - this.started), reading.rss]);
  }

  finish(): MemoryTrace {
    clearInterval(this.timer);
    this.sample();
    const sampledPeakRss = Math.max(...this.points.map(([, bytes]) => bytes));
    return {
      rssBefore: this.rssBefore,
      peakRss: Math.max(sampledPeakRss, this.peakReset ? this.hwm : 0),
      sampledPeakRss,
      hwm: this.peakReset ? this.hwm : null,
      rssAfter: this.points[this.points.length - 1]![1],
      processExited: this.gone,
      samples: this.points.length,
      longestGapMs: Math.round(this.longestGapMs),
      curve: thin(this.points, CURVE_POINTS),
    };
  }
}

const MIB = 2 ** 20;

/** Every k-th point, plus the last and the highest: the curve's shape and its peak. */
function thin(points: [number, number][], keep: number): [number, number][] {
  const step = Math.max(1, Math.ceil(points.length / keep));
  const peak = points.reduce((best, point) => (point[1] > best[1] ? point : best), points[0]!);
  const kept = points.filter(
    (point, i) => i % step === 0 || i === points.length - 1 || point === peak,
  );
  return kept.map(([ms, bytes]) => [ms, Math.round((bytes / MIB) * 10) / 10]);
}
