import type { FastifyInstance } from 'fastify';
import type { PipelineContext } from './image-request-pipeline.js';

/** Replicate's predictions API (POST /v1/models/{owner}/{name}/predictions, GET /v1/predictions/{id}, POST …/cancel). */
export function registerReplicateRoutes(app: FastifyInstance, context: PipelineContext): void {
  void app;
  void context;
}
