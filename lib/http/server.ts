// The HTTP role (`forewarn start --role http`): a fastify server for what users reach from a
// message (the restock and unsubscribe links) and for load balancers and ops (/healthz, /readyz, /metrics). Set up here: logging through
// the project's logger without URLs (they carry tokens), form bodies, security headers, JSON
// errors without internals; each concern's routes live in lib/http/routes/ and are listed below.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { ForewarnError } from '../errors.ts';
import type { HttpDeps, HttpRoutes } from './deps.ts';
import { wantsJson } from './refusals.ts';
import { adminQueuesRoutes } from './routes/admin-queues.ts';
import { channelStatusRoutes } from './routes/channel-status.ts';
import { healthzRoutes } from './routes/healthz.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { readyzRoutes } from './routes/readyz.ts';
import { preferencesRoutes } from './routes/preferences.ts';
import { restockRoutes } from './routes/restock.ts';
import { studioRoutes } from './routes/studio.ts';
import { unsubscribeRoutes } from './routes/unsubscribe.ts';
import { addSecurityHeaders } from './security.ts';
import { problemPage } from './pages.ts';

export type { HttpDeps } from './deps.ts';

/** Every route module the role serves. */
const ROUTES: readonly HttpRoutes[] = [
  healthzRoutes,
  readyzRoutes,
  metricsRoutes,
  restockRoutes,
  unsubscribeRoutes,
  preferencesRoutes,
  channelStatusRoutes,
  adminQueuesRoutes,
  studioRoutes,
];

/**
 * What the HTTP role stands for in lib/env.ts's production requirements: the role itself and
 * each route (`http:<path>`), so that a route needing a secret refuses a start without it.
 */
export const HTTP_PARTS: readonly string[] = ['http', ...ROUTES.flatMap((routes) => routes.parts)];

/** A form post is a token and a button: a few KB at most. */
const BODY_LIMIT = 8 * 1024;

export function createHttpServer(deps: HttpDeps): FastifyInstance {
  const server = Fastify({
    // Widened to fastify's logger interface, so the instance has the plain FastifyInstance type.
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Fastify's own request lines hold the URL, and so the token: each response is logged below,
    // by route pattern, instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Path parameters up to 200 characters reach their route, which says what it expects of them
    // (the router answers a longer one with a bare 404).
    routerOptions: { maxParamLength: 200 },
    // Requests that hang must not hold a close (SIGTERM) for long.
    requestTimeout: 30_000,
    // On close: idle keep-alive sockets are closed at once, requests in flight may finish.
    forceCloseConnections: 'idle',
    // Behind a proxy, the client's address is not needed for anything: none is trusted.
    trustProxy: false,
  });

  server.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: BODY_LIMIT },
    (_request, body, done) => {
      // A field given twice becomes an array, which no route takes for a token.
      const form: Record<string, string | string[]> = {};
      for (const [key, value] of new URLSearchParams(body as string)) {
        const seen = form[key];
        form[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
      }
      done(null, form);
    },
  );
  addSecurityHeaders(server);

  // Closing stops accepting connections and closes the idle ones; a keep-alive connection whose
  // request is still in flight would stay open after its response and hold the close until the
  // grace period runs out. Responses sent while closing therefore close their connection.
  let closing = false;
  server.addHook('preClose', async () => {
    closing = true;
  });
  server.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  server.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        // The route's pattern, never the URL: a query string carries the token.
        route: request.routeOptions.url ?? null,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request served',
    );
  });

  server.setNotFoundHandler((request, reply) => {
    reply.code(404);
    if (wantsJson(request)) return reply.send({ error: 'not-found', message: 'no such page' });
    return reply
      .type('text/html; charset=utf-8')
      .send(problemPage({ 'zh-CN': '页面不存在。', en: 'There is no such page.' }));
  });

  server.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) {
      // The error, never the request: its URL and body hold the token.
      request.log.error({ route: request.routeOptions.url ?? null, err: error }, 'request failed');
    }
    reply.code(status);
    const message = status >= 500 ? 'something went wrong on our side; nothing was changed' : error.message;
    if (wantsJson(request)) return reply.send({ error: status >= 500 ? 'internal' : 'bad-request', message });
    return reply
      .type('text/html; charset=utf-8')
      .send(
        problemPage(
          status >= 500
            ? { 'zh-CN': '服务暂时出错，请稍后再试。', en: 'Something went wrong. Please try again later.' }
            : { 'zh-CN': '请求无效。', en: 'This request is not valid.' },
        ),
      );
  });

  for (const routes of ROUTES) routes.register(server, deps);
  return server;
}

export interface RunningHttpServer {
  server: FastifyInstance;
  /** Where it listens, e.g. "http://127.0.0.1:8787" (the port chosen when 0 was asked for). */
  address: string;
  /** Stops accepting connections and waits for requests in flight. */
  close(): Promise<void>;
}

export async function startHttpServer(
  deps: HttpDeps,
  listen: { host: string; port: number },
): Promise<RunningHttpServer> {
  const server = createHttpServer(deps);
  let address: string;
  try {
    address = await server.listen({
      host: listen.host,
      port: listen.port,
      listenTextResolver: (where) => `http listening on ${where}`,
    });
  } catch (error) {
    await server.close().catch(() => undefined);
    throw new ForewarnError(
      'FW_HTTP_LISTEN',
      `the HTTP role cannot listen on ${listen.host}:${listen.port} (FOREWARN_HTTP_HOST, FOREWARN_HTTP_PORT): ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { server, address, close: () => server.close() };
}
