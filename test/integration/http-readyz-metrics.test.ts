// /readyz and /metrics on the HTTP role, against real PostgreSQL, Redis and SMTP:
// - a real `forewarn start --role http` whose PostgreSQL sits behind a TCP proxy and whose Redis is
//   a server of the test's own: /readyz is 200, goes 503 naming redis when Redis stops and 200
//   when it is back, then 503 naming postgres and the platform when PostgreSQL is cut off, and 200
//   again; it shows the platform data's high-water mark and the last tick throughout;
// - /metrics parses as Prometheus text (a real parser), and when an incident's warnings are sent
//   the sent counter moves by exactly the messages sent, with the open incident, the send latency,
//   the first-delivery lag, the detector runs, the queue depths and the config hash beside it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueFanouts } from '../../jobs/fanout-incident-event.ts';
import { configHash } from '../../lib/config/hash.ts';
import { recordCauseChange, recordDetectorRun } from '../../lib/incidents/store.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { referencePlatform } from '../../sim/platform.ts';
import { createPlatform, Daemons, writeConfig, type DaemonProcess } from '../support/daemon.ts';
import {
  attempt,
  paymentIncidentOpened,
  DAY,
  LINK_KEYS,
  startInProcess,
  user,
  waitForPipelineIdle,
  writeConfigWith,
  type InProcessPipeline,
} from '../support/notifications.ts';
import { loadPlatform } from '../support/platform.ts';
import { freePort, RedisServer } from '../support/redis-server.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  databaseUrl,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';
import { parsePrometheusText, sampleValue, type Family } from '../support/prometheus.ts';
import { TcpProxy } from '../support/tcp-proxy.ts';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { readMetricsSnapshot, renderMetrics } from '../../lib/metrics/exposition.ts';
import { SettledTotals } from '../../lib/metrics/settled.ts';
import { QUEUE_NAMES, Queues } from '../../lib/queue/queues.ts';
import { tickBounds } from '../../lib/watchdog/bounds.ts';

let dir: string;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-readyz-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Readiness {
  status: number;
  body: {
    status: string;
    failing?: string[];
    checks: Record<string, { ok: boolean; error?: string; [detail: string]: unknown }>;
    ticks?: {
      ok: boolean;
      detectors: Record<
        string,
        {
          lastTickAt: string | null;
          ageSeconds?: number;
          outcome?: string;
          boundSeconds?: number;
          stopped?: boolean;
        }
      >;
    };
  };
}

