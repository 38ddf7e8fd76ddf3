// `npm run bench metrics`: what one /metrics scrape costs as forewarn's history grows. A migrated
// database gets BENCH_METRICS_NOTIFICATIONS messages (default 200,000 and 1,000,000: sent, held,
// withheld, failed, over 500 causes with their events), 2,000 of the last minutes, and a detector
// run every 30 s for the same span; then a process's first scrape (read + render, as the route
// does: it folds the whole history) and the next one (the live rows only) are timed, median of 5,
// next to the raw baseline of the same database: one `count(*)` over the messages.
import pg from 'pg';
import { createLogger } from '../lib/logger.ts';
import { migrate } from '../lib/db/migrate.ts';
import { readMetricsSnapshot, renderMetrics } from '../lib/metrics/exposition.ts';
import { SettledTotals } from '../lib/metrics/settled.ts';
import { Queues } from '../lib/queue/queues.ts';
import { createRedis } from '../lib/queue/redis.ts';
import {
  benchDatabase,
  figure,
  median,
  positiveIntsFromEnv,
  timed,
  type BenchResult,
  type Figure,
} from './support.ts';

const RUNS = 5;
const CAUSES = 500;
/** Messages sent or queued in the last minutes: not settled yet. */
const LIVE = 2_000;

/** Fills the database with `messages` notifications and the detector runs of the same 30 days. */
async function fill(pool: pg.Pool, messages: number): Promise<void> {
  await pool.query(
    `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, resolved_at, open_evidence)
     SELECT 'payment-health', 'ch' || i || ':CN-GD', jsonb_build_object('channel', 'ch' || i, 'region', 'CN-GD'),
            'failures', now() - interval '30 days' + i * interval '1 hour',
            CASE WHEN i % 50 = 0 THEN NULL ELSE now() - interval '30 days' + i * interval '1 hour' + interval '20 minutes' END,
            '{}'::jsonb
       FROM generate_series(1, $1) AS i`,
    [CAUSES],
  );
  await pool.query(
    `INSERT INTO forewarn.incident_events (incident_id, type, occurred_at, payload)
     SELECT id, 'opened', opened_at, '{}'::jsonb FROM forewarn.incidents`,
  );
  await pool.query(
    `INSERT INTO forewarn.notifications
       (dedupe_key, cause, incident_id, kind, channel, audience, user_id, address, locale, data,
        status, attempts, created_at, next_attempt_at, sent_at, finished_at, held_reason, last_error)
     SELECT 'bench:' || g, 'cause:' || (1 + g % $2), 1 + g % $2,
            CASE WHEN g % 2 = 0 THEN 'payment-warning' ELSE 'payment-recovered' END,
            CASE WHEN g % 3 = 0 THEN 'email' ELSE 'inapp' END, 'user', 'u' || g,
            CASE WHEN g % 3 = 0 THEN 'u' || g || '@example.com' END, 'zh-CN', '{}'::jsonb,
            CASE WHEN g % 20 = 0 THEN 'cancelled' WHEN g % 97 = 0 THEN 'failed' WHEN g % 101 = 0 THEN 'pending' ELSE 'sent' END,
            1, t, t, CASE WHEN g % 20 <> 0 AND g % 97 <> 0 AND g % 101 <> 0 THEN t + (g % 5000) * interval '1 millisecond' END,
            t + interval '1 second',
            CASE WHEN g % 20 = 0 THEN 'opted out: by the user' END,
            CASE WHEN g % 97 = 0 THEN 'gave up after 8 attempts' END
       FROM generate_series(1, $1) AS g, LATERAL (SELECT now() - interval '30 days' + (g % $2) * interval '1 hour' AS t) s`,
    [messages, CAUSES],
  );
  await pool.query(
    `INSERT INTO forewarn.detector_runs (detector, tick_at, outcome, started_at, finished_at, worker)
     SELECT d, t, 'evaluated', t, t + interval '120 milliseconds', 'bench'
       FROM unnest(ARRAY['payment-health', 'error-spikes']) AS d,
            generate_series(now() - interval '30 days', now(), interval '30 seconds') AS t`,
  );
  await pool.query('ANALYZE');
}

