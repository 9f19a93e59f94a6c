import { z } from 'zod';

/** The most items one page of a list may hold. */
export const MAX_PAGE_LIMIT = 100;

/**
 * `limit` and `cursor`, the query of every paged list (`GET /v1/batches`, `GET /v1/schedules`):
 * a page of `limit` items, then the next from the `next_cursor` the previous answer gave.
 */
export const pageQueryFields = (items: string, defaultLimit: number) => ({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_LIMIT)
    .default(defaultLimit)
    .describe(`${items} per page (1–${MAX_PAGE_LIMIT}).`),
  cursor: z.string().max(100).optional().describe('`next_cursor` of the previous page.'),
});
