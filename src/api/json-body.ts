import type { FastifyInstance } from 'fastify';
import { HttpError } from './http-errors.js';
import { MAX_JSON_DEPTH, jsonNestsDeeperThan, tooDeepMessage } from '../catalog/json-depth.js';

/**
 * The largest body a route without an API key reads (the dashboard's login and logout): a
 * login is one key of at most 512 characters. Anyone may call these routes, so none of them
 * may make the server read, or parse, megabytes.
 */
export const PUBLIC_BODY_LIMIT_BYTES = 4 * 1024;

/**
 * Replaces Fastify's JSON parser with one that first measures how deep the body nests, in one
 * pass, and refuses more than MAX_JSON_DEPTH levels (400 `json_too_deep`) before `JSON.parse`
 * sees it. Parsing itself stays Fastify's, with its checks against `__proto__` and
 * `constructor` keys.
 */
export function registerBoundedJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH)) {
      done(new HttpError(400, 'json_too_deep', `the body cannot be read: ${tooDeepMessage()}`));
      return;
    }
    parse(request, text, done);
  });
}
