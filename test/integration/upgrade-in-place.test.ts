// Upgrades in place: a deployment running the release before the spine (schema version 6) has an
// open payment incident whose warning fan-out stopped half-way, sent and pending warnings under
// the old dedupe keys (incident:<id>:...), in-app messages in the inbox, an ops alert sent and the
// detector's state. `forewarn migrate` brings it to today's schema; then the daemon's pipeline
// (real Redis, PostgreSQL and SMTP) finishes the fan-out, delivers what was pending and, when the
// incident resolves, sends the recovery notices. Nobody is warned twice, and everyone warned
// before or after the upgrade hears of the recovery, on the channels they were warned on.
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { templateKinds } from '../../templates/kinds.ts';
import { migrate, MIGRATIONS_DIR } from '../../lib/db/migrate.ts';
import { paymentHealth } from '../../lib/detection/payment-health-tick.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { createLogger } from '../../lib/logger.ts';
import { enqueueFanouts } from '../../jobs/fanout-incident-event.ts';
import { handle as sweep } from '../../jobs/sweep-notifications.ts';
import { inTransaction } from '../../lib/db/pool.ts';
import { createPlatform } from '../support/daemon.ts';
import {
  attempt,
  DAY,
  forewarnCli,
  insertAttempts,
  MINUTE,
  OPS_EMAIL,
  startInProcess,
  user,
  writeConfigWith,
  type InProcessPipeline,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';
import { PLATFORM_SCHEMA } from '../support/platform.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';
/** u001..u004 were in the batch written before the upgrade; u005 and u006 were not reached yet. */
const USERS = [
  user('u001'),
  user('u002', { locale: 'en' }),
  user('u003', { email: null }),
  user('u004'),
  user('u005'),
  user('u006', { email: null }),
];
const OPENED_AT = Date.now() - 20 * MINUTE;
const STATE = { version: 1, pairs: { [`${CHANNEL}:${REGION}`]: { kept: 'as the detector wrote it' } } };

let db: TestDatabase;
let smtp: TestSmtpServer;
let dir: string;
let pipeline: InProcessPipeline | undefined;
let incidentId: string;
let openedEventId: string;
const afterCleanup: Array<() => Promise<void>> = [];

beforeAll(async () => {
  db = await createTestDatabase({ migrated: false });
  dir = await mkdtemp(join(tmpdir(), 'forewarn-upgrade-'));
  // The schema as the release before the spine left it: migrations 1 to 6.
  const old = join(dir, 'migrations');
  await cp(MIGRATIONS_DIR, old, { recursive: true });
  for (const file of await readdir(old)) if (Number(file.slice(0, 3)) > 6) await rm(join(old, file));
  await migrate(db.url, createLogger({ level: 'silent' }), { dir: old });

  await createPlatform(db.pool);
  await db.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at)
     SELECT u.id, u.email, u.locale, u.region, u.timezone, 'active', now(), now() - interval '90 days'
       FROM jsonb_to_recordset($1::jsonb) AS u(id text, email text, locale text, region text, timezone text)`,
    [JSON.stringify(USERS)],
  );
  // Every one of them paid with the channel yesterday: all six are the warning's audience.
  await insertAttempts(
    db.pool,
    USERS.map((u, i) => attempt(i + 1, u.id, CHANNEL, 'succeeded', Date.now() - DAY)),
    PLATFORM_SCHEMA,
  );
  await writeOldRelease();
  smtp = await startSmtpServer();
});

afterAll(async () => {
  await pipeline?.close();
  for (const cleanup of afterCleanup) await cleanup();
  await smtp?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const opsSample = templateKinds['ops-incident-opened'].sample;
const degradedSample = templateKinds['payment-degraded'].sample;

/** The rows the release before the spine wrote, in its own formats. */
async function writeOldRelease(): Promise<void> {
  const change = {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel: CHANNEL, region: REGION },
    kind: 'failures',
    at: OPENED_AT,
    evidence: opsSample.evidence,
    backupChannels: ['alipay'],
  };
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence, backup_channels)
     VALUES ('payment-health', $1, $2, 'failures', $3, $4, '{alipay}') RETURNING id`,
    [`${CHANNEL}:${REGION}`, change.subject, new Date(OPENED_AT), change.evidence],
  );
  incidentId = rows[0]!.id;
  const event = await db.pool.query<{ id: string }>(
    `INSERT INTO forewarn.incident_events (incident_id, type, occurred_at, payload, created_at)
     VALUES ($1, 'opened', $2, $3, $2) RETURNING id`,
    [incidentId, new Date(OPENED_AT), { ...change, incidentId }],
  );
  openedEventId = event.rows[0]!.id;
  // Its fan-out wrote the ops alert and one batch (u001..u004), then the old release stopped.
  await db.pool.query(
    `INSERT INTO forewarn.fanouts (event_id, cursor, recipients, batches, started_at, updated_at)
     VALUES ($1, 'u004', 4, 2, $2, $2)`,
    [openedEventId, new Date(OPENED_AT)],
  );
  const sent = (
    key: string,
    kind: string,
    channel: string,
    userId: string | null,
    address: string | null,
  ) => ({
    key,
    kind,
    channel,
    audience: userId ? 'user' : 'ops',
    userId,
    address,
    status: 'sent',
  });
  const rowsToWrite = [
    sent(
      `incident:${incidentId}:ops-incident-opened:email:${OPS_EMAIL}`,
      'ops-incident-opened',
      'email',
      null,
      OPS_EMAIL,
    ),
    sent(
      `incident:${incidentId}:payment-degraded:email:u001`,
      'payment-degraded',
      'email',
      'u001',
      'u001@example.com',
    ),
    sent(`incident:${incidentId}:payment-degraded:inapp:u001`, 'payment-degraded', 'inapp', 'u001', null),
    sent(
      `incident:${incidentId}:payment-degraded:email:u002`,
      'payment-degraded',
      'email',
      'u002',
      'u002@example.com',
    ),
    sent(`incident:${incidentId}:payment-degraded:inapp:u002`, 'payment-degraded', 'inapp', 'u002', null),
    sent(`incident:${incidentId}:payment-degraded:inapp:u003`, 'payment-degraded', 'inapp', 'u003', null),
    sent(`incident:${incidentId}:payment-degraded:inapp:u004`, 'payment-degraded', 'inapp', 'u004', null),
    // Recorded, not sent yet when the old release stopped.
    {
      ...sent(
        `incident:${incidentId}:payment-degraded:email:u004`,
        'payment-degraded',
        'email',
        'u004',
        'u004@example.com',
      ),
      status: 'pending',
    },
  ];
  for (const r of rowsToWrite) {
    const { rows: inserted } = await db.pool.query<{ id: string }>(
      `INSERT INTO forewarn.notifications
         (dedupe_key, cause, incident_id, kind, channel, audience, user_id, address, locale, data, status,
          attempts, sent_at, finished_at, created_at, next_attempt_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'zh-CN', $9, $10,
               CASE WHEN $10 = 'sent' THEN 1 ELSE 0 END,
               CASE WHEN $10 = 'sent' THEN now() END, CASE WHEN $10 = 'sent' THEN now() END,
               now() - interval '19 minutes', now() - interval '19 minutes')
       RETURNING id`,
      [
        r.key,
        `incident:${incidentId}`,
        incidentId,
        r.kind,
        r.channel,
        r.audience,
        r.userId,
        r.address,
        r.kind === 'ops-incident-opened' ? opsSample : degradedSample,
        r.status,
      ],
    );
    if (r.channel === 'inapp')
      await db.pool.query(
        `INSERT INTO forewarn.inbox (notification_id, user_id, kind, title, body) VALUES ($1, $2, $3, 'old', 'old')`,
        [inserted[0]!.id, r.userId, r.kind],
      );
  }
  await db.pool.query(
    `INSERT INTO forewarn.detector_state (detector, evaluated_at, state, version) VALUES ('payment-health', $1, $2, $3)`,
    [new Date(OPENED_AT + 10 * MINUTE), STATE, '6b1c2bd2-52d0-4b8c-9a43-5f0b6a8f2f6e'],
  );
}

