// No stale in-app warnings: an incident resolved while its warning fan-out is still writing
// batches, on real PostgreSQL. The resolve is recorded (as the detector records it) while a batch
// is being written: it must wait for that batch, no batch may be written after it, and the
// recovery fan-out, started the moment the resolve commits while the warning fan-out still runs,
// must reach everyone who was warned. A gate (an advisory lock taken in a trigger on
// forewarn.notifications) holds one batch in the middle of its transaction, so the order of
// events is forced, not left to timing.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { fanOutCauseEvent, type FanoutContext, type FanoutResult } from '../../lib/notifications/fanout.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatform, SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, waitFor, type TestDatabase } from '../support/services.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';
const AUDIENCE = 4_000;
const BATCH_SIZE = 100;
/** Batches written before the gate closes; the audience is 40 batches. */
const BEFORE_GATE = 3;
const GATE = 4242;
const DEADLINE_MS = 45_000;

let db: TestDatabase;
/** Holds the gate: a session of its own, as advisory locks belong to sessions. */
let gate: pg.PoolClient;

beforeAll(async () => {
  db = await createTestDatabase();
  await createPlatform(db.pool);
  // Every active user of CN-GD paid with wechat_pay yesterday: all of them are the audience.
  await db.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at)
     SELECT 'u' || lpad(i::text, 6, '0'), NULL, 'zh-CN', $1, 'Asia/Shanghai', 'active', now(), now() - interval '90 days'
       FROM generate_series(1, $2) AS i`,
    [REGION, AUDIENCE],
  );
  await db.pool.query(
    `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at, finished_at)
     SELECT row_number() OVER (ORDER BY u.id), u.id, $1, u.region, 'succeeded', 900,
            now() - interval '1 day', now() - interval '1 day' + interval '900 milliseconds'
       FROM platform.users u`,
    [CHANNEL],
  );
  await db.pool.query('ANALYZE platform.users, platform.payment_attempts');
  // Each statement recording notifications passes the gate, and takes a moment, so that the
  // fan-out is surely still running when the gate closes.
  await db.pool.query(`
    CREATE FUNCTION public.test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_lock_shared(${GATE});
      PERFORM pg_advisory_unlock_shared(${GATE});
      PERFORM pg_sleep(0.02);
      RETURN NULL;
    END $$;
    CREATE TRIGGER test_gate AFTER INSERT ON forewarn.notifications
      FOR EACH STATEMENT EXECUTE FUNCTION public.test_gate();
  `);
  gate = await db.pool.connect();
});

afterAll(async () => {
  gate?.release();
  await db?.drop();
});

async function fanoutContext(): Promise<FanoutContext> {
  const shipped = await loadConfigFile(SHIPPED_CONFIG);
  const config: Config = {
    ...shipped,
    notifications: {
      ...shipped.notifications,
      userChannels: ['inapp'],
      batchSize: BATCH_SIZE,
      ops: { ...shipped.notifications.ops, emails: [] },
    },
  };
  const templates = TemplateStore.load();
  return {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: 'platform',
    config: () => config,
    logger: captureLogs('warn').logger,
    linkKeys: LINK_KEYS,
    publicUrl: 'https://forewarn.example.com',
    templates: () => templates,
  };
}

/** Users with an in-app notice of `kind` recorded as delivered, sorted. */
async function usersWith(kind: string, incidentId: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ user_id: string }>(
    `SELECT n.user_id FROM forewarn.notifications n JOIN forewarn.inbox i ON i.notification_id = n.id
      WHERE n.incident_id = $1 AND n.kind = $2 AND n.channel = 'inapp' AND n.status = 'sent'
      ORDER BY n.user_id`,
    [incidentId, kind],
  );
  return rows.map((r) => r.user_id);
}

async function count(sql: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(sql);
  return rows[0]?.n ?? 0;
}

it('a resolve during a long warning fan-out: every warned user gets the recovery notice, nobody is warned after it', async () => {
  const ctx = await fanoutContext();
  const openedAt = Date.now() - 60_000;
  const subject = { channel: CHANNEL, region: REGION };
  const evidence = { windowSeconds: 30, attempts: 120, bad: 120, rate: 1, baseline: 0.03 };
  const opened = await recordCauseChange(db.pool, {
    type: 'opened',
    detector: 'payment-health',
    subject,
    subjectKey: `${CHANNEL}:${REGION}`,
    kind: 'failures',
    at: openedAt,
    evidence,
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1]);
  const { incidentId } = opened;

  const warning = fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
  warning.catch(() => undefined);
  const recipients = () =>
    count(
      `SELECT coalesce(max(recipients), 0)::int AS n FROM forewarn.fanouts WHERE event_id = ${opened.eventId}`,
    );
  await waitFor(
    `${BEFORE_GATE} warning batches`,
    async () => (await recipients()) >= BEFORE_GATE * BATCH_SIZE,
    {
      timeoutMs: DEADLINE_MS,
      intervalMs: 5,
    },
  );

  // Close the gate, and wait for a batch to stand at it, in the middle of its transaction.
  await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
  await waitFor(
    'a warning batch held at the gate',
    async () =>
      (await count(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`)) >
      0,
    { timeoutMs: DEADLINE_MS, intervalMs: 10 },
  );

  // The detector resolves the incident now. The moment that commits, take stock of who was
  // warned and start the recovery fan-out, as the outbox would, while the warning fan-out runs on.
  let warnedAtResolve: string[] | undefined;
  let recovery: Promise<FanoutResult> | undefined;
  let resolveDone = false;
  const resolve = recordCauseChange(db.pool, {
    type: 'resolved',
    detector: 'payment-health',
    subject,
    subjectKey: `${CHANNEL}:${REGION}`,
    kind: 'failures',
    openedAt,
    at: Date.now(),
    reason: 'recovered',
    evidence,
    openEvidence: evidence,
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1]).then(async (resolved) => {
    resolveDone = true;
    warnedAtResolve = await usersWith('payment-degraded', incidentId);
    recovery = fanOutCauseEvent(ctx, resolved.eventId, async () => undefined);
    await recovery;
  });
  resolve.catch(() => undefined);
  // Either it waits for the batch at the gate (a row lock), or it went through at once.
  await waitFor(
    'the resolve to wait for the batch or to commit',
    async () =>
      resolveDone ||
      (await count(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype <> 'advisory' AND NOT granted`)) >
        0,
    { timeoutMs: DEADLINE_MS, intervalMs: 10 },
  );
  await gate.query('SELECT pg_advisory_unlock($1)', [GATE]);
  await resolve;
  const warningResult = await warning;

  const warned = await usersWith('payment-degraded', incidentId);
  const recovered = await usersWith('payment-recovered', incidentId);
  // The resolve landed mid-way: some batches were written (the one held at the gate too, as it
  // was being written when the resolve came), then the fan-out stopped.
  expect(warned.length).toBeGreaterThan(BEFORE_GATE * BATCH_SIZE);
  expect(warned.length).toBeLessThan(AUDIENCE);
  expect(warningResult.recipients).toBe(warned.length);
  // Nobody was warned after the resolve: the batch at the gate went in before it, none after.
  expect(warned).toEqual(warnedAtResolve);
  // Everyone who was warned hears that it recovered, once.
  expect(recovered).toEqual(warned);
  expect(
    await count(
      `SELECT count(*)::int AS n FROM forewarn.notifications WHERE incident_id = ${incidentId} AND kind = 'payment-recovered'`,
    ),
  ).toBe(warned.length);
});
