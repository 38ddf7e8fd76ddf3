// Who may call what on the HTTP role: the platform's API calls carry FOREWARN_API_TOKEN as a
// bearer token; ops tools (queue dashboard, template studio) carry FOREWARN_ADMIN_TOKEN, as a
// bearer token or as the password of basic auth (what a browser can send). Both sides of each
// comparison are hashed first, so timingSafeEqual compares equal lengths and the time taken says
// nothing about the token.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

function sameToken(given: string, token: string): boolean {
  return timingSafeEqual(digest(given), digest(token));
}

/** Whether the request's Authorization header is `Bearer <token>`. An unset token matches nothing. */
export function bearerMatches(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || header === undefined) return false;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match !== null && sameToken(match[1]!, token);
}

/**
 * Whether the Authorization header carries the admin token: `Bearer <token>`, or `Basic` with the
 * token as the password (any user name: a browser's login prompt asks for one). An unset token
 * matches nothing.
 */
export function adminMatches(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || header === undefined) return false;
  if (bearerMatches(header, token)) return true;
  const match = /^Basic[ ]+([A-Za-z0-9+/=]+)[ ]*$/i.exec(header);
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon >= 0 && sameToken(decoded.slice(colon + 1), token);
}

/** The WWW-Authenticate header of an admin refusal: browsers then ask for the token. */
export const ADMIN_CHALLENGE = 'Basic realm="forewarn admin", charset="UTF-8"';

/**
 * A fastify onRequest hook for ops tools: lets the admin token through, answers anything else
 * with 401 and the basic-auth challenge (JSON for API clients, a line of text for browsers).
 */
export function requireAdmin(token: string | undefined, route: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (adminMatches(request.headers.authorization, token)) return;
    request.log.info({ route, status: 401 }, 'admin request refused');
    await reply.code(401).header('www-authenticate', ADMIN_CHALLENGE).send({
      error: 'FW_ADMIN_UNAUTHORIZED',
      message:
        'expected the FOREWARN_ADMIN_TOKEN as Authorization: Bearer <token>, or as the password of basic auth',
    });
  };
}

/**
 * A fastify onRequest hook for the platform's API calls (preferences, channel status): lets
 * FOREWARN_API_TOKEN through as a bearer token, answers anything else with 401 and nothing read.
 */
export function requireApiToken(token: string | undefined, route: string) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (bearerMatches(request.headers.authorization, token)) return;
    request.log.info({ route, status: 401 }, 'api call refused');
    await reply.code(401).header('www-authenticate', 'Bearer realm="forewarn"').send({
      error: 'FW_API_UNAUTHORIZED',
      message: 'expected an Authorization: Bearer <token> header with the FOREWARN_API_TOKEN',
    });
  };
}