async function readyz(base: string): Promise<Readiness> {
  const response = await fetch(`${base}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness['body'] };
}

describe('/readyz on a running HTTP role', () => {
  const daemons = new Daemons();
  afterEach(() => daemons.killAll());

  it('goes 503 naming Redis or PostgreSQL while it is down, and 200 again once it is back', async () => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    await createPlatform(db.pool);
    const newest = new Date(Date.now() - 90_000);
    await db.pool.query(
      `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at, finished_at)
       VALUES (1, 'u1', 'alipay', 'CN-GD', 'succeeded', 800, $1, $1)`,
      [newest],
    );
    const lastTick = Date.now() - 40_000;
    await recordDetectorRun(db.pool, {
      detector: 'payment-health',
      tickAt: lastTick,
      outcome: 'evaluated',
      startedAt: lastTick - 1_000,
      worker: 'test',
      changes: 0,
      skippedRows: 0,
    });
    const pgProxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
    cleanups.push(() => pgProxy.stop());
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const port = await freePort();
    const config = await writeConfig(join(dir, 'readyz.yaml'));
    const daemon: DaemonProcess = daemons.start(
      {
        DATABASE_URL: pgProxy.url(db.url),
        REDIS_URL: redis.url,
        FOREWARN_QUEUE_PREFIX: 'fw-readyz',
        FOREWARN_CONFIG: config,
        FOREWARN_HTTP_PORT: String(port),
      } as Parameters<Daemons['start']>[0],
      ['--role', 'http'],
    );
    await daemon.waitForLog('forewarn started', 30_000);
    const base = `http://127.0.0.1:${port}`;

    const ready = await readyz(base);
    expect(ready.status, JSON.stringify(ready.body)).toBe(200);
    expect(ready.body.status).toBe('ready');
    expect(ready.body.checks.postgres).toMatchObject({ ok: true });
    expect(ready.body.checks.redis).toEqual({ ok: true });
    expect(ready.body.checks.config).toMatchObject({
      ok: true,
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    // The platform data's high-water mark, and how far behind the platform's clock it lies.
    expect(ready.body.checks.platform).toMatchObject({
      ok: true,
      newestPaymentAttemptAt: newest.toISOString(),
    });
    expect(ready.body.checks.platform!.lagSeconds).toBeGreaterThanOrEqual(89);
    // When that tick finished (its row was written just now), and how it went.
    expect(ready.body.ticks!.detectors['payment-health']).toMatchObject({
      outcome: 'evaluated',
      stopped: false,
    });
    expect(ready.body.ticks!.detectors['payment-health']!.boundSeconds).toBeGreaterThan(60);
    expect(ready.body.ticks!.detectors['payment-health']!.ageSeconds).toBeLessThan(60);

    await redis.stop();
    const noRedis = await waitFor('/readyz to answer 503 without Redis', async () => {
      const r = await readyz(base);
      return r.status === 503 ? r : undefined;
    });
    expect(noRedis.body.status).toBe('unready');
    expect(noRedis.body.failing).toEqual(['redis']);
    expect(noRedis.body.checks.redis!.ok).toBe(false);
    expect(noRedis.body.checks.redis!.error).toBeTruthy();

    await redis.restart();
    await waitFor('/readyz to answer 200 with Redis back', async () => (await readyz(base)).status === 200, {
      timeoutMs: 30_000,
    });

    await pgProxy.stop();
    const noPostgres = await waitFor('/readyz to answer 503 without PostgreSQL', async () => {
      const r = await readyz(base);
      return r.status === 503 ? r : undefined;
    });
    expect(noPostgres.body.failing).toEqual(['postgres', 'platform']);
    expect(noPostgres.body.checks.redis).toEqual({ ok: true });
    expect(noPostgres.body.ticks).toBeUndefined();

    await pgProxy.start();
    const back = await waitFor(
      '/readyz to answer 200 with PostgreSQL back',
      async () => {
        const r = await readyz(base);
        return r.status === 200 ? r : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(back.body.checks.platform).toMatchObject({
      ok: true,
      newestPaymentAttemptAt: newest.toISOString(),
    });
    expect(daemon.running).toBe(true);
  });

  it('is 503 naming the schema when forewarn is behind this release', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    await createPlatform(db.pool);
    const prefix = await createTestRedisPrefix();
    cleanups.push(() => prefix.cleanup());
    const pipeline = await startInProcess({
      databaseUrl: db.url,
      prefix: prefix.prefix,
      configPath: await writeConfig(join(dir, 'schema.yaml')),
      worker: false,
    });
    cleanups.push(() => pipeline.close());
    const http = await serve(pipeline);
    cleanups.push(() => http.close());
    // A detector whose last tick is older than the watchdog's bound: shown stopped, still ready.
    const hourAgo = Date.now() - 3_600_000;
    await recordDetectorRun(db.pool, {
      detector: 'payment-health',
      tickAt: hourAgo,
      outcome: 'evaluated',
      startedAt: hourAgo,
      worker: 'test',
      changes: 0,
      skippedRows: 0,
    });
    await db.pool.query("UPDATE forewarn.detector_runs SET finished_at = now() - interval '1 hour'");
    const ready = await readyz(http.address);
    expect(ready.status).toBe(200);
    expect(ready.body.ticks!.detectors['payment-health']).toMatchObject({ stopped: true });
    expect(ready.body.ticks!.detectors['payment-health']!.ageSeconds).toBeGreaterThanOrEqual(3600);
    // As if a newer release's migration were missing here.
    const { rows } = await db.pool.query<{ v: number }>(
      'SELECT max(version) AS v FROM forewarn.schema_migrations',
    );
    await db.pool.query('DELETE FROM forewarn.schema_migrations WHERE version = $1', [rows[0]!.v]);
    const left = await db.pool.query<{ v: number }>(
      'SELECT max(version) AS v FROM forewarn.schema_migrations',
    );
    const behind = await readyz(http.address);
    expect(behind.status).toBe(503);
    expect(behind.body.failing).toEqual(['postgres']);
    expect(behind.body.checks.postgres!.error).toBe(
      `forewarn's schema is at version ${left.rows[0]!.v}, this release needs ${rows[0]!.v}: run \`forewarn migrate\``,
    );
  });
});

