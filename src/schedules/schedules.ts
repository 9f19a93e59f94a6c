import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import { JOB_CATALOG } from '../contracts/job-catalog.js';
import type { ScheduleRecord, ScheduleStore } from './schedule-store.js';
import { validateSchedule, type ValidateScheduleDeps } from './validate-schedule.js';
import { RequestValidationError } from '../errors.js';
import { tooManySchedules, type ListSchedulesQuery } from './schedule-quotas.js';

/** The job each run of a schedule is, and the queue its BullMQ job scheduler lives on. */
const RUN_JOB = 'run-schedule' as const;

/** The queue whose job schedulers queue the runs (`schedules`). */
export const SCHEDULE_QUEUE = JOB_CATALOG[RUN_JOB].queue;

export interface SchedulesDeps extends ValidateScheduleDeps {
  store: ScheduleStore;
  /** The BullMQ queue of `run-schedule` jobs (`schedules`), where the job schedulers live. */
  queue: Pick<Queue, 'upsertJobScheduler' | 'removeJobScheduler'>;
  now?: () => Date;
  /** How many schedules a tenant may have (RENDERMILL_MAX_SCHEDULES_PER_TENANT). */
  maxPerTenant: number;
}

/** A sortable, unguessable schedule id, like a batch's. */
export function newScheduleId(now: Date): string {
  return `sch_${now.getTime().toString(36)}${randomBytes(8).toString('hex')}`;
}

/**
 * Schedules: each is a definition in Redis (ScheduleStore) and a BullMQ job scheduler of the
 * same id that queues a `run-schedule` job at every time its cron names, in its time zone.
 * A tenant sees, and may delete, only its own.
 */
export class Schedules {
  constructor(private readonly deps: SchedulesDeps) {}

  private now() {
    return this.deps.now?.() ?? new Date();
  }

  /**
   * Validates the request completely (validate-schedule.ts), then stores the schedule and
   * starts its job scheduler. Refused requests leave nothing behind, and neither does a job
   * scheduler that could not be started.
   */
  async create(tenant: string, body: unknown): Promise<ScheduleRecord> {
    const now = this.now();
    const max = this.deps.maxPerTenant;
    // Refused before the (costlier) validation; checked again once stored, against a race.
    if ((await this.deps.store.count(tenant)) >= max) throw tooManySchedules(max);
    const { definition } = await validateSchedule(this.deps, tenant, body, now);
    const record = {
      id: newScheduleId(now),
      tenant,
      created_at: now.toISOString(),
      definition,
    };
    if ((await this.deps.store.create(record)) > max) {
      await this.deps.store.delete(tenant, record.id);
      throw tooManySchedules(max);
    }
    try {
      await this.deps.queue.upsertJobScheduler(
        record.id,
        {
          pattern: definition.cron,
          tz: definition.timezone,
          ...(definition.end_date ? { endDate: Date.parse(definition.end_date) } : {}),
        },
        {
          name: RUN_JOB,
          data: JOB_CATALOG[RUN_JOB].payload.parse({ scheduleId: record.id, tenant }),
          opts: JOB_CATALOG[RUN_JOB].options,
        },
      );
    } catch (error) {
      await this.deps.store.delete(tenant, record.id);
      throw error;
    }
    return record;
  }

  async list(tenant: string): Promise<ScheduleRecord[]> {
    return this.deps.store.list(tenant);
  }

  /** A page of the tenant's schedules, oldest first. `next_cursor` is null on the last page. */
  async page(
    tenant: string,
    query: ListSchedulesQuery,
  ): Promise<{ data: ScheduleRecord[]; next_cursor: string | null }> {
    const page = await this.deps.store.page(tenant, query.cursor, query.limit);
    if (!page) {
      throw new RequestValidationError(
        `cursor ${query.cursor} is not one of your schedules`,
        'cursor',
        'invalid_cursor',
      );
    }
    return { data: page.records, next_cursor: page.more ? (page.lastId ?? null) : null };
  }

  async get(tenant: string, id: string): Promise<ScheduleRecord | undefined> {
    return this.deps.store.get(tenant, id);
  }

  /**
   * Stops the schedule: its job scheduler goes first (with the run it had queued), then its
   * definition, so a failure half-way leaves a schedule that can be deleted again rather than
   * a job scheduler nobody can reach. A run already taking place finds no schedule and does
   * nothing. False if the tenant has no schedule of that id.
   */
  async delete(tenant: string, id: string): Promise<boolean> {
    if (!(await this.deps.store.get(tenant, id))) return false;
    await this.deps.queue.removeJobScheduler(id);
    return this.deps.store.delete(tenant, id);
  }
}
