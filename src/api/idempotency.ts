import { createHash, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RedisConnection } from '../redis/redis-connection.js';
import { idempotencyKey } from '../redis/redis-keys.js';
import { errorBody } from './http-errors.js';

interface StoredAnswer {
  state: 'done';
  fingerprint: string;
  statusCode: number;
  headers: Record<string, string>;
  /** Absent when too large to keep: the request is run again (its images come from the cache). */
  body?: string;
}

interface IdempotencyState {
  redisKey: string;
  key: string;
  hash: Hash;
  digest?: string;
  /** Whether this request claimed the key (and so must record or release it). */
  claimed: boolean;
  /**
   * A multipart form is read by its route, from the raw request: the route fingerprints what
   * it read and settles the key itself (`settleIdempotency`) before acting on it.
   */
  deferred: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    idempotency?: IdempotencyState;
  }
  interface FastifyInstance {
    /**
     * For a route that reads a multipart form itself: fingerprints what it read and settles
     * the request's Idempotency-Key. True when an answer was sent (a replay, or a refusal):
     * the route must then do nothing more.
     */
    settleIdempotency(
      request: FastifyRequest,
      reply: FastifyReply,
      fingerprint: string,
    ): Promise<boolean>;
  }
}

/** While the first request runs, its claim lasts this long (a big catalog upload takes a while). */
const CLAIM_MS = 3600_000;
/**
 * How long an answer is kept for replay. Fixed, not configured: it is part of the API's
 * contract (docs/api.md), which clients retrying with the same key rely on.
 */
const REPLAY_TTL_SECONDS = 24 * 3600;
/**
 * Answers larger than this are not stored; a replay runs the request again (its images come
 * from the cache). Fixed: it only bounds what one key may hold in Redis.
 */
const MAX_STORED_ANSWER_BYTES = 1024 * 1024;
/** Headers an answer is replayed with. */
const REPLAYED_HEADERS = [
  'content-type',
  'location',
  'x-rendermill-batch-id',
  'x-rendermill-cost-usd',
  'x-rendermill-cached',
  'x-rendermill-cache',
  'x-rendermill-route',
  'x-rendermill-model',
];

/**
 * `Idempotency-Key` on every POST: a retried request (same key, same body) gets the first
 * one's answer again instead of creating a second batch or schedule; the same key with a
 * different body is refused (422). Keys are per tenant and kept REPLAY_TTL_SECONDS.
 *
 * The body is fingerprinted as it streams in (a catalog is never buffered for it); a multipart
 * form by its fields and its files' content, once its route has read it. The first
 * request claims the key before its handler runs, so a concurrent retry is told to wait (409)
 * rather than run twice. Only a 2xx answer is kept: a refused request changed nothing and may
 * be sent again with the same key.
 */
export function registerIdempotency(app: FastifyInstance, redis: RedisConnection): void {
  const digestOf = (state: IdempotencyState) => (state.digest ??= state.hash.digest('hex'));

  app.addHook('preParsing', async (request, reply, payload) => {
    const key = request.headers['idempotency-key'];
    if (request.method !== 'POST' || !request.tenant || key === undefined) return payload;
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
      return reply
        .code(400)
        .send(errorBody('invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 characters'));
    }
    const hash = createHash('sha256').update(`${request.method} ${request.url}\n`);
    const contentType = request.headers['content-type'] ?? '';
    hash.update(`${contentType.split(';')[0]}\n`);
    const deferred = contentType.startsWith('multipart/');
    request.idempotency = {
      redisKey: idempotencyKey(request.tenant, key),
      key,
      hash,
      claimed: false,
      deferred,
    };
    if (deferred) return payload;
    let received = 0;
    const tee = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        received += chunk.length;
        (tee as unknown as { receivedEncodedLength: number }).receivedEncodedLength = received;
        callback(null, chunk);
      },
    });
    payload.on('error', (error) => tee.destroy(error));
    return payload.pipe(tee);
  });

  app.addHook('preHandler', async (request, reply) => {
    const state = request.idempotency;
    if (!state || state.deferred) return;
    await settle(request, reply, state);
  });

  app.decorate(
    'settleIdempotency',
    async (request: FastifyRequest, reply: FastifyReply, fingerprint: string) => {
      const state = request.idempotency;
      if (!state?.deferred) return false;
      state.hash.update(fingerprint);
      await settle(request, reply, state);
      return reply.sent;
    },
  );

  /** Replays the stored answer, refuses a reused key, or claims the key for this request. */
  async function settle(request: FastifyRequest, reply: FastifyReply, state: IdempotencyState) {
    const raw = await redis.get(state.redisKey);
    if (raw) {
      return replay(request, reply, state, JSON.parse(raw) as StoredAnswer | { state: 'pending' });
    }
    const claimed = await redis.set(state.redisKey, '{"state":"pending"}', 'PX', CLAIM_MS, 'NX');
    if (!claimed) return inUse(reply, state);
    state.claimed = true;
  }

  app.addHook('onSend', async (request, reply, payload) => {
    const state = request.idempotency;
    if (!state?.claimed) return payload;
    state.claimed = false;
    const ok = reply.statusCode >= 200 && reply.statusCode < 300;
    const streamDone = !isReadable(request.body) || request.body.readableEnded;
    if (!ok || !streamDone) {
      await redis.del(state.redisKey);
      return payload;
    }
    const headers: Record<string, string> = {};
    for (const name of REPLAYED_HEADERS) {
      const value = reply.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    const answer: StoredAnswer = {
      state: 'done',
      fingerprint: digestOf(state),
      statusCode: reply.statusCode,
      headers,
    };
    if (typeof payload === 'string' && Buffer.byteLength(payload) <= MAX_STORED_ANSWER_BYTES)
      answer.body = payload;
    await redis.set(state.redisKey, JSON.stringify(answer), 'EX', REPLAY_TTL_SECONDS);
    return payload;
  });

  async function replay(
    request: FastifyRequest,
    reply: FastifyReply,
    state: IdempotencyState,
    stored: StoredAnswer | { state: 'pending' },
  ) {
    if (stored.state === 'pending') return inUse(reply, state);
    // The fingerprint needs the whole body: a catalog not read yet is read (and dropped) now.
    if (isReadable(request.body)) await drain(request.body);
    if (digestOf(state) !== stored.fingerprint) {
      return reply
        .code(422)
        .send(
          errorBody(
            'idempotency_key_reused',
            `Idempotency-Key "${state.key}" was already used with a different request; use a new key for a new request`,
          ),
        );
    }
    if (stored.body === undefined) return; // too large to keep: run it again
    return reply
      .code(stored.statusCode)
      .headers(stored.headers)
      .header('idempotent-replayed', 'true')
      .send(stored.body);
  }
}

function inUse(reply: FastifyReply, state: IdempotencyState) {
  return reply
    .code(409)
    .header('retry-after', '1')
    .send(
      errorBody(
        'idempotency_key_in_use',
        `a request with Idempotency-Key "${state.key}" is still being processed; retry shortly`,
      ),
    );
}

const isReadable = (body: unknown): body is Readable =>
  typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function';

async function drain(stream: Readable): Promise<void> {
  for await (const _chunk of stream) {
    // read to the end so the fingerprint sees every byte
  }
}
