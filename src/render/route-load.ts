/**
 * What this process has under way on each route and model: items waiting for the route's rate
 * window or in a call. The `spread` strategy sends the next item where this is smallest for
 * the route's capacity; since every process does the same with its own share of the queue,
 * every route's window fills in proportion to its limit without a shared counter.
 */
export class RouteLoad {
  private readonly counts = new Map<string, number>();

  underWay(route: string, model: string): number {
    return this.counts.get(keyOf(route, model)) ?? 0;
  }

  /** Counts work on the route while `work` runs. */
  async carry<T>(route: string, model: string, work: () => Promise<T>): Promise<T> {
    const key = keyOf(route, model);
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left === 0) this.counts.delete(key);
      else this.counts.set(key, left);
    }
  }
}

const keyOf = (route: string, model: string) => `${route}\u0000${model}`;
