import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { ApiKeys } from './auth.js';
import { sessionKey } from '../redis/redis-keys.js';
import { errorBody } from './http-errors.js';

/** The cookie that carries a dashboard session. */
export const SESSION_COOKIE = 'rendermill_session';

/**
 * The header a cookie-authenticated request other than GET must carry. A page on another site
 * cannot add a custom header to a cross-site request without a CORS preflight, which the API
 * never grants — so the header proves the request came from rendermill's own pages.
 */
export const CSRF_HEADER = 'x-rendermill-csrf';

/**
 * How long a dashboard session lasts after logging in: a working day, after which the browser
 * asks for the key again. Fixed, not configured: no deployment has needed another length.
 */
const SESSION_TTL_SECONDS = 12 * 3600;

/** The commands sessions need: one Redis or a cluster (each session is one key). */
type SessionRedis = Pick<Redis, 'get' | 'set' | 'del'>;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Dashboard sessions: a browser cannot send a bearer header when it navigates, so logging in
 * with an API key gives it a random session token in an HttpOnly cookie instead. Redis maps the
 * token's SHA-256 to the tenant, with a TTL: neither the key nor a usable token is stored.
 */
export class DashboardSessions {
  readonly ttlSeconds = SESSION_TTL_SECONDS;

  constructor(
    private readonly redis: SessionRedis,
    /** The configured keys: a session lives only as long as the key it was opened with. */
    private readonly apiKeys: Pick<ApiKeys, 'tenantOfDigest'>,
  ) {}

  /**
   * Starts a session with an API key (given by its SHA-256); returns the token for the cookie.
   * The session records which key opened it, never the key itself.
   */
  async create(keySha256: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    await this.redis.set(sessionKey(token), keySha256, 'EX', this.ttlSeconds);
    return token;
  }

  /**
   * The tenant of a live session, or undefined. A session whose key has since been removed
   * from RENDERMILL_API_KEYS is dead: revoking a key revokes the sessions it opened.
   */
  async tenantFor(token: string | undefined): Promise<string | undefined> {
    if (!token || token.length > 200) return undefined;
    const keySha256 = await this.redis.get(sessionKey(token));
    return keySha256 ? this.apiKeys.tenantOfDigest(keySha256) : undefined;
  }

  async destroy(token: string | undefined): Promise<void> {
    if (token && token.length <= 200) await this.redis.del(sessionKey(token));
  }

  /**
   * The tenant of the request's session cookie, or undefined when it has none (or a stale one).
   * A cookie-authenticated request that changes something must prove it comes from
   * rendermill's own pages (see CSRF_HEADER), else it is answered 403 here (`reply.sent`).
   * The answer is sent rather than thrown so that it keeps rendermill's error shape on routes
   * with an error handler of their own (Bull Board's).
   */
  async authenticate(request: FastifyRequest, reply: FastifyReply): Promise<string | undefined> {
    const tenant = await this.tenantFor(sessionToken(request));
    if (tenant && !SAFE_METHODS.has(request.method) && !fromOwnPage(request)) {
      await reply
        .code(403)
        .send(
          errorBody(
            'csrf_check_failed',
            `a request made with the dashboard's session cookie must carry the ${CSRF_HEADER} header`,
          ),
        );
      return undefined;
    }
    return tenant;
  }
}

/** The value of the session cookie in the request's Cookie header. */
export function sessionToken(request: FastifyRequest): string | undefined {
  return readCookie(request.headers.cookie, SESSION_COOKIE);
}

/** One cookie's value from a `Cookie:` header (`a=1; b=2`). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * Whether a state-changing request comes from a page of this origin: it carries the CSRF
 * header (the dashboard's requests), or its `Origin` is this very host (what browsers send on
 * every same-origin POST/PUT/DELETE, e.g. from Bull Board's page, which cannot add headers).
 */
function fromOwnPage(request: FastifyRequest): boolean {
  if (request.headers[CSRF_HEADER]) return true;
  const origin = request.headers.origin;
  if (!origin || !request.headers.host) return false;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** Served over HTTPS (directly, or behind a proxy that says so): the cookie is then Secure. */
function overHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';
}

/** The Set-Cookie value that gives the browser its session. */
export function sessionCookie(request: FastifyRequest, token: string, maxAge: number): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    'Path=/',
    `Max-Age=${maxAge}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(overHttps(request) ? ['Secure'] : []),
  ].join('; ');
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedSessionCookie(request: FastifyRequest): string {
  return sessionCookie(request, '', 0);
}
