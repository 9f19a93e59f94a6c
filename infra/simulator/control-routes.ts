import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { knobsSchema } from './knobs.js';
import type { ServedFiles } from './served-files.js';
import type { SimulatorState } from './simulator-state.js';

/** What the control routes read and change. */
export interface ControlContext {
  state: SimulatorState;
  files: ServedFiles;
}

/**
 * The routes beside the Images API: `/files/…` (the images of `url` answers) and `/_sim/…`,
 * through which a process that did not start the simulator (a benchmark, the demo) reads its
 * counters and turns its knobs.
 */
export function registerControlRoutes(app: FastifyInstance, context: ControlContext): void {
  const { state, files } = context;

  app.get<{ Params: { file: string } }>('/files/:file', async (request, reply) => {
    // The extension is only for clients that go by it: the id alone names the file.
    const file = files.get(request.params.file.replace(/\.\w+$/, ''));
    if (!file) {
      return reply
        .code(404)
        .send({ error: { message: 'expired or unknown image', code: 'not_found' } });
    }
    return reply.type(file.type).send(file.data);
  });

  app.get('/_sim/health', async () => ({ ok: true }));
  app.get('/_sim/stats', async () => state.stats);
  app.post('/_sim/reset', async () => {
    state.reset();
    return { ok: true };
  });
  app.post('/_sim/knobs', async (request, reply) => {
    // Validated here rather than by setKnobs throwing, to answer 400 naming the bad knob.
    // Merged over the current knobs before parsing: zod fills the defaults of a partial
    // schema's absent keys, which would quietly reset every knob the body did not name.
    const body = request.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body))
      return reply.code(400).send({ error: { message: 'knobs must be a JSON object' } });
    const parsed = knobsSchema.safeParse({ ...state.knobs, ...body });
    if (!parsed.success)
      return reply.code(400).send({ error: { message: z.prettifyError(parsed.error) } });
    state.setKnobs(parsed.data);
    return state.knobs;
  });
}
