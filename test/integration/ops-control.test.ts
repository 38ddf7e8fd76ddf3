// Manual control for ops on real PostgreSQL: a muted pair and a maintenance window send no user
// warnings (recorded as withheld with the reason) while ops are told (once per window
// occurrence); an acknowledged incident still resolves and sends its recovery notices; a fan-out
// stop cancels what is queued. In-app users (delivered in the fan-out's own transaction) and an
// ops email address (recorded for the delivery queue).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { fanOutCauseEvent, type FanoutContext } from '../../lib/notifications/fanout.ts';
import { ackIncident, muteSubject, resolveIncident, stopFanout } from '../../lib/ops/actions.ts';
import { readIncidentReport } from '../../lib/ops/report.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatform, SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_KEYS, OPS_EMAIL } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const REGION = 'CN-GD';
const USERS = 30;
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await createPlatform(db.pool);
  await db.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at)
     SELECT 'u' || lpad(i::text, 4, '0'), 'u' || i || '@example.com', 'zh-CN', $1, 'Asia/Shanghai', 'active', now(), now() - interval '90 days'
       FROM generate_series(1, $2) AS i`,
    [REGION, USERS],
  );
  for (const channel of ['wechat_pay', 'alipay', 'unionpay'])
    await db.pool.query(
      `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at, finished_at)
       SELECT (SELECT coalesce(max(id), 0) FROM platform.payment_attempts) + row_number() OVER (ORDER BY u.id), u.id, $1, u.region,
              'succeeded', 900, now() - interval '1 day', now() - interval '1 day' + interval '900 milliseconds'
         FROM platform.users u`,
      [channel],
    );
});

afterAll(async () => {
  await db?.drop();
});

async function context(
  windows: Config['maintenance']['windows'] = [],
  userChannels: Config['notifications']['userChannels'] = ['inapp'],
): Promise<FanoutContext> {
  const shipped = await loadConfigFile(SHIPPED_CONFIG);
  const config: Config = {
    ...shipped,
    notifications: {
      ...shipped.notifications,
      userChannels,
      ops: { ...shipped.notifications.ops, emails: [OPS_EMAIL], webhooks: [] },
    },
    maintenance: { windows },
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

const evidence = { windowSeconds: 30, attempts: 120, bad: 120, rate: 1, baseline: 0.03 };

async function open(channel: string, kind = 'failures') {
  return recordCauseChange(db.pool, {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel, region: REGION },
    subjectKey: `${channel}:${REGION}`,
    kind,
    at: Date.now() - 60_000,
    evidence,
    backupChannels: [],
  });
}

async function rows(incidentId: string) {
  const { rows: found } = await db.pool.query<{
    kind: string;
    audience: string;
    status: string;
    held_reason: string | null;
  }>('SELECT kind, audience, status, held_reason FROM forewarn.notifications WHERE incident_id = $1', [
    incidentId,
  ]);
  return found;
}

it('a muted pair warns no users: withheld with the reason, ops still alerted', async () => {
  const ctx = await context();
  await muteSubject(
    db.pool,
    { detector: 'payment-health', subjectKey: `alipay:${REGION}` },
    Date.now() + 3_600_000,
    {
      actor: 'alice',
      reason: 'bank says it is a known fault',
    },
  );
  const opened = await open('alipay');
  await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
  const found = await rows(opened.incidentId);
  const users = found.filter((r) => r.audience === 'user');
  expect(users).toHaveLength(USERS);
  expect(
    users.every(
      (r) =>
        r.status === 'cancelled' && r.held_reason?.startsWith('muted: payment-health alipay:CN-GD by alice'),
    ),
  ).toBe(true);
  expect(found.filter((r) => r.audience === 'ops' && r.status === 'pending')).toHaveLength(1);
  const report = await readIncidentReport(db.pool, opened.incidentId);
  expect(report?.messages).toContainEqual({
    kind: 'payment-degraded',
    audience: 'user',
    outcome: 'withheld: muted',
    count: USERS,
  });
  expect(report?.actions.map((a) => [a.action, a.actor])).toEqual([['mute', 'alice']]);
});

it('a maintenance window warns no users, and ops are told once per occurrence', async () => {
  const ctx = await context([
    {
      name: 'unionpay-nightly',
      detector: 'payment-health',
      subjects: ['unionpay:*'],
      days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
      from: '00:00',
      to: '23:59',
      timezone: 'UTC',
    },
  ]);
  for (const kind of ['failures', 'slow']) {
    const opened = await open('unionpay', kind);
    await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
    const users = (await rows(opened.incidentId)).filter((r) => r.audience === 'user');
    expect(users).toHaveLength(USERS);
    expect(
      users.every(
        (r) => r.status === 'cancelled' && r.held_reason?.startsWith('maintenance: unionpay-nightly'),
      ),
    ).toBe(true);
  }
  const { rows: notices } = await db.pool.query(
    `SELECT address FROM forewarn.notifications WHERE kind = 'ops-maintenance'`,
  );
  expect(notices).toEqual([{ address: OPS_EMAIL }]);
});

it('an acknowledged incident still resolves and sends its recovery notices', async () => {
  const ctx = await context();
  const opened = await open('wechat_pay');
  await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
  await ackIncident(db.pool, opened.incidentId, { actor: 'bob', reason: 'looking at it' });
  const resolved = await recordCauseChange(db.pool, {
    type: 'resolved',
    detector: 'payment-health',
    subject: { channel: 'wechat_pay', region: REGION },
    subjectKey: `wechat_pay:${REGION}`,
    kind: 'failures',
    at: Date.now(),
    openedAt: Date.now() - 60_000,
    reason: 'recovered',
    evidence,
    openEvidence: evidence,
    backupChannels: [],
  });
  await fanOutCauseEvent(ctx, resolved.eventId, async () => undefined);
  const found = await rows(opened.incidentId);
  const sent = (kind: string) =>
    found.filter((r) => r.kind === kind && r.audience === 'user' && r.status === 'sent');
  expect(sent('payment-degraded')).toHaveLength(USERS);
  expect(sent('payment-recovered')).toHaveLength(USERS);
  const report = await readIncidentReport(db.pool, opened.incidentId);
  expect(report?.ackedAt).not.toBeNull();
  expect(report?.timeline.map((t) => t.what.split(' ')[0])).toContain('ack');
});

it('fanout stop cancels what is queued and stops later batches', async () => {
  // Email users: recorded pending for the delivery queue, nothing sent yet.
  const ctx = await context([], ['email']);
  const opened = await open('wechat_pay', 'slow');
  await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
  expect(
    (await rows(opened.incidentId)).filter((r) => r.audience === 'user' && r.status === 'pending'),
  ).toHaveLength(USERS);
  const cancelled = await stopFanout(db.pool, opened.incidentId, { actor: 'carol', reason: 'wrong warning' });
  expect(cancelled).toBe(USERS);
  const { rows: after } = await db.pool.query<{ status: string; last_error: string }>(
    `SELECT status, last_error FROM forewarn.notifications WHERE incident_id = $1 AND audience = 'user'`,
    [opened.incidentId],
  );
  expect(
    after.every(
      (r) => r.status === 'cancelled' && r.last_error === 'cancelled: stopped by ops: wrong warning',
    ),
  ).toBe(true);
  await expect(stopFanout(db.pool, opened.incidentId, { actor: 'carol', reason: 'again' })).rejects.toThrow(
    /stopped before/,
  );
});

it('a manual resolve records the resolve once, through the detector, and sends the recovery notices', async () => {
  const ctx = await context();
  const opened = await open('wechat_pay', 'failures');
  await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
  const eventId = await resolveIncident(db.pool, opened.incidentId, {
    actor: 'erin',
    reason: 'bank confirmed the fix',
  });
  await fanOutCauseEvent(ctx, eventId, async () => undefined);
  const sent = (await rows(opened.incidentId)).filter(
    (r) => r.kind === 'payment-recovered' && r.audience === 'user' && r.status === 'sent',
  );
  expect(sent).toHaveLength(USERS);
  await expect(
    resolveIncident(db.pool, opened.incidentId, { actor: 'erin', reason: 'again' }),
  ).rejects.toThrow(/resolved at .* already/);
  const { rows: events } = await db.pool.query(
    `SELECT type FROM forewarn.incident_events WHERE incident_id = $1 ORDER BY id`,
    [opened.incidentId],
  );
  expect(events.map((e) => e.type)).toEqual(['opened', 'resolved']);
});
