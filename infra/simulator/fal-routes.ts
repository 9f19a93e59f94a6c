import type { FastifyInstance } from 'fastify';
import type { PipelineContext } from './image-request-pipeline.js';

/** fal's queue API (POST /fal/{model}, status_url, response_url, PUT cancel_url). */
export function registerFalRoutes(app: FastifyInstance, context: PipelineContext): void {
  void app;
  void context;
}
