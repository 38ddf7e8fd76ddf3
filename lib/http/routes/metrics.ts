// GET /metrics: Prometheus text (lib/metrics/exposition.ts), read at scrape time from the
// databases and the queues, so that any replica of the HTTP role reports the whole deployment
// (the history tables through running totals of their settled rows, lib/metrics/settled.ts).
// Scrapes that arrive while one is being read share its result instead of reading again.
import { configHash } from '../../config/hash.ts';
import { withQueryTimeout } from '../../db/pool.ts';
import { tickBounds } from '../../watchdog/bounds.ts';
import {
  METRICS_CONTENT_TYPE,
  PART_TIMEOUT_MS,
  readMetricsSnapshot,
  renderMetrics,
  type MetricsSnapshot,
} from '../../metrics/exposition.ts';
import { SettledTotals } from '../../metrics/settled.ts';
import type { HttpRoutes } from '../deps.ts';

export const metricsRoutes: HttpRoutes = {
  parts: ['http:/metrics'],
  register(server, deps) {
    const { queues, config } = deps;
    if (queues === undefined || config === undefined) return;
    const log = deps.logger.child({ component: 'metrics' });
    const history = new SettledTotals();
    // A query abandoned (a hung server) releases its connection: scrapes never drain the pools.
    // The first scrape folds the whole history, which may take seconds at millions of rows.
    const db = withQueryTimeout(deps.db, 60_000);
    const platformDb = withQueryTimeout(deps.platformDb, PART_TIMEOUT_MS);
    let reading: Promise<MetricsSnapshot> | undefined;
    const snapshot = () => {
      reading ??= readMetricsSnapshot({
        db,
        platformDb,
        platformSchema: deps.platformSchema,
        queues,
        history,
        watchdog: () => ({
          ticks: tickBounds(config()),
          maxDataLagSeconds: config().watchdog.maxDataLagSeconds,
        }),
        configHash: () => configHash(config()),
        now: deps.now,
      }).finally(() => {
        reading = undefined;
      });
      return reading;
    };
    server.get('/metrics', async (_request, reply) => {
      const read = await snapshot();
      for (const { part, error } of read.failed)
        log.warn({ part, err: error }, 'metrics: a part could not be read; its metrics are left out');
      return reply.type(METRICS_CONTENT_TYPE).send(await renderMetrics(read));
    });
  },
};