/** Messages per (kind, channel, user): every one must be 1. */
async function messagesPerRecipient(): Promise<Map<string, number>> {
  const { rows } = await db.pool.query<{ key: string; n: number }>(
    `SELECT kind || ' ' || channel || ' ' || coalesce(user_id, address) AS key, count(*)::int AS n
       FROM forewarn.notifications GROUP BY 1 ORDER BY 1`,
  );
  return new Map(rows.map((r) => [r.key, r.n]));
}

it('migrates with forewarn migrate: open incidents, state, pending and sent messages carry over under the new keys', async () => {
  const result = await forewarnCli(['migrate'], { DATABASE_URL: db.url });
  expect(result.code, result.stderr).toBe(0);
  const { rows: keys } = await db.pool.query<{ dedupe_key: string; cause: string; category: string }>(
    'SELECT dedupe_key, cause, category FROM forewarn.notifications ORDER BY id',
  );
  expect(keys.map((k) => k.dedupe_key.split(':')[0])).toEqual(keys.map(() => 'cause'));
  expect(keys[0]).toEqual({
    dedupe_key: `cause:${incidentId}:ops-incident-opened:email:${OPS_EMAIL}`,
    cause: `cause:${incidentId}`,
    category: 'ops',
  });
  expect(new Set(keys.slice(1).map((k) => k.category))).toEqual(new Set(['service']));
  const open = await db.pool.query('SELECT id FROM forewarn.incidents WHERE resolved_at IS NULL');
  expect(open.rows).toEqual([{ id: incidentId }]);
  // The pairs moved to one subject_state row each (migration 011); together they are the old state.
  const { pairs, ...head } = STATE;
  const state = await db.pool.query<{ state: unknown; version: string | null }>(
    'SELECT state, version FROM forewarn.detector_state',
  );
  expect(state.rows).toEqual([{ state: head, version: null }]);
  const rows = await db.pool.query<{ subject_key: string }>(
    `SELECT subject_key FROM forewarn.subject_state WHERE detector = 'payment-health' ORDER BY 1`,
  );
  expect(rows.rows.map((r) => r.subject_key)).toEqual(Object.keys(pairs).sort());
  expect(await paymentHealth.readStoredState(db.pool)).toEqual(STATE);
});

