// Urgent payment warnings and quiet hours, on real PostgreSQL: with quiet hours set for service
// messages (an operator may want them), a payment warning to a user whose attempt on the broken
// channel is stuck right now goes at once, in-app and by email, and a later claim does not hold
// it either; the same warning to a user who only paid with the channel last week waits for the
// morning in their own zone, with the reason on the row.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { fanOutCauseEvent, type FanoutContext } from '../../lib/notifications/fanout.ts';
import { holdRule } from '../../lib/notifications/policy.ts';
import { claimNotifications } from '../../lib/notifications/store.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatform, SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';

let db: TestDatabase;
let config: Config;
let opened: { incidentId: string; eventId: string };
/** Quiet hours that cover every hour of the day: whatever the clock says, a held message waits. */
const ALL_DAY = { from: '00:00', to: '23:59' };

interface Row {
  user_id: string;
  channel: string;
  status: string;
  urgent: boolean;
  held_reason: string | null;
  held: boolean;
}

async function rows(): Promise<Row[]> {
  const { rows: found } = await db.pool.query<Row>(
    `SELECT user_id, channel, status, urgent, held_reason, next_attempt_at > now() + interval '1 minute' AS held
       FROM forewarn.notifications WHERE incident_id = $1 AND kind = 'payment-degraded'
      ORDER BY user_id, channel`,
    [opened.incidentId],
  );
  return found;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createPlatform(db.pool);
  await db.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at) VALUES
       ('stuck', 'stuck@example.com', 'zh-CN', $1, 'Asia/Shanghai', 'active', now(), now() - interval '90 days'),
       ('paid', 'paid@example.com', 'en', $1, 'America/Los_Angeles', 'active', now(), now() - interval '90 days')`,
    [REGION],
  );
  // stuck: an attempt pending on the channel since 2 minutes ago; paid: a success 3 days ago.
  await db.pool.query(
    `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at, finished_at) VALUES
       (1, 'stuck', $1, $2, 'pending', NULL, now() - interval '2 minutes', NULL),
       (2, 'paid', $1, $2, 'succeeded', 900, now() - interval '3 days', now() - interval '3 days')`,
    [CHANNEL, REGION],
  );
  const shipped = await loadConfigFile(SHIPPED_CONFIG);
  config = {
    ...shipped,
    notifications: {
      ...shipped.notifications,
      userChannels: ['email', 'inapp'],
      ops: { ...shipped.notifications.ops, emails: [] },
      quietHours: { ...shipped.notifications.quietHours, service: ALL_DAY },
    },
  };
  const templates = TemplateStore.load();
  const ctx: FanoutContext = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: 'platform',
    config: () => config,
    logger: captureLogs('warn').logger,
    linkKeys: LINK_KEYS,
    publicUrl: 'https://forewarn.example.com',
    templates: () => templates,
  };
  opened = await recordCauseChange(db.pool, {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel: CHANNEL, region: REGION },
    subjectKey: `${CHANNEL}:${REGION}`,
    kind: 'failures',
    at: Date.now() - 10_000,
    evidence: { windowSeconds: 30, attempts: 120, bad: 120, rate: 1, baseline: 0.03 },
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1]);
  await fanOutCauseEvent(ctx, opened.eventId, async () => undefined);
});

afterAll(async () => {
  await db?.drop();
});

describe('service quiet hours and a payment warning', () => {
  it('goes at once to the user whose payment is stuck now: in-app delivered, email due now', async () => {
    const stuck = (await rows()).filter((r) => r.user_id === 'stuck');
    expect(stuck).toEqual([
      { user_id: 'stuck', channel: 'email', status: 'pending', urgent: true, held_reason: null, held: false },
      { user_id: 'stuck', channel: 'inapp', status: 'sent', urgent: true, held_reason: null, held: false },
    ]);
  });

  it('waits for the end of the quiet hours for a user who only paid with the channel before', async () => {
    const paid = (await rows()).filter((r) => r.user_id === 'paid');
    expect(paid.map((r) => [r.channel, r.status, r.urgent, r.held])).toEqual([
      ['email', 'pending', false, true],
      ['inapp', 'pending', false, true],
    ]);
    for (const r of paid)
      expect(r.held_reason).toMatch(/^held: service quiet hours 00:00-23:59 in America\/Los_Angeles, until /);
  });

  it('is not held by a later claim either', async () => {
    const { rows: due } = await db.pool.query<{ id: string }>(
      `SELECT id::text FROM forewarn.notifications
        WHERE incident_id = $1 AND user_id = 'stuck' AND channel = 'email'`,
      [opened.incidentId],
    );
    const result = await claimNotifications(
      db.pool,
      due.map((r) => r.id),
      { token: randomUUID(), worker: 'test', claimSeconds: 60, maxAttempts: 3, hold: holdRule(config) },
    );
    expect(result.claimed.map((n) => n.id)).toEqual([due[0]!.id]);
    expect(result.later).toEqual([]);
  });
});