function serve(pipeline: InProcessPipeline): Promise<RunningHttpServer> {
  const ctx = pipeline.ctx;
  return startHttpServer(
    {
      db: ctx.db,
      platformDb: ctx.platformDb,
      platformSchema: ctx.platformSchema,
      linkKeys: LINK_KEYS,
      config: ctx.config,
      queues: ctx.queues,
      redis: ctx.redis,
      logger: pipeline.logs.logger,
      now: Date.now,
    },
    { host: '127.0.0.1', port: 0 },
  );
}

async function scrape(base: string): Promise<Map<string, Family>> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  // Throws, naming the line, on anything that is not Prometheus text.
  const families = parsePrometheusText(await response.text());
  for (const family of families.values()) expect(family.help, family.name).toBeTruthy();
  return families;
}

const value = sampleValue;

describe('/metrics', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startSmtpServer();
  });
  afterAll(async () => {
    await smtp?.close();
  });

  it('parses as Prometheus text, and the sent counter moves by the messages an incident sent', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const users = Array.from({ length: 9 }, (_, i) =>
      user(`m${i}`, { email: i % 3 === 0 ? `m${i}@example.com` : null }),
    );
    const paidAt = Date.now() - 3 * DAY;
    await loadPlatform(db.pool, {
      platform: referencePlatform(),
      users,
      attempts: users.map((u, i) => attempt(1 + i, u.id, 'wechat_pay', 'succeeded', paidAt)),
    });
    const prefix = await createTestRedisPrefix();
    cleanups.push(() => prefix.cleanup());
    const configPath = await writeConfigWith(join(dir, 'metrics.yaml'), {
      notifications: { ops: { emails: [] } },
    });
    const pipeline = await startInProcess({
      databaseUrl: db.url,
      prefix: prefix.prefix,
      configPath,
      smtpUrl: smtp.url,
    });
    cleanups.push(() => pipeline.close());
    const http = await serve(pipeline);
    cleanups.push(() => http.close());

    const before = await scrape(http.address);
    expect(value(before, 'forewarn_config_info', { hash: configHash(pipeline.ctx.config()) })).toBe(1);
    expect(value(before, 'forewarn_notifications_sent_total')).toBe(0);
    expect(value(before, 'forewarn_queue_jobs', { queue: 'delivery', state: 'waiting' })).toBe(0);
    expect(before.get('forewarn_metrics_read_failed')?.samples ?? []).toEqual([]);
    expect(before.has('forewarn_process_resident_memory_bytes')).toBe(true);

    const tickAt = Date.now() - 2_000;
    await recordDetectorRun(db.pool, {
      detector: 'payment-health',
      tickAt,
      outcome: 'evaluated',
      // The row's finished_at is the time it is written: about 300 ms after this.
      startedAt: Date.now() - 300,
      worker: 'test',
      changes: 1,
      skippedRows: 0,
    });
    const recorded = await recordCauseChange(pipeline.ctx.db, paymentIncidentOpened());
    await enqueueFanouts(pipeline.ctx, [recorded.eventId]);
    await waitForPipelineIdle(db.pool, 1, 20_000);
    const { rows } = await db.pool.query<{ kind: string; channel: string; n: number }>(
      `SELECT kind, channel, count(*)::int AS n FROM forewarn.notifications WHERE status = 'sent' GROUP BY 1, 2`,
    );
    const sentEmail = rows.find((r) => r.channel === 'email')!;
    expect(sentEmail.n).toBe(3);

    const after = await scrape(http.address);
    expect(
      value(after, 'forewarn_notifications_sent_total', { kind: sentEmail.kind, channel: 'email' }),
    ).toBe(3);
    for (const r of rows)
      expect(value(after, 'forewarn_notifications_sent_total', { kind: r.kind, channel: r.channel })).toBe(
        r.n,
      );
    // The users without an address: withheld, and said so.
    expect(
      value(after, 'forewarn_notifications', { channel: 'email', outcome: 'withheld: no address' }),
    ).toBe(6);
    expect(value(after, 'forewarn_incidents_open', { detector: 'payment-health', kind: 'failures' })).toBe(1);
    expect(value(after, 'forewarn_send_latency_seconds_count', { channel: 'email' })).toBe(3);
    expect(value(after, 'forewarn_first_delivery_lag_seconds_count', { detector: 'payment-health' })).toBe(1);
    expect(
      value(after, 'forewarn_detector_runs_total', { detector: 'payment-health', outcome: 'evaluated' }),
    ).toBe(1);
    // 300 ms: above the 0.25 s bucket, within the 0.5 s one.
    const run = { detector: 'payment-health', outcome: 'evaluated' };
    expect(value(after, 'forewarn_detector_run_duration_seconds_bucket', { ...run, le: '0.25' })).toBe(0);
    expect(value(after, 'forewarn_detector_run_duration_seconds_bucket', { ...run, le: '0.5' })).toBe(1);
    expect(value(after, 'forewarn_detector_run_duration_seconds_count', run)).toBe(1);
    expect(
      value(after, 'forewarn_detector_last_tick_age_seconds', { detector: 'payment-health' }),
    ).toBeLessThan(60);
    const bound = tickBounds(pipeline.ctx.config()).find((b) => b.detector === 'payment-health')!;
    expect(value(after, 'forewarn_detector_tick_age_bound_seconds', { detector: 'payment-health' })).toBe(
      bound.boundMs / 1000,
    );
    expect(value(after, 'forewarn_platform_data_lag_bound_seconds')).toBe(
      pipeline.ctx.config().watchdog.maxDataLagSeconds,
    );
    expect(after.get('forewarn_queue_jobs')!.samples).toHaveLength(4 * 7);
  });

  it('still answers when PostgreSQL cannot be read, naming the parts it left out', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    await createPlatform(db.pool);
    const pgProxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
    cleanups.push(() => pgProxy.stop());
    const prefix = await createTestRedisPrefix();
    cleanups.push(() => prefix.cleanup());
    const pipeline = await startInProcess({
      databaseUrl: pgProxy.url(databaseUrl(db.name)),
      prefix: prefix.prefix,
      configPath: await writeConfig(join(dir, 'cut.yaml')),
      worker: false,
    });
    cleanups.push(() => pipeline.close());
    const http = await serve(pipeline);
    cleanups.push(() => http.close());
    await pgProxy.stop();
    const cut = await scrape(http.address);
    const failed = cut
      .get('forewarn_metrics_read_failed')!
      .samples.map((m) => m.labels.part)
      .sort();
    expect(failed).toEqual(['highWater', 'history', 'lastTicks', 'openIncidents']);
    // Redis still answers: the queues are still there.
    expect(cut.has('forewarn_queue_jobs')).toBe(true);
    expect(cut.has('forewarn_notifications_sent_total')).toBe(false);
    expect(
      pipeline.logs.lines().some((l) => String(l.msg).startsWith('metrics: a part could not be read')),
    ).toBe(true);
  });

  it('leaves out the queues, in time, while Redis does not answer, and serves the rest', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    await createPlatform(db.pool);
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    // BullMQ's connection waits for Redis forever (its commands queue until it reconnects).
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    connection.on('error', () => undefined);
    cleanups.push(async () => connection.disconnect());
    const queues = new Queues(connection, 'fw-metrics-hang', randomUUID());
    cleanups.push(() => queues.close());
    // Each queue reports the refused connection as an error event: expected here.
    for (const name of QUEUE_NAMES) queues.get(name).on('error', () => undefined);
    await redis.stop();
    const snapshot = await readMetricsSnapshot({
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      queues,
      history: new SettledTotals(),
      watchdog: () => ({ ticks: [], maxDataLagSeconds: 900 }),
      configHash: () => 'x',
      now: Date.now,
      partTimeoutMs: 1_000,
    });
    expect(snapshot.failed.map((f) => f.part)).toEqual(['queues']);
    expect(String(snapshot.failed[0]!.error)).toContain('no answer within 1 s');
    const families = parsePrometheusText(await renderMetrics(snapshot));
    expect(families.has('forewarn_queue_jobs')).toBe(false);
    expect(sampleValue(families, 'forewarn_metrics_read_failed', { part: 'queues' })).toBe(1);
    expect(families.has('forewarn_notifications_sent_total')).toBe(true);
  });
});
