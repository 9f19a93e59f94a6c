import type { FastifyInstance } from 'fastify';
import type { PipelineContext } from './image-request-pipeline.js';

/** OpenAI's Responses API with the image_generation tool (POST /v1/responses). */
export function registerResponsesRoutes(app: FastifyInstance, context: PipelineContext): void {
  void app;
  void context;
}
