import type { SpendCapsConfig } from '../config/config.js';
import type { Micros } from '../models/pricing.js';

/**
 * A spending counter that a call's reservation is held against, beside the batch's own
 * budget: the tenant's calendar month, the whole deployment's day. Counters are always kept
 * (for reports); `limitMicros` makes one a cap.
 */
export interface SpendCap {
  /** `tenant:<name>:<YYYY-MM>` or `day:<YYYY-MM-DD>`, in UTC. */
  id: string;
  limitMicros?: Micros | undefined;
}

/** Which counters a tenant's call counts against right now, with their configured caps. */
export class SpendCaps {
  constructor(private readonly config: SpendCapsConfig = { tenantMonthlyMicros: {} }) {}

  for(tenant: string, now: Date = new Date()): SpendCap[] {
    const day = now.toISOString().slice(0, 10);
    return [
      {
        id: `tenant:${tenant}:${day.slice(0, 7)}`,
        limitMicros:
          this.config.tenantMonthlyMicros[tenant] ?? this.config.defaultTenantMonthlyMicros,
      },
      { id: `day:${day}`, limitMicros: this.config.dailyMicros },
    ];
  }
}

/** Words for a cap that refused a reservation, for the item's error. */
export function describeCap(id: string): string {
  if (id === 'batch') return "the batch's budget";
  const tenant = /^tenant:(.+):(\d{4}-\d{2})$/.exec(id);
  if (tenant) return `tenant "${tenant[1]}"'s budget for ${tenant[2]}`;
  const day = /^day:(.+)$/.exec(id);
  if (day) return `the daily budget of every tenant together for ${day[1]}`;
  return id;
}
