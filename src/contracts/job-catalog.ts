import type { JobsOptions } from 'bullmq';
import { z } from 'zod';
import { ROUTING_STRATEGIES } from '../config/route-kinds.js';
import { renderSpecSchema } from '../models/render-spec.js';

/**
 * Every job rendermill runs: its name, the queue it travels on, the schema of its payload
 * (checked when it is queued and again when a worker takes it) and its retry rules.
 * Workers refuse to start if a job here has no processor.
 */
export const renderItemPayload = z
  .object({
    batchId: z.string().min(1),
    itemId: z.string().min(1),
    tenant: z.string().min(1),
    spec: renderSpecSchema,
    /** The batch's routing; absent: the workers' default (the providers file's). */
    routing: z.enum(ROUTING_STRATEGIES).optional(),
    /**
     * `provider_batch`: the item is enrolled in its batch's provider batch instead of being
     * rendered now (jobs/provider-batch.ts renders it). Absent: realtime.
     */
    mode: z.literal('provider_batch').optional(),
    /**
     * The item's request hash, when its submission knew it (not for edits of inputs fetched
     * later): the job then reads the cache in the same round trip as the item.
     */
    hash: z.string().min(1).optional(),
  })
  .strict();

/** Which item a render job is for: enough to record its failure even if the rest is invalid. */
export const renderItemRef = z.object({ batchId: z.string().min(1), itemId: z.string().min(1) });

export const finalizeBatchPayload = z.object({ batchId: z.string().min(1) }).strict();

/** Gathers, submits and follows a batch's provider batches (jobs/provider-batch.ts). */
export const providerBatchPayload = z.object({ batchId: z.string().min(1) }).strict();

/** One signed event to POST to a tenant's webhook URL (jobs/deliver-webhook.ts). */
export const deliverWebhookPayload = z
  .object({
    tenant: z.string().min(1),
    url: z.string().min(1),
    /** The event exactly as delivered: its id, type, timestamp and data. */
    event: z.object({
      id: z.string().min(1),
      type: z.string().min(1),
      timestamp: z.string().min(1),
      data: z.record(z.string(), z.unknown()),
    }),
  })
  .strict();

/** A schedule's run: turns the schedule into a batch (jobs/run-schedule.ts). */
export const runSchedulePayload = z
  .object({ scheduleId: z.string().min(1), tenant: z.string().min(1) })
  .strict();

export const JOB_CATALOG = {
  'render-item': {
    queue: 'render',
    payload: renderItemPayload,
    options: {
      // Provider faults are retried inside one attempt (with backoff); job attempts cover
      // what happens around the call: a crashed worker, an S3 or Redis outage.
      attempts: 5,
      backoff: { type: 'exponential', delay: 2_000 },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  'finalize-batch': {
    queue: 'batches',
    payload: finalizeBatchPayload,
    options: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  'provider-batch': {
    queue: 'provider-batches',
    payload: providerBatchPayload,
    options: {
      // Each run does one step and comes back later without using an attempt; attempts count
      // only failures (the provider or Redis away), retried for about an hour.
      attempts: 12,
      backoff: { type: 'exponential', delay: 2_000 },
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  'deliver-webhook': {
    queue: 'webhooks',
    payload: deliverWebhookPayload,
    options: {
      // A receiver that is down is retried for about a day and a half: 13 attempts, the wait
      // after each failure doubling from 30 s, the last ~34 h after the first (Standard
      // Webhooks suggests retrying over hours to days).
      attempts: 13,
      backoff: { type: 'exponential', delay: 30_000 },
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
  'run-schedule': {
    queue: 'schedules',
    payload: runSchedulePayload,
    options: {
      attempts: 5,
      backoff: { type: 'exponential', delay: 5_000 },
      removeOnComplete: { age: 7 * 24 * 3600, count: 1_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  },
} as const satisfies Record<string, { queue: string; payload: z.ZodType; options: JobsOptions }>;

export type JobName = keyof typeof JOB_CATALOG;
export type JobPayload<N extends JobName> = z.infer<(typeof JOB_CATALOG)[N]['payload']>;
export const QUEUE_NAMES = [...new Set(Object.values(JOB_CATALOG).map((j) => j.queue))];

/** What a processor learns about the attempt it is running. */
export interface AttemptInfo {
  /** 1 for the first run of the job. */
  attempt: number;
  maxAttempts: number;
  /**
   * Aborted when the worker is shutting down and its grace period is over: waits end early
   * with ShutdownError, and the job is handed back to the queue without using an attempt.
   */
  signal?: AbortSignal | undefined;
  /** For a job a job scheduler made: the run time it was made for (its cron tick). */
  scheduledFor?: Date | undefined;
}

export type JobProcessor<N extends JobName> = (
  payload: JobPayload<N>,
  attempt: AttemptInfo,
) => Promise<void>;

/** How a job is run, and what must happen if it never succeeds. */
export interface JobHandler<N extends JobName> {
  process: JobProcessor<N>;
  /**
   * Called once the queue has given up on the job for good (attempts used up, an
   * unrecoverable error, or stalled too often), so no job ends without its outcome recorded.
   * Gets the raw job data: the payload may be the very thing that was invalid.
   */
  onGiveUp?: (data: unknown, reason: string) => Promise<void>;
}

export type JobHandlers = { [N in JobName]: JobHandler<N> };
