/**
 * Figures drawn from the provider's counters read every few tens of milliseconds: how many
 * images it accepted in its busiest sliding window, and at what rate in steady state. The
 * simulator keeps counts, not a log, so a window's count is known only between two bounds set
 * by the sampling interval; both are reported.
 */

/** The provider's cumulative counts at one moment. */
export interface Sample {
  /** Epoch ms: the middle of the stats request's round trip. */
  at: number;
  /** Images the provider's bucket let through (requests − 429s − requests refused before it). */
  accepted: number;
  rateLimited: number;
  /** Images answered and billed (counted after the latency, when the answer is sent). */
  billed: number;
}

export interface WindowCount {
  windowMs: number;
  /** Seen for certain: accepted between two samples no further apart than the window. */
  lower: number;
  /** At most: any window lies between the sample before its start and the first after its end. */
  upper: number;
}

/**
 * The most images accepted in any `windowMs` window. Counts only grow, so for the lower bound
 * the earliest sample still within the window of a later one is the best partner; for the
 * upper bound a window starting after sample i and by sample i+1 ends by t(i+1) + windowMs.
 * The first sample must precede the first request and the last follow the last.
 */
export function busiestWindow(samples: readonly Sample[], windowMs: number): WindowCount {
  let lower = 0;
  let from = 0;
  for (let to = 0; to < samples.length; to++) {
    const end = samples[to]!;
    while (end.at - samples[from]!.at > windowMs) from++;
    lower = Math.max(lower, end.accepted - samples[from]!.accepted);
  }
  let upper = 0;
  let to = 0;
  for (let i = 0; i + 1 < samples.length; i++) {
    const windowEnd = samples[i + 1]!.at + windowMs;
    while (to < samples.length - 1 && samples[to]!.at < windowEnd) to++;
    upper = Math.max(upper, samples[to]!.accepted - samples[i]!.accepted);
  }
  return { windowMs, lower, upper: Math.max(lower, upper) };
}

/** When the count reached `count`, interpolating between the samples around it; null if never. */
export function timeAtCount(samples: readonly Sample[], count: number): number | null {
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1]!;
    const after = samples[i]!;
    if (after.accepted >= count) {
      if (before.accepted >= count) return before.at;
      const share = (count - before.accepted) / (after.accepted - before.accepted);
      return before.at + share * (after.at - before.at);
    }
  }
  return null;
}

/**
 * Images per minute between the moment the provider had accepted `from` of the total and the
 * moment it had accepted `to` of it: the rate without the ramp-up (the first burst, workers
 * filling their slots) and the drain (the last calls finishing with slots left idle).
 */
export function steadyRate(
  samples: readonly Sample[],
  total: number,
  from: number,
  to: number,
): { imagesPerMinute: number; startMs: number; endMs: number } | null {
  const start = timeAtCount(samples, total * from);
  const end = timeAtCount(samples, total * to);
  if (start === null || end === null || end <= start) return null;
  return {
    imagesPerMinute: ((to - from) * total * 60_000) / (end - start),
    startMs: start,
    endMs: end,
  };
}

/**
 * Images accepted in each whole second from `origin`, read off the interpolated count: the
 * run's shape (burst, ramp, plateau, drain) for the JSON.
 */
export function acceptedPerSecond(samples: readonly Sample[], origin: number): number[] {
  const last = samples[samples.length - 1];
  if (!last) return [];
  const countAt = (at: number) => {
    let previous = samples[0]!;
    for (const sample of samples) {
      if (sample.at >= at) {
        if (sample.at === previous.at) return sample.accepted;
        const share = (at - previous.at) / (sample.at - previous.at);
        return previous.accepted + Math.max(0, share) * (sample.accepted - previous.accepted);
      }
      previous = sample;
    }
    return last.accepted;
  };
  const seconds: number[] = [];
  for (let at = origin; at < last.at; at += 1000) {
    seconds.push(Math.round(countAt(at + 1000) - countAt(at)));
  }
  return seconds;
}
