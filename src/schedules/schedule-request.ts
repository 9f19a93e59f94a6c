import { z } from 'zod';
import {
  MAX_ITEMS_PER_REQUEST,
  batchItemSchema,
  batchRequestSchema,
} from '../contracts/batch-request.js';

/**
 * The shape of `POST /v1/schedules`. Everything a batch takes besides its items (model, size,
 * quality, n …, budget_usd — required here —, cache, derive, webhook_url, metadata) is taken
 * as is, as the defaults of every run's batch; the items come from `template`, either as
 * `variations` copies or per listed item. Rules that span fields (items or variations, known
 * placeholders, a time zone that exists …) are checked in validate-schedule.ts, which names the
 * field at fault.
 */

/** Placeholder names: what `{{name}}` in a template can match. */
const variableName = z
  .string()
  .regex(/^[A-Za-z_][\w.-]{0,63}$/, 'letters, digits, _ . - (starting with a letter or _)');

export const MAX_VARIATIONS = 1_000;

export const scheduleRequestSchema = batchRequestSchema
  .omit({ items: true })
  .extend({
    name: z.string().trim().min(1).max(200),
    /** 5 fields, or 6 with seconds first; read in `timezone`. */
    cron: z.string().min(1).max(200),
    /** An IANA time zone; the runs follow its summer time. */
    timezone: z.string().min(1).max(64).default('UTC'),
    /** No run after this instant. */
    end_date: z.iso
      .datetime({
        offset: true,
        error: 'must be an ISO 8601 date-time, e.g. 2027-03-31T23:59:59+02:00',
      })
      .optional(),
    /** The prompt of every item, with `{{date}}`, `{{week}}`, `{{campaign}}` … placeholders. */
    template: z.string().min(1).max(32_000),
    /** Values of the template's own placeholders, e.g. `{"campaign": "spring-sale"}`. */
    variables: z
      .record(variableName, z.string().max(2_000))
      .refine((v) => Object.keys(v).length <= 100, 'at most 100 variables')
      .optional(),
    /** The items of every run; an item's own prompt (a template too) replaces `template`. */
    items: z
      .array(batchItemSchema)
      .min(1, 'give at least one item, or use variations')
      .max(MAX_ITEMS_PER_REQUEST, `at most ${MAX_ITEMS_PER_REQUEST} items`)
      .optional(),
    /** k items, `v1` … `vk`, all from the template. */
    variations: z.number().int().min(1).max(MAX_VARIATIONS).optional(),
    /** Each run's budget (a batch may go without; a schedule spends unattended, so it may not). */
    budget_usd: z
      .number({
        error: (issue) =>
          issue.input === undefined
            ? 'a schedule spends unattended: give every run a budget_usd'
            : undefined,
      })
      .positive()
      .max(1_000_000),
  })
  .strict();

export type ScheduleRequest = z.infer<typeof scheduleRequestSchema>;

/** What a schedule keeps: its request, with the time zone's case corrected (europe/berlin). */
export type ScheduleDefinition = ScheduleRequest;
