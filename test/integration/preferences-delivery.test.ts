// The delivery policy's opt-outs and suppressions, end to end against real PostgreSQL and a real
// SMTP server: a low-stock cause is fanned out (lib/notifications/fanout.ts) to the users with a
// pending order and to ops, then delivered by the delivery step with the policy's rule, as the
// delivery job does.
// - A user opted out of service messages by email gets nothing by email, and the in-app message
//   all the same; the email row is cancelled with `opted out: service by email`.
// - An address on the suppression list (any case) is never tried: the SMTP server sees nothing
//   for it and the row says `suppressed: <reason> (since <date>)`; ops alerts are suppressed too.
// - A user who opts out after the fan-out has their queued email cancelled at claim, with the reason.
// - A user without an email address gets the in-app message; the email is recorded as withheld,
//   `no address`, so that `deliveries why` can say why none came.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { deliverNotifications, type DeliveryOutcome } from '../../lib/notifications/deliver.ts';
import { fanOutCauseEvent, type FanoutResult } from '../../lib/notifications/fanout.ts';
import { holdRule } from '../../lib/notifications/policy.ts';
import { savePreferences, suppressAddress } from '../../lib/policy/preferences.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const USERS = [
  { id: 'u-plain', email: 'plain@example.com' },
  { id: 'u-out', email: 'out@example.com' },
  // Stored as the platform has it; suppressed lower-cased.
  { id: 'u-supp', email: 'Bounced@Example.com' },
  { id: 'u-late', email: 'late@example.com' },
  { id: 'u-noapp', email: 'noapp@example.com' },
  // The platform has no email for this user: in-app only, and the email recorded as withheld.
  { id: 'u-nomail', email: null },
];
const BOUNCE = 'permanent failure: 550 5.1.1 no such user';

let db: TestDatabase;
let smtp: TestSmtpServer;
let dir: string;
let sender: EmailSender;
let config: Config;
const logs = captureLogs('info');
let fanout: FanoutResult;
const queued: string[] = [];
let delivered: DeliveryOutcome;
let suppressedSince: Date;

interface Row {
  user_id: string | null;
  kind: string;
  channel: string;
  status: string;
  held_reason: string | null;
}
let rows: Row[];

