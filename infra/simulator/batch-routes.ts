import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { cursorPage, fileObject, type BatchFiles, type FilePurpose } from './batch-files.js';
import { BATCH_ENDPOINTS, BatchJobs, type BatchEndpoint } from './batch-jobs.js';
import { checkApiKey } from './image-request-pipeline.js';
import { SimulatedError, invalid } from './simulated-error.js';
import type { SimulatorState } from './simulator-state.js';

/** The largest file the Files API takes (OpenAI: 512 MB); a batch then checks its own limit. */
const MAX_UPLOAD_BYTES = 512 * 1024 * 1024;

/** What the Files and Batches routes work on. */
export interface BatchRoutesContext {
  state: SimulatorState;
  files: BatchFiles;
  jobs: BatchJobs;
}

type Query = Record<string, string | undefined>;

const notFound = (what: string, id: string) =>
  new SimulatedError(404, 'invalid_request_error', null, `No such ${what}: ${id}`, 'id');

/** A list's `limit`: absent takes the default, anything but a whole number in range is a 400. */
function limitOf(query: Query, fallback: number, max: number): number {
  if (query.limit === undefined) return fallback;
  const limit = Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw invalid(`limit must be an integer between 1 and ${max}.`, 'limit');
  }
  return limit;
}

/** OpenAI's metadata: up to 16 string values, keys up to 64 characters, values up to 512. */
function metadataOf(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalid('metadata must be an object.', 'metadata');
  const entries = Object.entries(value);
  if (entries.length > 16) throw invalid('metadata takes at most 16 keys.', 'metadata');
  for (const [key, item] of entries) {
    if (key.length > 64 || typeof item !== 'string' || item.length > 512) {
      throw invalid(
        'metadata keys must be up to 64 characters, values strings up to 512.',
        'metadata',
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The `batchDropAnswers` knob: what was asked is done, and the client never hears of it. */
function dropAnswer(request: FastifyRequest, reply: FastifyReply) {
  request.raw.socket.destroy();
  return reply.hijack();
}

/**
 * OpenAI's Files API (purpose `batch`) and Batches API for the image endpoints. Every route
 * checks the bearer key as the Images API does; none is rate limited or counted in `requests`.
 */
export function registerBatchRoutes(app: FastifyInstance, context: BatchRoutesContext): void {
  const { state, files, jobs } = context;

  /** A route behind the key check, its SimulatedErrors answered in OpenAI's error shape. */
  const route =
    <P>(handler: (request: FastifyRequest<{ Params: P }>, reply: FastifyReply) => unknown) =>
    async (request: FastifyRequest<{ Params: P }>, reply: FastifyReply) => {
      try {
        checkApiKey(state.knobs, request);
        return await handler(request, reply);
      } catch (error) {
        if (!(error instanceof SimulatedError)) throw error;
        return reply.code(error.status).send({
          error: { message: error.message, type: error.type, param: error.param, code: error.code },
        });
      }
    };

  const fileById = (id: string) => {
    const file = files.get(id);
    if (!file) throw notFound('File', id);
    return file;
  };
  const batchById = (id: string) => {
    const batch = jobs.get(id);
    if (!batch) throw notFound('Batch', id);
    return batch;
  };

  app.post(
    '/v1/files',
    route(async (request, reply) => {
      if (!request.isMultipart()) throw invalid('Expected multipart/form-data.', 'file');
      let purpose: string | undefined;
      let upload: { filename: string; chunks: Buffer[] } | undefined;
      for await (const part of request.parts({ limits: { fileSize: MAX_UPLOAD_BYTES } })) {
        if (part.type === 'file') {
          const chunks: Buffer[] = [];
          for await (const chunk of part.file) chunks.push(chunk as Buffer);
          if (part.file.truncated) {
            throw new SimulatedError(
              413,
              'invalid_request_error',
              'file_too_large',
              `File is larger than ${MAX_UPLOAD_BYTES} bytes.`,
              'file',
            );
          }
          if (part.fieldname === 'file') upload = { filename: part.filename, chunks };
        } else if (part.fieldname === 'purpose') purpose = String(part.value);
      }
      if (purpose !== 'batch') {
        throw invalid(`Invalid purpose '${purpose ?? ''}': this server takes 'batch'.`, 'purpose');
      }
      if (!upload) throw invalid('file is required.', 'file');
      state.batchApiCalled('files');
      const stored = fileObject(files.add({ ...upload, purpose: purpose as FilePurpose }));
      if (state.takeDroppedAnswer('files')) return dropAnswer(request, reply);
      return stored;
    }),
  );

  app.get(
    '/v1/files',
    route((request) => {
      const query = request.query as Query;
      const order = query.order ?? 'desc';
      if (order !== 'asc' && order !== 'desc') throw invalid('order must be asc or desc.', 'order');
      const limit = limitOf(query, 10_000, 10_000);
      return cursorPage(
        files.list(query.purpose, order),
        { after: query.after, limit },
        fileObject,
      );
    }),
  );

  app.get(
    '/v1/files/:id',
    route<{ id: string }>((request) => fileObject(fileById(request.params.id))),
  );

  app.get(
    '/v1/files/:id/content',
    route<{ id: string }>((request, reply) => {
      const file = fileById(request.params.id);
      // Streamed chunk by chunk: an output file of large images need not fit in one Buffer.
      return reply
        .type('application/octet-stream')
        .header('content-length', file.bytes)
        .send(Readable.from(file.chunks));
    }),
  );

  app.delete(
    '/v1/files/:id',
    route<{ id: string }>((request) => {
      const file = fileById(request.params.id);
      files.delete(file.id);
      return { id: file.id, object: 'file', deleted: true };
    }),
  );

  app.post(
    '/v1/batches',
    route((request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const endpoint = body.endpoint;
      if (!BATCH_ENDPOINTS.includes(endpoint as BatchEndpoint)) {
        throw invalid(
          `Invalid endpoint: this server runs batches of ${BATCH_ENDPOINTS.join(', ')}.`,
          'endpoint',
        );
      }
      if (body.completion_window !== '24h') {
        throw invalid("completion_window must be '24h'.", 'completion_window');
      }
      const metadata = metadataOf(body.metadata);
      const inputFile =
        typeof body.input_file_id === 'string' ? files.get(body.input_file_id) : undefined;
      if (!inputFile || inputFile.purpose !== 'batch') {
        throw invalid(
          `Invalid input_file_id: no file of purpose 'batch' with id ${String(body.input_file_id)}.`,
          'input_file_id',
        );
      }
      state.batchApiCalled('batches');
      const batch = jobs.create({ inputFile, endpoint: endpoint as BatchEndpoint, metadata });
      if (state.takeDroppedAnswer('batches')) return dropAnswer(request, reply);
      return BatchJobs.answer(batch);
    }),
  );

  app.get(
    '/v1/batches',
    route((request) => {
      const query = request.query as Query;
      const limit = limitOf(query, 20, 100);
      return cursorPage(jobs.list(), { after: query.after, limit }, BatchJobs.answer);
    }),
  );

  app.get(
    '/v1/batches/:id',
    route<{ id: string }>((request) => BatchJobs.answer(batchById(request.params.id))),
  );

  app.post(
    '/v1/batches/:id/cancel',
    route<{ id: string }>((request) => {
      const batch = batchById(request.params.id);
      jobs.cancel(batch);
      return BatchJobs.answer(batch);
    }),
  );
}
