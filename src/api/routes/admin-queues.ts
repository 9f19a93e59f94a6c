import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../http-errors.js';

/** Where Bull Board is served. */
export const ADMIN_QUEUES_PATH = '/admin/queues';

export interface AdminQueueRouteDeps {
  /** Every BullMQ queue of the job catalog. */
  adminQueues?: readonly Queue[];
  /** Tenants allowed in (RENDERMILL_ADMIN_TENANTS); none: nobody. */
  adminTenants: readonly string[];
}

/**
 * Bull Board at /admin/queues: every queue of the catalog, with every tenant's jobs, for
 * operators only — tenants listed in RENDERMILL_ADMIN_TENANTS, authenticated like the rest
 * of the API (bearer key or dashboard session, checked by the API's `onRequest` hook).
 */
export async function adminQueueRoutes(
  app: FastifyInstance,
  deps: AdminQueueRouteDeps,
): Promise<void> {
  const admins = new Set(deps.adminTenants);
  // Answered here, not thrown: Bull Board's error handler would reshape a thrown error.
  app.addHook('onRequest', async (request, reply) => {
    if (admins.has(request.tenant)) return;
    const message =
      admins.size === 0
        ? `${ADMIN_QUEUES_PATH} shows every tenant's jobs: it is for operators, and none is configured (RENDERMILL_ADMIN_TENANTS)`
        : `${ADMIN_QUEUES_PATH} shows every tenant's jobs: only the tenants in RENDERMILL_ADMIN_TENANTS may open it, and "${request.tenant}" is not one`;
    return reply.code(403).send(errorBody('forbidden', message));
  });

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: (deps.adminQueues ?? []).map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'rendermill queues' } },
  });
  // Bull Board's routes declare no body, query or response schema, so the API's pass-through
  // validator and JSON.stringify serializer never touch them; its static files, views and
  // error handler stay inside this plugin's scope.
  await app.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
}
