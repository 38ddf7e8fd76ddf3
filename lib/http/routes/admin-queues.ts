// The queue dashboard for ops: Bull Board at /admin/queues, showing forewarn's BullMQ queues (their
// jobs, counts, failures and workers). Every request under the prefix (the page, its static
// assets, its JSON API, and paths that match nothing) needs FOREWARN_ADMIN_TOKEN (lib/http/auth.ts);
// production does not start without it (lib/env.ts PRODUCTION_REQUIREMENTS). It is read-only
// unless http.adminQueues.readOnly is false: Bull Board then hides its buttons, and every request
// that is not a read is refused here, before Bull Board, so no action of its API gets through.
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QUEUE_NAMES } from '../../queue/queues.ts';
import { requireAdmin } from '../auth.ts';
import type { HttpRoutes } from '../deps.ts';

export const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The dashboard is a script-driven page: its own scripts, styles, images and API calls, from this
 * origin only (its Google font is not loaded: nothing external). Set on its responses alone; every
 * other route keeps lib/http/security.ts's policy without script.
 */
export const ADMIN_QUEUES_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "font-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const READS = new Set(['GET', 'HEAD']);

export const adminQueuesRoutes: HttpRoutes = {
  parts: [`http:${ADMIN_QUEUES_PATH}`],
  register(server, deps) {
    const queues = deps.queues;
    if (queues === undefined) return;
    const readOnly = deps.config?.().http.adminQueues.readOnly ?? true;
    if (deps.adminToken === undefined)
      deps.logger.warn(
        { component: 'http', code: 'FW_ADMIN_UNAUTHORIZED' },
        `FOREWARN_ADMIN_TOKEN is not set: the queue dashboard at ${ADMIN_QUEUES_PATH} refuses every request`,
      );

    const adapter = new FastifyAdapter();
    adapter.setBasePath(ADMIN_QUEUES_PATH);
    createBullBoard({
      queues: QUEUE_NAMES.map((name) => new BullMQAdapter(queues.get(name), { readOnlyMode: readOnly })),
      // @bull-board/fastify 9.10.1 carries its own copy of @bull-board/api 9.10.1 beside the
      // project's 9.10.2: the same interface, declared twice, which TypeScript tells apart.
      serverAdapter: adapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
      options: { uiConfig: { boardTitle: 'forewarn queues' } },
    });

    const refuseActions = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (READS.has(request.method)) return;
      request.log.info({ route: ADMIN_QUEUES_PATH, status: 405 }, 'queue action refused: read-only');
      await reply.code(405).header('allow', 'GET, HEAD').send({
        error: 'FW_ADMIN_READ_ONLY',
        message: `the queue dashboard is read-only (http.adminQueues.readOnly: true in the config): only GET and HEAD are served; set it to false and restart the HTTP role to act on jobs`,
      });
    };

    // One encapsulated scope: its hooks cover every route Bull Board registers under the prefix,
    // and its not-found handler, and nothing outside it.
    void server.register(
      async (scope) => {
        scope.addHook('onRequest', requireAdmin(deps.adminToken, ADMIN_QUEUES_PATH));
        if (readOnly) scope.addHook('onRequest', refuseActions);
        // After the server-wide onSend hook (a parent's hooks run first): replaces its CSP.
        scope.addHook('onSend', async (_request, reply, payload) => {
          reply.header('content-security-policy', ADMIN_QUEUES_CSP);
          return payload;
        });
        scope.setNotFoundHandler((_request, reply) =>
          reply.code(404).send({ error: 'not-found', message: 'no such page of the queue dashboard' }),
        );
        await scope.register(adapter.registerPlugin());
      },
      { prefix: ADMIN_QUEUES_PATH },
    );
  },
};
