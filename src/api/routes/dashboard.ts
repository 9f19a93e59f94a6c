import { apiKeyDigest } from '../../config/api-key-digest.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DASHBOARD_SCRIPT } from '../../dashboard/app-script.js';
import { DASHBOARD_HTML } from '../../dashboard/page.js';
import { DASHBOARD_CSS } from '../../dashboard/styles.js';
import { parseRequest } from '../../request-validation.js';
import type { ApiKeys } from '../auth.js';
import { HttpError, errorBody } from '../http-errors.js';
import { PUBLIC_BODY_LIMIT_BYTES } from '../json-body.js';
import {
  CSRF_HEADER,
  clearedSessionCookie,
  sessionCookie,
  sessionToken,
  type DashboardSessions,
} from '../sessions.js';

export interface DashboardRouteDeps {
  apiKeys: ApiKeys;
  sessions: DashboardSessions;
  /** Tenants that may open Bull Board (RENDERMILL_ADMIN_TENANTS): the dashboard links to it for them. */
  adminTenants: readonly string[];
}

const loginBody = z
  .object({
    api_key: z
      .string()
      .min(1, 'paste one of your API keys')
      .max(512)
      .regex(/^\S+$/, 'an API key has no spaces'),
  })
  .strict();

/**
 * Only this page's own script and stylesheet run; images come from the storage's presigned
 * URLs (another origin); the page cannot be framed.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  'img-src * data: blob:',
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

function sendAsset(reply: FastifyReply, type: string, body: string) {
  return reply
    .type(type)
    .header('cache-control', 'no-cache')
    .header('x-content-type-options', 'nosniff')
    .send(body);
}

/**
 * The operator dashboard at /dashboard: one page and its script and stylesheet, which read
 * the JSON API; and the session that lets a browser use it. Logging in exchanges an API key
 * for an HttpOnly, SameSite=Strict session cookie, which the API's auth hook accepts like the
 * bearer header (see sessions.ts); the page itself is public, the data behind it is not.
 */
export async function dashboardRoutes(app: FastifyInstance, deps: DashboardRouteDeps) {
  const admins = new Set(deps.adminTenants);
  const hide = { schema: { hide: true } };

  app.get('/dashboard', hide, async (_request, reply) =>
    sendAsset(reply, 'text/html; charset=utf-8', DASHBOARD_HTML)
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('referrer-policy', 'no-referrer'),
  );
  app.get('/dashboard/', hide, async (_request, reply) => reply.redirect('/dashboard'));
  app.get('/dashboard/app.js', hide, async (_request, reply) =>
    sendAsset(reply, 'text/javascript; charset=utf-8', DASHBOARD_SCRIPT),
  );
  app.get('/dashboard/app.css', hide, async (_request, reply) =>
    sendAsset(reply, 'text/css; charset=utf-8', DASHBOARD_CSS),
  );

  /** Who the session cookie belongs to; 401 without a live session (the page shows the login). */
  app.get('/dashboard/session', hide, async (request: FastifyRequest, reply) => {
    const tenant = await deps.sessions.tenantFor(sessionToken(request));
    if (!tenant) throw new HttpError(401, 'unauthorized', 'not logged in: POST /dashboard/login');
    return reply.header('cache-control', 'no-store').send({ tenant, admin: admins.has(tenant) });
  });

  // Public routes: a body of a few KB at most (PUBLIC_BODY_LIMIT_BYTES), refused before it is read.
  const smallBody = { ...hide, bodyLimit: PUBLIC_BODY_LIMIT_BYTES };
  app.post('/dashboard/login', smallBody, async (request, reply) => {
    // A cross-site form cannot send this header (nor a JSON body): nobody is logged in by
    // another site into an account of its choosing.
    if (!request.headers[CSRF_HEADER]) {
      throw new HttpError(
        403,
        'csrf_check_failed',
        `log in from the dashboard page (${CSRF_HEADER})`,
      );
    }
    const { api_key } = parseRequest(loginBody, request.body);
    const tenant = deps.apiKeys.tenantFor(`Bearer ${api_key}`);
    if (!tenant) throw new HttpError(401, 'unauthorized', 'that API key is not valid');
    const token = await deps.sessions.create(apiKeyDigest(api_key));
    request.log.info({ tenant }, 'dashboard login');
    return reply
      .header('set-cookie', sessionCookie(request, token, deps.sessions.ttlSeconds))
      .header('cache-control', 'no-store')
      .send({ tenant, admin: admins.has(tenant) });
  });

  app.post('/dashboard/logout', smallBody, async (request, reply) => {
    // Like login: only the dashboard's own page may log a browser out.
    if (!request.headers[CSRF_HEADER]) {
      return reply
        .code(403)
        .send(errorBody('csrf_check_failed', `log out from the dashboard page (${CSRF_HEADER})`));
    }
    await deps.sessions.destroy(sessionToken(request));
    return reply.header('set-cookie', clearedSessionCookie(request)).code(204).send();
  });
}
