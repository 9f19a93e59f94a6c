/**
 * A stand-in for OpenAI's Images API: the three endpoints, real images of the requested size,
 * per-minute limits on requests, images and tokens enforced with real 429s in the shape
 * of a bucket, a sliding or a fixed window, fault knobs and exact counters; also its Files and
 * Batches APIs, for batches of image requests. Tests and benchmarks drive it; `rendermill
 * render` and `start` use it when no key is configured.
 */

import multipart from '@fastify/multipart';
import Fastify from 'fastify';
import { BatchFiles } from './batch-files.js';
import { BatchJobs } from './batch-jobs.js';
import { registerBatchRoutes } from './batch-routes.js';
import { registerControlRoutes } from './control-routes.js';
import { registerFalRoutes } from './fal-routes.js';
import { registerImageRoutes } from './image-routes.js';
import { registerReplicateRoutes } from './replicate-routes.js';
import { registerResponsesRoutes } from './responses-routes.js';
import type { SimulatorKnobs } from './knobs.js';
import { ServedFiles } from './served-files.js';
import { SimulatorState, type SimulatorStats } from './simulator-state.js';
import { ModelRegistry } from '../../src/models/model-registry.js';

// The simulator's public API lives here; these are re-exported from the files that own them.
export { IMAGE_INPUT_TOKENS, textTokens } from './image-answer.js';
export type { SimulatorKnobs, SimulatorStats };

/** A simulator that is listening, and the handles a test or benchmark drives it by. */
export interface RunningSimulator {
  /** Base URL for an OpenAI client, e.g. http://127.0.0.1:PORT/v1. */
  url: string;
  origin: string;
  port: number;
  setKnobs(knobs: Partial<SimulatorKnobs>): void;
  knobs(): SimulatorKnobs;
  stats(): SimulatorStats;
  /** Zeroes the counters, refills every rate-limit window and forgets the Batch API's files and batches. */
  reset(): void;
  stop(): Promise<void>;
}

/**
 * Starts a simulator listening on `host:port` (by default a free port on 127.0.0.1), with the
 * given knobs over their defaults.
 */
export async function startSimulator(
  options: Partial<SimulatorKnobs> & { port?: number; host?: string } = {},
): Promise<RunningSimulator> {
  const { port = 0, host = '127.0.0.1', ...initialKnobs } = options;
  const registry = ModelRegistry.load();
  const state = new SimulatorState(initialKnobs);

  // An edit may carry 16 input images (gpt-image models, 50 MB each) and a mask.
  const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
  await app.register(multipart, { limits: { fileSize: 64 * 1024 * 1024, files: 17 } });
  const files = new ServedFiles();

  let origin = '';
  const pipeline = { state, registry, files, origin: () => origin };
  registerImageRoutes(app, pipeline);
  registerResponsesRoutes(app, pipeline);
  registerReplicateRoutes(app, pipeline);
  registerFalRoutes(app, pipeline);
  registerControlRoutes(app, { state, files });
  const batchFiles = new BatchFiles();
  const jobs = new BatchJobs({ ...pipeline, files: batchFiles, served: files });
  registerBatchRoutes(app, { state, files: batchFiles, jobs });
  state.onReset(() => {
    jobs.clear();
    batchFiles.clear();
  });

  await app.listen({ port, host });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  // A server bound to every interface is still reached, and its urls given, on loopback.
  origin = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${boundPort}`;

  return {
    url: `${origin}/v1`,
    origin,
    port: boundPort,
    setKnobs: (changes) => state.setKnobs(changes),
    knobs: () => state.knobs,
    stats: () => structuredClone(state.stats),
    reset: () => state.reset(),
    stop: async () => {
      files.close();
      jobs.clear();
      // Requests still being answered (a slow one whose client gave up) are cut, not waited
      // for: a stopping provider owes nobody an answer.
      const closing = app.close();
      app.server.closeAllConnections();
      await closing;
    },
  };
}
