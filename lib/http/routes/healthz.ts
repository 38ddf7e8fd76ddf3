// GET /healthz: the process serves requests. It checks no database on purpose: a load balancer
// that took replicas out whenever PostgreSQL blinked would take them all out at once.
import type { HttpRoutes } from '../deps.ts';

export const healthzRoutes: HttpRoutes = {
  parts: ['http:/healthz'],
  register(server) {
    server.get('/healthz', async () => ({ status: 'ok' }));
  },
};
