import { z } from 'zod';

/**
 * Quotas and limits that keep one tenant's hostile or careless input from taking rendermill
 * down or crowding out the others (docs/hostile-input.md). Read with the rest of the
 * environment by config.ts, which spreads `hostileInputEnv` into its schema.
 */

const emptyAsUndefined = (value: unknown) => (value === '' ? undefined : value);

export const DEFAULT_MAX_SCHEDULES_PER_TENANT = 100;
/** A batch a minute at most: the shortest interval of a 5-field cron. */
export const DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS = 60;
/**
 * All the files of one edit or variation request together. One gpt-image edit takes up to 16
 * images; 64 MiB is plenty for real photos (a few MB each) and bounds what a request holds in
 * memory while it is read.
 */
export const DEFAULT_MAX_UPLOAD_MB_PER_REQUEST = 64;

export const hostileInputEnv = {
  RENDERMILL_MAX_SCHEDULES_PER_TENANT: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().int().min(1).max(100_000).default(DEFAULT_MAX_SCHEDULES_PER_TENANT),
  ),
  RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS: z.preprocess(
    emptyAsUndefined,
    z.coerce
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .default(DEFAULT_MIN_SCHEDULE_INTERVAL_SECONDS),
  ),
  RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST: z.preprocess(
    emptyAsUndefined,
    z.coerce.number().positive().max(4096).default(DEFAULT_MAX_UPLOAD_MB_PER_REQUEST),
  ),
};

/** The quotas and limits, as the rest of rendermill uses them. */
export interface HostileInputConfig {
  /** How many schedules one tenant may have at once. */
  maxSchedulesPerTenant: number;
  /** The shortest time allowed between two runs of a schedule's cron (ms). */
  minScheduleIntervalMs: number;
  /** The most bytes of files one `/v1/images/edits` or `/variations` request may upload. */
  maxUploadBytesPerRequest: number;
}

type HostileInputEnv = {
  [K in keyof typeof hostileInputEnv]: z.infer<(typeof hostileInputEnv)[K]>;
};

export function hostileInputConfig(env: HostileInputEnv): HostileInputConfig {
  return {
    maxSchedulesPerTenant: env.RENDERMILL_MAX_SCHEDULES_PER_TENANT,
    minScheduleIntervalMs: env.RENDERMILL_MIN_SCHEDULE_INTERVAL_SECONDS * 1000,
    maxUploadBytesPerRequest: Math.round(env.RENDERMILL_MAX_UPLOAD_MB_PER_REQUEST * 1024 * 1024),
  };
}
