import type { FastifyInstance, FastifyRequest } from 'fastify';
import { handleImageRequest, type PipelineContext } from './image-request-pipeline.js';
import type { ImageRequest } from './request-checks.js';
import { invalid } from './simulated-error.js';

const text = (value: unknown) => (typeof value === 'string' ? value : undefined);

/**
 * A JSON body of /generations (or of a batch line), leniently read: wrong types count as
 * absent, as validation then says.
 */
export function readJsonBody(json: unknown): ImageRequest {
  const body = (json ?? {}) as Record<string, unknown>;
  return {
    model: text(body.model) ?? 'dall-e-2',
    prompt: text(body.prompt),
    n: body.n === undefined || body.n === null ? 1 : Number(body.n),
    size: text(body.size),
    quality: text(body.quality),
    background: text(body.background),
    output_format: text(body.output_format),
    response_format: text(body.response_format),
    images: [],
  };
}

/** Multipart bodies of /edits and /variations: files under image / image[] / mask, numbers as text. */
async function readMultipart(request: FastifyRequest): Promise<ImageRequest> {
  if (!request.isMultipart())
    throw invalid('Expected multipart/form-data.', null as unknown as string);
  const fields: Record<string, string> = {};
  const images: Buffer[] = [];
  let mask: Buffer | undefined;
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      const data = await part.toBuffer();
      if (part.fieldname === 'mask') mask = data;
      else if (part.fieldname === 'image' || part.fieldname === 'image[]') images.push(data);
    } else fields[part.fieldname] = String(part.value);
  }
  return {
    model: fields.model ?? 'dall-e-2',
    prompt: fields.prompt,
    n: fields.n === undefined ? 1 : Number(fields.n),
    size: fields.size,
    quality: fields.quality,
    background: fields.background,
    output_format: fields.output_format,
    response_format: fields.response_format,
    images,
    mask,
  };
}

/**
 * OpenAI's three image endpoints. The app must have `@fastify/multipart` registered. A body
 * that cannot be read is refused before the pipeline, so it is not counted as a request.
 */
export function registerImageRoutes(app: FastifyInstance, context: PipelineContext): void {
  app.post('/v1/images/generations', async (request, reply) =>
    handleImageRequest(context, {
      endpoint: 'generations',
      request,
      reply,
      body: readJsonBody(request.body),
    }),
  );
  app.post('/v1/images/edits', async (request, reply) =>
    handleImageRequest(context, {
      endpoint: 'edits',
      request,
      reply,
      body: await readMultipart(request),
    }),
  );
  app.post('/v1/images/variations', async (request, reply) =>
    handleImageRequest(context, {
      endpoint: 'variations',
      request,
      reply,
      body: await readMultipart(request),
    }),
  );
}
