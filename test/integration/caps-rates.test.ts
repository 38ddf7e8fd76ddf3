// Frequency caps and sending rates against real PostgreSQL, Redis and an SMTP server.
// - At claim time, with a cap of 3 emails a day and 3 already sent today (a fixed clock: 23:30 in
//   Shanghai), the fourth promotional email waits for the user's next local midnight, a service
//   warning is cancelled, both with `capped: …`; a recovery notice and a security check-up go.
// - End to end over SMTP on the real clock: the same, as the SMTP server sees it.
// - A fan-out's inline in-app messages are capped in the batch's own transaction.
// - Two claims at once for the same user never take more than the cap between them.
// - A rate of 10 emails a second holds across two delivery contexts (two replicas) that share
//   Redis: the last of 40 messages reaches the SMTP server at least ~3 s after the start (the
//   first 10 go at once), where two separate buckets would let them all through in about 1 s.
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { deliverNotifications, type DeliveryContext } from '../../lib/notifications/deliver.ts';
import { fanOutCauseEvent } from '../../lib/notifications/fanout.ts';
import { capDrafts, capDraftsForDryRun, capRule, holdRule } from '../../lib/notifications/policy.ts';
import { inTransaction, type PoolClient } from '../../lib/db/pool.ts';
import { sendingRates } from '../../lib/notifications/rates.ts';
import {
  claimNotifications,
  insertNotifications,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { localDay } from '../../lib/policy/quiet-hours.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

// 23:30 on 4 December 2099 in Shanghai: far ahead of the database's clock, so nothing held is due.
const NIGHT = Date.parse('2099-12-04T15:30:00Z');
const NEXT_MIDNIGHT = Date.parse('2099-12-04T16:00:00Z');

let db: TestDatabase;
let shipped: Config;
let capped: Config;
let templates: TemplateStore;
const logs = captureLogs('warn');

beforeAll(async () => {
  db = await createTestDatabase();
  shipped = await loadConfigFile('config/forewarn.yaml');
  // No quiet hours: what holds a message here is the cap alone.
  capped = {
    ...shipped,
    notifications: { ...shipped.notifications, quietHours: {}, caps: { email: { perDay: 3 } } },
  };
  templates = await TemplateStore.load();
});

afterAll(async () => {
  await db?.drop();
});

let serial = 0;
function draft(
  userId: string,
  kind: keyof typeof templateKinds,
  category: NotificationDraft['category'],
  timezone: string,
  channel = 'email',
): NotificationDraft {
  serial++;
  return {
    dedupeKey: `cause:${serial}:${kind}:${channel}:${userId}`,
    cause: `cause:${serial}`,
    incidentId: null,
    kind,
    channel,
    audience: 'user',
    userId,
    address: channel === 'email' ? `${userId}@example.com` : null,
    locale: 'en',
    data: templateKinds[kind].sample as Record<string, unknown>,
    category,
    timezone,
  };
}

/** Records `count` messages to the user on `channel` as sent at `at`. */
async function alreadySent(userId: string, count: number, at: number, channel = 'email'): Promise<void> {
  const ids = await insertNotifications(
    db.pool,
    Array.from({ length: count }, () =>
      draft(userId, 'payment-degraded', 'service', 'Asia/Shanghai', channel),
    ),
  );
  await db.pool.query(
    `UPDATE forewarn.notifications SET status = 'sent', sent_at = $2, finished_at = $2 WHERE id = ANY ($1::bigint[])`,
    [ids, new Date(at)],
  );
}

/** Records `count` emails to the user as sent now, in `client`'s transaction. */
async function alreadySentWith(client: PoolClient, userId: string, count: number): Promise<void> {
  const ids = await insertNotifications(
    client,
    Array.from({ length: count }, () => draft(userId, 'payment-degraded', 'service', 'Asia/Shanghai')),
  );
  await client.query(
    `UPDATE forewarn.notifications SET status = 'sent', sent_at = now(), finished_at = now() WHERE id = ANY ($1::bigint[])`,
    [ids],
  );
}

interface Row {
  id: string;
  status: string;
  held_reason: string | null;
  next_attempt_at: Date;
}
async function rowsOf(ids: readonly string[]): Promise<Map<string, Row>> {
  const { rows } = await db.pool.query<Row>(
    'SELECT id::text, status, held_reason, next_attempt_at FROM forewarn.notifications WHERE id = ANY ($1::bigint[])',
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

const claim = (ids: string[], config: Config, now: () => number) =>
  claimNotifications(db.pool, ids, {
    token: randomUUID(),
    worker: 'test',
    claimSeconds: 60,
    maxAttempts: 3,
    hold: holdRule(config, now),
  });

describe('a cap of 3 emails a day, at claim time', () => {
  it('holds the fourth promotional email until midnight in Shanghai, cancels a service warning, lets a recovery notice and a check-up go', async () => {
    await alreadySent('sh-user', 3, NIGHT - 3_600_000);
    // Sent yesterday (before 16:00 UTC on the 3rd): not counted.
    await alreadySent('sh-user', 2, Date.parse('2099-12-03T15:59:00Z'));
    const [promo, warning, recovery, checkup] = await insertNotifications(db.pool, [
      draft('sh-user', 'payment-degraded', 'promotional', 'Asia/Shanghai'),
      draft('sh-user', 'payment-degraded', 'service', 'Asia/Shanghai'),
      draft('sh-user', 'payment-recovered', 'service', 'Asia/Shanghai'),
      draft('sh-user', 'security-checkup', 'security', 'Asia/Shanghai'),
    ]);
    const result = await claim([promo!, warning!, recovery!, checkup!], capped, () => NIGHT);
    expect(result.claimed.map((n) => n.id).sort()).toEqual([recovery, checkup].sort());
    expect(result.later).toEqual([{ id: promo, dueAt: NEXT_MIDNIGHT }]);
    expect(result.withheld).toEqual([
      {
        id: warning,
        reason:
          'capped: 3 of 3 email messages today in Asia/Shanghai; a service message that came tomorrow would be useless, cancelled',
      },
    ]);
    const rows = await rowsOf([promo!, warning!]);
    expect(rows.get(promo!)).toMatchObject({
      status: 'pending',
      next_attempt_at: new Date(NEXT_MIDNIGHT),
      held_reason:
        'capped: 3 of 3 email messages today in Asia/Shanghai; promotional held until 2099-12-04T16:00:00.000Z',
    });
    expect(rows.get(warning!)).toMatchObject({ status: 'cancelled' });
    expect(rows.get(warning!)!.held_reason).toMatch(/^capped: 3 of 3 email/);
  });

  it('under the cap nothing is held, and messages being sent count as sent', async () => {
    await alreadySent('sh-two', 1, NIGHT - 60_000);
    const ids = await insertNotifications(db.pool, [
      draft('sh-two', 'payment-degraded', 'service', 'Asia/Shanghai'),
      draft('sh-two', 'payment-degraded', 'service', 'Asia/Shanghai'),
    ]);
    const first = await claim(ids, capped, () => NIGHT);
    expect(first.claimed).toHaveLength(2);
    // Two are being sent and one went: a third warning today is over the cap.
    const [third] = await insertNotifications(db.pool, [
      draft('sh-two', 'payment-degraded', 'service', 'Asia/Shanghai'),
    ]);
    const second = await claim([third!], capped, () => NIGHT);
    expect(second.claimed).toEqual([]);
    expect(second.withheld.map((w) => w.id)).toEqual([third]);
  });

  it('without caps in the config nothing is counted', async () => {
    await alreadySent('sh-free', 5, NIGHT - 60_000);
    const ids = await insertNotifications(db.pool, [
      draft('sh-free', 'payment-degraded', 'service', 'Asia/Shanghai'),
    ]);
    const result = await claim(
      ids,
      { ...capped, notifications: { ...capped.notifications, caps: {} } },
      () => NIGHT,
    );
    expect(result.claimed).toHaveLength(1);
  });

  it('claims at once for one user take at most the cap between them', async () => {
    const ids = await insertNotifications(
      db.pool,
      Array.from({ length: 12 }, () => draft('race-user', 'payment-degraded', 'service', 'Asia/Shanghai')),
    );
    const results = await Promise.all(
      [0, 3, 6, 9].map((from) => claim(ids.slice(from, from + 3), capped, Date.now)),
    );
    expect(results.reduce((n, r) => n + r.claimed.length, 0)).toBe(3);
    expect(results.reduce((n, r) => n + r.withheld.length, 0)).toBe(9);
  });
});

describe('the caps in a dry run (capDraftsForDryRun)', () => {
  it('shows what the caps would do, counting the drafts before each, and writes nothing', async () => {
    await alreadySent('dry-user', 2, NIGHT - 60_000);
    const rule = capRule(capped, () => NIGHT)!;
    const drafts = [
      draft('dry-user', 'payment-degraded', 'service', 'Asia/Shanghai'),
      draft('dry-user', 'payment-degraded', 'service', 'Asia/Shanghai'),
      draft('dry-user', 'payment-degraded', 'promotional', 'Asia/Shanghai'),
      draft('dry-user', 'payment-recovered', 'service', 'Asia/Shanghai'),
      { ...draft('dry-user', 'payment-degraded', 'service', 'Asia/Shanghai'), withheldReason: 'opted out' },
    ];
    const before = await db.pool.query('SELECT count(*)::int AS n FROM forewarn.notifications');
    const judged = await capDraftsForDryRun(db.pool, drafts, rule);
    // Two went today: the first draft is the third and goes; the second would be cancelled, the
    // promotional one held until midnight; the recovery notice is never capped; the withheld one
    // keeps its reason.
    expect(judged[0]).toEqual(drafts[0]);
    expect(judged[1]).toMatchObject({
      withheldReason:
        'capped: 3 of 3 email messages today in Asia/Shanghai; a service message that came tomorrow would be useless, cancelled',
    });
    expect(judged[2]).toMatchObject({ notBefore: NEXT_MIDNIGHT });
    expect(judged[3]).toEqual(drafts[3]);
    expect(judged[4]).toEqual(drafts[4]);
    const after = await db.pool.query('SELECT count(*)::int AS n FROM forewarn.notifications');
    expect(after.rows).toEqual(before.rows);
  });
});

describe('caps on drafts delivered as they are recorded (capDrafts)', () => {
  it('returns the promotional draft over the cap held until the next local midnight', async () => {
    await alreadySent('draft-user', 3, NIGHT - 60_000);
    const rule = capRule(capped, () => NIGHT)!;
    const drafts = [
      draft('draft-user', 'payment-degraded', 'promotional', 'Asia/Shanghai'),
      draft('draft-user', 'payment-recovered', 'service', 'Asia/Shanghai'),
    ];
    const over = await inTransaction(db.pool, (client) => capDrafts(client, drafts, rule));
    expect(over).toEqual([
      {
        ...drafts[0],
        notBefore: NEXT_MIDNIGHT,
        heldReason:
          'capped: 3 of 3 email messages today in Asia/Shanghai; promotional held until 2099-12-04T16:00:00.000Z',
      },
    ]);
  });

  it('a claim for a user waits while a fan-out batch holds the cap lock, then counts what it wrote', async () => {
    const [queuedId] = await insertNotifications(db.pool, [
      draft('lock-user', 'payment-degraded', 'service', 'Asia/Shanghai'),
    ]);
    const client = await db.pool.connect();
    let settled = false;
    try {
      await client.query('BEGIN');
      const rule = capRule(capped)!;
      expect(
        await capDrafts(client, [draft('lock-user', 'payment-degraded', 'service', 'Asia/Shanghai')], rule),
      ).toEqual([]);
      const claiming = claim([queuedId!], capped, Date.now).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      // What the batch delivers: three sent today.
      await alreadySentWith(client, 'lock-user', 3);
      await client.query('COMMIT');
      const result = await claiming;
      expect(result.claimed).toEqual([]);
      expect(result.withheld.map((w) => w.id)).toEqual([queuedId]);
    } finally {
      client.release();
    }
  });
});

describe('a cap of 3 emails a day, delivered over SMTP', () => {
  let smtp: TestSmtpServer;
  let dir: string;
  let sender: EmailSender;
  const zone = 'America/Los_Angeles';
  let ids: string[];

  beforeAll(async () => {
    [smtp, dir] = await Promise.all([startSmtpServer(), mkdtemp(join(tmpdir(), 'forewarn-caps-'))]);
    sender = createEmailSender({
      smtpUrl: smtp.url,
      outboxDir: join(dir, 'outbox'),
      from: capped.notifications.email.from,
      logger: logs.logger,
    });
    ids = await insertNotifications(db.pool, [
      draft('la-user', 'payment-degraded', 'service', zone),
      draft('la-user', 'payment-degraded', 'service', zone),
      draft('la-user', 'payment-degraded', 'service', zone),
      draft('la-user', 'payment-degraded', 'promotional', zone),
      draft('la-user', 'payment-degraded', 'service', zone),
      draft('la-user', 'payment-recovered', 'service', zone),
      draft('la-user', 'security-checkup', 'security', zone),
    ]);
  });

  afterAll(async () => {
    await sender?.close();
    await smtp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('three proactive emails go, the fourth is held or cancelled with its reason, the recovery notice and the check-up go', async () => {
    const before = Date.now();
    const outcome = await deliverNotifications(
      {
        db: db.pool,
        config: () => capped,
        logger: logs.logger,
        templates,
        channels: { email: () => sender },
        workerId: 'test:caps',
        hold: holdRule(capped),
      },
      ids,
    );
    expect(outcome.sent).toBe(5);
    expect(smtp.messages).toHaveLength(5);
    const rows = await rowsOf(ids);
    const [s1, s2, s3, promo, s4, recovery, checkup] = ids.map((id) => rows.get(id)!);
    for (const r of [s1, s2, s3, recovery, checkup]) expect(r!.status).toBe('sent');
    expect(s4).toMatchObject({ status: 'cancelled' });
    expect(s4!.held_reason).toMatch(
      /^capped: 3 of 3 email messages today in America\/Los_Angeles; a service/,
    );
    // Held until midnight in Los Angeles, as Intl reckons it for now.
    const midnight = localDay(before, zone).next;
    expect(promo).toMatchObject({ status: 'pending', next_attempt_at: new Date(midnight) });
    expect(promo!.held_reason).toBe(
      `capped: 3 of 3 email messages today in America/Los_Angeles; promotional held until ${new Date(midnight).toISOString()}`,
    );
    expect(outcome.later).toEqual([{ id: promo!.id, dueAt: midnight }]);
  });
});

describe('an in-app cap at fan-out', () => {
  it('writes in-app messages inline up to the cap, and records the one over it as cancelled with its reason', async () => {
    const client = await db.pool.connect();
    try {
      await createPlatformSchema(client, 'platform');
    } finally {
      client.release();
    }
    const users = ['app-capped', 'app-free'];
    await db.pool.query(
      `INSERT INTO platform.users (id, email, locale, region, timezone, status, created_at)
       SELECT id, NULL, 'en', 'CN-GD', 'Asia/Shanghai', 'active', now() FROM unnest($1::text[]) AS u(id)`,
      [users],
    );
    await db.pool.query(
      `INSERT INTO platform.products (id, name, stock, updated_at) VALUES ('gift-100', '100 元礼品卡', 3, now())`,
    );
    await db.pool.query(
      `INSERT INTO platform.orders (id, user_id, product_id, quantity, status, created_at)
       SELECT 'o-' || id, id, 'gift-100', 1, 'pending', now() - interval '1 hour' FROM unnest($1::text[]) AS u(id)`,
      [users],
    );
    await alreadySent('app-capped', 1, Date.now(), 'inapp');
    const config: Config = {
      ...shipped,
      notifications: {
        ...shipped.notifications,
        quietHours: {},
        userChannels: ['inapp'],
        // Users only: ops alerts go by email, and this test sends none.
        ops: { ...shipped.notifications.ops, emails: [] },
        caps: { inapp: { perDay: 1 } },
      },
    };
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
      pendingOrders: users.length,
      pendingUnits: users.length,
      reason: 'threshold',
    } as Parameters<typeof recordCauseChange>[1]);
    const queued: string[] = [];
    await fanOutCauseEvent(
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
    const inbox = async () =>
      (
        await db.pool.query<{ user_id: string }>('SELECT user_id FROM forewarn.inbox ORDER BY user_id')
      ).rows.map((r) => r.user_id);
    // Written inline, in the batch's transaction, after counting under the users' cap locks.
    expect(await inbox()).toEqual(['app-free']);
    expect(queued).toEqual([]);
    const { rows } = await db.pool.query<{ user_id: string; status: string; held_reason: string | null }>(
      `SELECT user_id, status, held_reason FROM forewarn.notifications WHERE kind = 'stock-low' ORDER BY user_id`,
    );
    expect(rows.map((r) => [r.user_id, r.status])).toEqual([
      ['app-capped', 'cancelled'],
      ['app-free', 'sent'],
    ]);
    expect(rows[0]!.held_reason).toMatch(/^capped: 1 of 1 inapp messages today in Asia\/Shanghai; a service/);
  });
});

describe('a sending rate shared by two replicas', () => {
  let smtp: TestSmtpServer;
  let dir: string;
  const senders: EmailSender[] = [];
  const connections: Redis[] = [];
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    [smtp, dir] = await Promise.all([startSmtpServer(), mkdtemp(join(tmpdir(), 'forewarn-rates-'))]);
  });

  afterAll(async () => {
    await Promise.all(senders.map((s) => s.close()));
    for (const c of connections) c.disconnect();
    await smtp?.close();
    await cleanup?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a send that would wait past maxWaitSeconds is refused with the wait, and takes nothing', async () => {
    const redisPrefix = await createTestRedisPrefix();
    const redis = new Redis(REDIS_URL);
    connections.push(redis);
    try {
      const config: Config = {
        ...shipped,
        notifications: {
          ...shipped.notifications,
          rates: { email: { perSecond: 0.1, burst: 2, maxWaitSeconds: 1 } },
        },
      };
      const slept: number[] = [];
      const rates = sendingRates(
        redis,
        redisPrefix.prefix,
        () => config,
        async (ms) => {
          slept.push(ms);
        },
      );
      expect(await rates.take('email', 2)).toEqual({ taken: true });
      const refused = await rates.take('email', 1);
      expect(refused).toMatchObject({
        taken: false,
        reason: expect.stringContaining('(0.1/s, shared by every replica)'),
      });
      // One token at 0.1/s is 10 s away.
      expect((refused as { afterMs: number }).afterMs).toBeGreaterThan(9_000);
      expect((refused as { afterMs: number }).afterMs).toBeLessThanOrEqual(10_000);
      expect(slept).toEqual([]);
      // A channel without a rate is not limited, and its bucket is never made.
      expect(await rates.take('inapp', 1_000)).toEqual({ taken: true });
      expect(await redis.exists(`${redisPrefix.prefix}:rate:inapp`)).toBe(0);
      expect(Number(await redis.hget(`${redisPrefix.prefix}:rate:email`, 'tokens'))).toBeLessThan(0.01);
    } finally {
      await redisPrefix.cleanup();
    }
  });

  it('10 emails a second over 40 messages: the SMTP server sees the last one ~3 s after the start at the earliest', async () => {
    const redisPrefix = await createTestRedisPrefix();
    cleanup = redisPrefix.cleanup;
    const config: Config = {
      ...shipped,
      notifications: {
        ...shipped.notifications,
        quietHours: {},
        rates: { email: { perSecond: 10, maxWaitSeconds: 30 } },
      },
    };
    const ids = await insertNotifications(
      db.pool,
      Array.from({ length: 40 }, (_, i) =>
        draft(`rate-${i}`, 'payment-degraded', 'service', 'Asia/Shanghai'),
      ),
    );
    // Two replicas: each its own Redis connection, SMTP pool and delivery job, one deployment prefix.
    const replica = (n: number): DeliveryContext => {
      const redis = new Redis(REDIS_URL);
      connections.push(redis);
      const sender = createEmailSender({
        smtpUrl: smtp.url,
        outboxDir: join(dir, `outbox-${n}`),
        from: config.notifications.email.from,
        logger: logs.logger,
      });
      senders.push(sender);
      return {
        db: db.pool,
        config: () => config,
        logger: logs.logger,
        templates,
        channels: { email: () => sender },
        workerId: `test:rate-${n}`,
        hold: holdRule(config),
        rates: sendingRates(redis, redisPrefix.prefix, () => config),
      };
    };
    // Measured from before the first token is taken: a slow SMTP handshake can delay the first
    // messages more than the last, so the span between receipts could shrink under load, while
    // the time from the start to the last receipt only grows.
    const started = Date.now();
    const outcomes = await Promise.all([
      deliverNotifications(replica(1), ids.slice(0, 20)),
      deliverNotifications(replica(2), ids.slice(20)),
    ]);
    expect(outcomes.map((o) => o.sent)).toEqual([20, 20]);
    expect(smtp.messages).toHaveLength(40);
    const last = Math.max(...smtp.messages.map((m) => m.receivedAt));
    // A full bucket lets 10 through at once; the other 30 need 3 s of tokens after them.
    // (Two buckets of their own would have let all 40 through in about 1 s.)
    expect(last - started).toBeGreaterThanOrEqual(2_900);
  }, 60_000);
});