export async function benchMetrics(): Promise<BenchResult> {
  const sizes = positiveIntsFromEnv('BENCH_METRICS_NOTIFICATIONS', [200_000, 1_000_000]);
  const logger = createLogger({ level: 'silent' });
  const redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const figures: Figure[] = [];
  const notes: string[] = [];
  try {
    for (const size of sizes) {
      const db = await benchDatabase(`forewarn_bench_metrics_${size}`);
      const { deploymentId } = await migrate(db.url, logger);
      const pool = new pg.Pool({ connectionString: db.url, max: 8 });
      const queues = new Queues(redis, `fw-bench-metrics-${size}`, deploymentId);
      try {
        await fill(pool, size);
        // The platform's payment_attempts, empty: the high-water mark is one index probe anyway.
        await pool.query(
          'CREATE TABLE public.payment_attempts (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)',
        );
        // Messages of the last minutes, still live: each scrape reads them again.
        await pool.query(
          `INSERT INTO forewarn.notifications (dedupe_key, cause, incident_id, kind, channel, audience, user_id, locale, data,
                                               status, attempts, sent_at, finished_at)
           SELECT 'bench-live:' || g, 'cause:1', 1, 'payment-warning', 'inapp', 'user', 'l' || g, 'zh-CN', '{}'::jsonb,
                  CASE WHEN g % 4 = 0 THEN 'pending' ELSE 'sent' END, 1,
                  CASE WHEN g % 4 <> 0 THEN now() END, CASE WHEN g % 4 <> 0 THEN now() END
             FROM generate_series(1, $1) AS g`,
          [LIVE],
        );
        const sources = (history: SettledTotals) => ({
          db: pool,
          platformDb: pool,
          platformSchema: 'public',
          queues,
          history,
          watchdog: () => ({
            ticks: ['payment-health', 'error-spikes'].map((detector) => ({
              detector,
              boundMs: 180_000,
              source: 'schedule' as const,
            })),
            maxDataLagSeconds: 900,
          }),
          configHash: () => '0123456789abcdef',
          now: Date.now,
        });
        const scrape = (history: SettledTotals) =>
          timed(async () => renderMetrics(await readMetricsSnapshot(sources(history))));
        // A process's first scrape folds the whole history; the steady ones read the live rows.
        const firsts: number[] = [];
        const steady: number[] = [];
        const baselines: number[] = [];
        let bytes = 0;
        for (let i = 0; i < RUNS; i++) {
          const history = new SettledTotals();
          firsts.push((await scrape(history)).ms);
          const again = await scrape(history);
          steady.push(again.ms);
          bytes = again.value.length;
          baselines.push((await timed(() => pool.query('SELECT count(*) FROM forewarn.notifications'))).ms);
        }
        const n = size.toLocaleString('en-US');
        figures.push(
          figure(
            `${n} messages, 172,800 runs: a process's first scrape (folds it all), median of ${RUNS}`,
            median(firsts),
            'ms',
          ),
          figure(
            `${n} messages: each scrape after it (${LIVE.toLocaleString('en-US')} live rows), median of ${RUNS}`,
            median(steady),
            'ms',
          ),
          figure(
            `${n} messages: raw baseline, count(*) over them, median of ${RUNS}`,
            median(baselines),
            'ms',
          ),
          figure(`${n} messages: exposition size`, bytes / 1024, 'KiB'),
        );
      } finally {
        await queues.close();
        await pool.end();
        await db.drop();
      }
    }
    notes.push(
      'each HTTP replica folds the settled history once (its first scrape), then reads only what settled in the last 5 minutes or is still pending',
    );
  } finally {
    redis.disconnect();
  }
  return { name: 'metrics: one /metrics scrape as history grows', figures, notes };
}
