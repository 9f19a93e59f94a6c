import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseRequest } from '../../request-validation.js';
import { listSchedulesQuery } from '../../schedules/schedule-quotas.js';
import { scheduleRequestSchema } from '../../schedules/schedule-request.js';
import { scheduleView } from '../../schedules/schedule-view.js';
import type { Schedules } from '../../schedules/schedules.js';
import { notFound } from '../http-errors.js';

export interface ScheduleRouteDeps {
  schedules: Pick<Schedules, 'create' | 'page' | 'get' | 'delete'>;
}

const scheduleParams = z.object({ id: z.string().min(1).max(100) });

const SCHEDULE_DOC =
  'Every time `cron` names in `timezone`, renders `template` (with `{{date}}`, `{{week}}`, ' +
  '`{{weekday}}` …, `{{variation}}` and your `variables`) into a batch — `variations` items, or ' +
  'one per listed item — with the render options, budget_usd (per run), cache, derive, ' +
  'webhook_url and metadata given here. The first run’s batch is validated now.';

/** `/v1/schedules`: create, list, look up and delete a tenant's schedules. */
export async function scheduleRoutes(app: FastifyInstance, deps: ScheduleRouteDeps): Promise<void> {
  const tenantSchedule = async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const { id } = parseRequest(scheduleParams, request.params);
    const schedule = await deps.schedules.get(request.tenant, id);
    if (!schedule) throw notFound(`schedule ${id}`);
    return schedule;
  };

  app.post(
    '/v1/schedules',
    {
      schema: {
        summary: 'Create a schedule of batches',
        description: SCHEDULE_DOC,
        tags: ['schedules'],
        body: scheduleRequestSchema,
      },
    },
    async (request, reply) => {
      const schedule = await deps.schedules.create(request.tenant, request.body);
      return reply
        .code(201)
        .header('location', `/v1/schedules/${schedule.id}`)
        .send(scheduleView(schedule));
    },
  );

  app.get(
    '/v1/schedules',
    {
      schema: {
        summary: 'Your schedules, oldest first, a page at a time',
        tags: ['schedules'],
        querystring: listSchedulesQuery,
      },
    },
    async (request) => {
      const now = new Date();
      const query = parseRequest(listSchedulesQuery, request.query);
      const page = await deps.schedules.page(request.tenant, query);
      return {
        data: page.data.map((schedule) => scheduleView(schedule, now)),
        next_cursor: page.next_cursor,
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'A schedule, its next runs and how its last run went',
        tags: ['schedules'],
        params: scheduleParams,
      },
    },
    async (request) => scheduleView(await tenantSchedule(request)),
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Delete a schedule: no further run is queued',
        tags: ['schedules'],
        params: scheduleParams,
      },
    },
    async (request, reply) => {
      const { id } = parseRequest(scheduleParams, request.params);
      if (!(await deps.schedules.delete(request.tenant, id))) throw notFound(`schedule ${id}`);
      return reply.code(204).send();
    },
  );
}