it('finishes the interrupted warning fan-out and the pending email: the rest are warned, nobody twice', async () => {
  const prefix = await createTestRedisPrefix();
  const configPath = await writeConfigWith(join(dir, 'forewarn.yaml'), {
    notifications: {
      ops: { emails: [OPS_EMAIL], locale: 'zh-CN', groupWaitSeconds: 0 },
      sweeper: { staleSeconds: 60 },
    },
  });
  afterCleanup.push(prefix.cleanup);
  pipeline = await startInProcess({
    databaseUrl: db.url,
    prefix: prefix.prefix,
    configPath,
    smtpUrl: smtp.url,
  });
  // What the sweeper finds: the stalled fan-out (its old cursor is read as "start over") and the
  // pending email.
  await sweep({ tickAt: new Date().toISOString() }, pipeline.ctx);
  await waitFor(
    'the interrupted fan-out to finish',
    async () =>
      (await db.pool.query('SELECT 1 FROM forewarn.incident_events WHERE dispatched_at IS NULL')).rowCount ===
      0,
    { timeoutMs: 30_000 },
  );
  // u004's pending warning, and u005's new one (u006 has no address).
  const mail = await smtp.waitForMessages(2, 30_000);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(smtp.messages.map((m) => m.envelope.to.join(',')).sort()).toEqual([
    'u004@example.com',
    'u005@example.com',
  ]);
  expect(mail).toHaveLength(2);
  const counts = await messagesPerRecipient();
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
  expect([...counts.keys()].filter((k) => k.startsWith('payment-degraded inapp')).sort()).toEqual(
    USERS.map((u) => `payment-degraded inapp ${u.id}`),
  );
  const inbox = await db.pool.query<{ user_id: string; n: number }>(
    `SELECT user_id, count(*)::int AS n FROM forewarn.inbox GROUP BY user_id ORDER BY user_id`,
  );
  expect(inbox.rows).toEqual(USERS.map((u) => ({ user_id: u.id, n: 1 })));
});

it('then a resolve sends the recovery notice to everyone warned, before or after the upgrade, once', async () => {
  const ctx = pipeline!.ctx;
  const resolved = await inTransaction(db.pool, (client) =>
    recordCauseChange(client, {
      type: 'resolved',
      detector: 'payment-health',
      subject: { channel: CHANNEL, region: REGION },
      subjectKey: `${CHANNEL}:${REGION}`,
      kind: 'failures',
      at: Date.now(),
      openedAt: OPENED_AT,
      reason: 'recovered',
      evidence: opsSample.evidence,
      openEvidence: opsSample.evidence,
      backupChannels: ['alipay'],
    }),
  );
  await enqueueFanouts(ctx, [resolved.eventId]);
  // Recovery emails to the four users with addresses, and ops's resolved alert.
  await smtp.waitForMessages(2 + 5, 30_000);
  await new Promise((r) => setTimeout(r, 1_000));
  const recoveries = smtp.messages
    .slice(2)
    .map((m) => m.envelope.to.join(','))
    .sort();
  expect(recoveries).toEqual(
    [OPS_EMAIL, 'u001@example.com', 'u002@example.com', 'u004@example.com', 'u005@example.com'].sort(),
  );
  const counts = await messagesPerRecipient();
  expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  expect([...counts.keys()].filter((k) => k.startsWith('payment-recovered')).sort()).toEqual(
    [
      ...USERS.filter((u) => u.email).map((u) => `payment-recovered email ${u.id}`),
      ...USERS.map((u) => `payment-recovered inapp ${u.id}`),
    ].sort(),
  );
});