beforeAll(async () => {
  [db, smtp, dir] = await Promise.all([
    createTestDatabase(),
    startSmtpServer(),
    mkdtemp(join(tmpdir(), 'forewarn-prefs-')),
  ]);
  config = await loadConfigFile('config/forewarn.yaml');
  const client = await db.pool.connect();
  try {
    await createPlatformSchema(client, 'platform');
  } finally {
    client.release();
  }
  await db.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, created_at)
     SELECT id, email, 'en', 'CN-GD', 'Asia/Shanghai', 'active', now() FROM unnest($1::text[], $2::text[]) AS u(id, email)`,
    [USERS.map((u) => u.id), USERS.map((u) => u.email)],
  );
  await db.pool.query(
    `INSERT INTO platform.products (id, name, stock, updated_at) VALUES ('gift-100', '100 元礼品卡', 3, now())`,
  );
  await db.pool.query(
    `INSERT INTO platform.orders (id, user_id, product_id, quantity, status, created_at)
     SELECT 'o-' || id, id, 'gift-100', 1, 'pending', now() - interval '1 hour' FROM unnest($1::text[]) AS u(id)`,
    [USERS.map((u) => u.id)],
  );
  await savePreferences(
    db.pool,
    [
      { userId: 'u-out', category: 'service', channel: 'email', optedOut: true },
      { userId: 'u-noapp', category: 'service', channel: 'inapp', optedOut: true },
    ],
    'api',
  );
  await suppressAddress(db.pool, { channel: 'email', address: 'bounced@example.com', reason: BOUNCE });
  await suppressAddress(db.pool, {
    channel: 'email',
    address: config.notifications.ops.emails[0]!,
    reason: 'mailbox full for good',
  });
  suppressedSince = (
    await db.pool.query<{ created_at: Date }>(
      "SELECT created_at FROM forewarn.suppressions WHERE address = 'bounced@example.com'",
    )
  ).rows[0]!.created_at;

  const opened = await recordCauseChange(db.pool, {
    detector: 'inventory',
    subjectKey: 'gift-100',
    subject: { productId: 'gift-100' },
    kind: 'low-stock',
    type: 'opened',
    at: Date.now() - 60_000,
    evidence: {},
    productId: 'gift-100',
    productName: '100 元礼品卡',
    stock: 3,
    threshold: 10,
    salesPerDay: 2,
    daysOfCover: 1.5,
    pendingOrders: USERS.length,
    pendingUnits: USERS.length,
    reason: 'threshold',
  } as Parameters<typeof recordCauseChange>[1]);

  const templates = await TemplateStore.load();
  fanout = await fanOutCauseEvent(
    {
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      config: () => config,
      logger: logs.logger,
      linkKeys: LINK_KEYS,
      publicUrl: 'https://notify.example.com',
      templates: () => Promise.resolve(templates),
    },
    opened.eventId,
    async (ids) => {
      queued.push(...ids);
    },
  );
  // After the fan-out, before delivery: the queued email must not go.
  await savePreferences(
    db.pool,
    [{ userId: 'u-late', category: 'service', channel: 'email', optedOut: true }],
    'api',
  );

  sender = createEmailSender({
    smtpUrl: smtp.url,
    outboxDir: join(dir, 'outbox'),
    from: config.notifications.email.from,
    logger: logs.logger,
  });
  delivered = await deliverNotifications(
    {
      db: db.pool,
      config: () => config,
      logger: logs.logger,
      templates,
      channels: { email: () => sender },
      workerId: 'test:prefs',
      hold: holdRule(config),
    },
    queued,
  );
  rows = (
    await db.pool.query<Row>(
      'SELECT user_id, kind, channel, status, held_reason FROM forewarn.notifications ORDER BY kind, user_id, channel',
    )
  ).rows;
});

afterAll(async () => {
  await sender?.close();
  await smtp?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const row = (userId: string | null, channel: string) =>
  rows.find((r) => r.user_id === userId && r.channel === channel && r.kind !== 'ops-stock-low');

describe('opted out at fan-out', () => {
  it('gets nothing by email: recorded as cancelled with the reason, never queued', () => {
    expect(row('u-out', 'email')).toMatchObject({
      status: 'cancelled',
      held_reason: 'opted out: service by email',
    });
    expect(smtp.messages.flatMap((m) => m.envelope.to)).not.toContain('out@example.com');
  });

  it('still gets the in-app message', async () => {
    expect(row('u-out', 'inapp')).toMatchObject({ status: 'sent', held_reason: null });
    const { rows: inbox } = await db.pool.query("SELECT 1 FROM forewarn.inbox WHERE user_id = 'u-out'");
    expect(inbox).toHaveLength(1);
  });
});

describe('opted out in-app', () => {
  it('gets no inbox message, and the email all the same', async () => {
    expect(row('u-noapp', 'inapp')).toMatchObject({
      status: 'cancelled',
      held_reason: 'opted out: service by inapp',
    });
    const { rows: inbox } = await db.pool.query("SELECT 1 FROM forewarn.inbox WHERE user_id = 'u-noapp'");
    expect(inbox).toEqual([]);
    expect(row('u-noapp', 'email')).toMatchObject({ status: 'sent' });
  });
});

describe('a suppressed address', () => {
  it('is never tried, and the row says why and since when', () => {
    expect(row('u-supp', 'email')).toMatchObject({
      status: 'cancelled',
      held_reason: `suppressed: ${BOUNCE} (since ${suppressedSince.toISOString()})`,
    });
    expect(smtp.messages.flatMap((m) => m.envelope.to.map((t) => t.toLowerCase()))).not.toContain(
      'bounced@example.com',
    );
    expect(row('u-supp', 'inapp')).toMatchObject({ status: 'sent' });
  });

  it('holds back an ops alert too', () => {
    expect(rows.filter((r) => r.kind === 'ops-stock-low')).toEqual([
      {
        user_id: null,
        kind: 'ops-stock-low',
        channel: 'email',
        status: 'cancelled',
        held_reason: expect.stringMatching(/^suppressed: mailbox full for good \(since /),
      },
    ]);
  });

  it('is not written raw into the logs', () => {
    expect(JSON.stringify(logs.lines()).toLowerCase()).not.toContain('bounced@example.com');
  });
});

describe('opted out after the fan-out', () => {
  it('has the queued email cancelled at claim with the reason, not sent', () => {
    expect(row('u-late', 'email')).toMatchObject({
      status: 'cancelled',
      held_reason: 'opted out: service by email',
    });
    expect(delivered.cancelled).toBe(1);
    expect(row('u-late', 'inapp')).toMatchObject({ status: 'sent' });
  });
});

describe('a user without an email address', () => {
  it('gets the in-app message, and the email is recorded withheld for want of an address', async () => {
    expect(row('u-nomail', 'inapp')).toMatchObject({ status: 'sent', held_reason: null });
    expect(row('u-nomail', 'email')).toMatchObject({
      status: 'cancelled',
      held_reason: 'no address: the platform has no email address for this user',
    });
    const { rows: outcome } = await db.pool.query<{ address: string | null }>(
      "SELECT address FROM forewarn.notifications WHERE user_id = 'u-nomail' AND channel = 'email'",
    );
    expect(outcome).toEqual([{ address: null }]);
  });
});

describe('everyone else', () => {
  it('is sent as before: only the emails not withheld were queued, and the late one was not mailed', () => {
    expect(queued).toHaveLength(3);
    expect(delivered.sent).toBe(2);
    expect(smtp.messages.flatMap((m) => m.envelope.to).sort()).toEqual([
      'noapp@example.com',
      'plain@example.com',
    ]);
    expect(row('u-plain', 'email')).toMatchObject({ status: 'sent', held_reason: null });
  });

  it('the fan-out counts what it withheld', () => {
    const done = logs.lines().find((l) => String(l.msg).startsWith('fan-out of cause'));
    expect(done).toMatchObject({ withheld: 5 });
    expect(fanout.alreadyDone).toBe(false);
  });
});
