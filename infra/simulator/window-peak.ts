/**
 * The most images accepted within any window of a given length, per model: lets a test assert
 * that a client never sent more than a window's allowance, whatever shape the simulator's own
 * limit has (a bucket lets a burst and its refill through together; this counts them).
 * Each model keeps only the arrivals still inside the window, so the cost is the window's size.
 */
export class WindowPeak {
  private readonly models = new Map<
    string,
    { log: { at: number; images: number }[]; sum: number }
  >();

  /**
   * Adds `images` accepted at `at` and returns how many `modelId` now has within the window
   * ending at `at`. The peak over every window is the largest of these: a window holding the
   * most arrivals can always be slid to end at one of them.
   */
  record(modelId: string, images: number, at: number, windowMs: number): number {
    let entry = this.models.get(modelId);
    if (!entry) this.models.set(modelId, (entry = { log: [], sum: 0 }));
    let drop = 0;
    while (drop < entry.log.length && entry.log[drop]!.at + windowMs <= at) {
      entry.sum -= entry.log[drop]!.images;
      drop++;
    }
    entry.log.splice(0, drop);
    entry.log.push({ at, images });
    entry.sum += images;
    return entry.sum;
  }

  clear(): void {
    this.models.clear();
  }
}
