// The notification pipeline under faults, with the daemon as operators run it (`forewarn start
// --role scheduler,notifications` child processes) against real PostgreSQL, Redis and a real
// SMTP server. An outage of wechat_pay in CN-GD is fanned out in batches. (a) The daemon is
// killed with SIGKILL in the middle of a fan-out to 10,000 users (batches of 500) and started
// again: everyone still gets exactly one notification per channel, and one inbox row. (b) Redis
// loses every key of the deployment in the middle of a fan-out to 3,000 users (batches of 300):
// once the sweeper has run, everyone has exactly one notification per channel, all sent.
//
// The incident is opened by a real detector tick in this process (runTickAndDispatch, which
// queues the fan-out); the daemon's scheduler runs only the sweeper (the detector is disabled in
// its config, so its own ticks never move the detector's state).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runTickAndDispatch } from '../../jobs/detect.ts';
import { paymentHealth } from '../../lib/detection/payment-health-tick.ts';
import { messageIdFor } from '../../lib/channels/email.ts';
import { referencePlatform, type SimUser } from '../../sim/platform.ts';
import { generateAttempts, type SimAttempt } from '../../sim/traffic.ts';
import { Daemons, type DaemonProcess } from '../support/daemon.ts';
import { loadPlatform } from '../support/platform.ts';
import {
  attempt,
  DAY,
  duplicates,
  flushPrefix,
  insertAttempts,
  LINK_SECRET,
  MINUTE,
  OPS_EMAIL,
  pipelineProgress,
  readInbox,
  readNotifications,
  SECOND,
  startInProcess,
  targetedUsers,
  user,
  waitForPipelineIdle,
  writeConfigWith,
  type NotificationDaemonEnv,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';
const MESSAGE_ID_DOMAIN = 'notify.example.com';
const AUDIENCE = { stuckWithinMinutes: 60, usedWithinDays: 30 };
// 20:00 in Beijing; the tick one minute into the outage opens the incident (no confirmation).
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const TICK_AT = OUTAGE_START + 60 * SECOND;
/** A tsx start-up on a busy 2-core machine. */
const START_TIMEOUT_MS = 30_000;

/** A platform's users and attempts in one schema, and who the outage must reach. */
interface Population {
  schema: string;
  targeted: number;
  users: SimUser[];
  attempts: SimAttempt[];
  /** Sorted. */
  expectedIds: string[];
  /** User id → address, for targeted users with one. */
  expectedEmails: Map<string, string>;
}

/**
 * `targeted` active CN-GD users who paid with wechat_pay three days ago (one in `emailEvery`
 * with an email address: mail is the slow part, and the per-channel counts are what matters),
 * and 300 who must hear nothing: disabled, another region, alipay only; plus an hour of live
 * traffic for the detector.
 */
function population(schema: string, targeted: number, emailEvery: number): Population {
  const users: SimUser[] = [];
  const attempts: SimAttempt[] = [];
  let id = 900_000_000;
  const paidAt = OUTAGE_START - 3 * DAY;
  for (let i = 0; i < targeted; i++) {
    const userId = `c${String(i).padStart(5, '0')}`;
    const u = user(userId, {
      email: i % emailEvery === 0 ? `${userId}@example.com` : null,
      locale: i % 7 === 0 ? 'en' : 'zh-CN',
    });
    users.push(u);
    attempts.push(attempt(id++, u.id, CHANNEL, 'succeeded', paidAt));
  }
  for (let i = 0; i < 100; i++) {
    const disabled = user(`d${String(i).padStart(3, '0')}`, { status: 'disabled' });
    const elsewhere = user(`e${String(i).padStart(3, '0')}`, { region: 'CN-BJ' });
    const alipay = user(`f${String(i).padStart(3, '0')}`);
    users.push(disabled, elsewhere, alipay);
    attempts.push(
      attempt(id++, disabled.id, CHANNEL, 'succeeded', paidAt),
      attempt(id++, elsewhere.id, CHANNEL, 'succeeded', paidAt, 'CN-BJ'),
      attempt(id++, alipay.id, 'alipay', 'succeeded', paidAt),
    );
  }
  // Live traffic for the detector: the hour before the tick, wechat_pay failing for the last
  // minute of it; paid by the targeted users, so it changes nobody's side of the rule.
  const platform = referencePlatform();
  const local = { ...platform, pairs: platform.pairs.filter((p) => p.region === REGION) };
  attempts.push(
    ...generateAttempts({
      platform: local,
      from: TICK_AT - 65 * MINUTE,
      to: TICK_AT,
      seed: 7,
      users: users.slice(0, targeted).map((u) => u.id),
      scenarios: [
        {
          channel: CHANNEL,
          region: REGION,
          from: OUTAGE_START,
          to: TICK_AT + MINUTE,
          effect: { type: 'outage' },
        },
      ],
    }),
  );
  const expected = targetedUsers(users, attempts, {
    channel: CHANNEL,
    region: REGION,
    at: TICK_AT,
    ...AUDIENCE,
  });
  return {
    schema,
    targeted,
    users,
    attempts,
    expectedIds: expected.map((u) => u.id),
    expectedEmails: new Map(expected.flatMap((u) => (u.email ? [[u.id, u.email] as const] : []))),
  };
}

let dir: string;
let platformDb: TestDatabase;
let large: Population;
let small: Population;
const daemons = new Daemons();
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-notify-chaos-'));
  // The platforms live in a database of their own, one schema each; every scenario gets a fresh
  // forewarn database that reads its platform through PLATFORM_DATABASE_URL and PLATFORM_SCHEMA.
  platformDb = await createTestDatabase({ migrated: false });
  large = population('platform_large', 10_000, 25);
  small = population('platform_small', 3_000, 10);
  for (const p of [large, small]) {
    await loadPlatform(platformDb.pool, {
      platform: referencePlatform(),
      users: p.users,
      attempts: [],
      schema: p.schema,
    });
    await insertAttempts(platformDb.pool, p.attempts, p.schema);
    await platformDb.pool.query(`ANALYZE ${p.schema}.payment_attempts`);
  }
}, 60_000);

afterEach(async () => {
  // Processes first: they hold connections to the databases about to be dropped.
  await daemons.killAll();
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse())
    await cleanup().catch((error: unknown) => errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

afterAll(async () => {
  await platformDb?.drop();
  await rm(dir, { recursive: true, force: true });
});

interface Scenario {
  population: Population;
  db: TestDatabase;
  /** This scenario's own SMTP server: every fresh database numbers its incidents from 1. */
  smtp: TestSmtpServer;
  prefix: string;
  env: NotificationDaemonEnv;
  /** Opens the incident with a detector tick in this process; the daemon does the rest. */
  openIncident(): Promise<void>;
  start(): Promise<DaemonProcess>;
}

async function scenario(name: string, population: Population, batchSize: number): Promise<Scenario> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const redis = await createTestRedisPrefix();
  cleanups.push(() => redis.cleanup());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.close());
  const configPath = await writeConfigWith(join(dir, `${name}.yaml`), {
    detectors: { paymentHealth: { enabled: false, confirmSeconds: 0 } },
    notifications: {
      audience: AUDIENCE,
      batchSize,
      // Long enough for any delivery job here, short enough that a dead worker's claims expire.
      claimSeconds: 10,
      retry: { maxAttempts: 6, baseDelaySeconds: 0.2, maxDelaySeconds: 2 },
      email: { messageIdDomain: MESSAGE_ID_DOMAIN },
      ops: { emails: [OPS_EMAIL], locale: 'zh-CN', groupWaitSeconds: 0 },
      sweeper: { schedule: '*/2 * * * * *', staleSeconds: 3 },
    },
    shutdown: { graceSeconds: 5 },
  });
  const env: NotificationDaemonEnv = {
    DATABASE_URL: db.url,
    FOREWARN_QUEUE_PREFIX: redis.prefix,
    FOREWARN_CONFIG: configPath,
    PLATFORM_DATABASE_URL: platformDb.url,
    PLATFORM_SCHEMA: population.schema,
    SMTP_URL: smtp.url,
    FOREWARN_LINK_SECRET: LINK_SECRET,
    REDIS_URL,
    LOG_LEVEL: 'info',
  };
  return {
    population,
    db,
    smtp,
    prefix: redis.prefix,
    env,
    async openIncident() {
      const tick = await startInProcess({
        databaseUrl: db.url,
        platformDatabaseUrl: platformDb.url,
        platformSchema: population.schema,
        prefix: redis.prefix,
        configPath,
        worker: false,
      });
      try {
        const result = await runTickAndDispatch(paymentHealth.run, tick.ctx, TICK_AT);
        expect(result.recorded.map((r) => [r.change.type, r.change.subject])).toEqual([
          ['opened', { channel: CHANNEL, region: REGION }],
        ]);
      } finally {
        await tick.close();
      }
    },
    async start() {
      const daemon = daemons.start(env, ['--role', 'scheduler,notifications']);
      await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
      return daemon;
    },
  };
}

/** Notifications recorded so far. */
async function recorded(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM forewarn.notifications',
  );
  return rows[0]!.n;
}

/** One email per targeted user with an address, one in-app per targeted user, one ops alert. */
const expectedSent = (p: Population) => p.expectedIds.length + p.expectedEmails.size + 1;
/** The emails of targeted users without an address: recorded withheld ("no address"), never sent. */
const expectedNoAddress = (p: Population) => p.expectedIds.length - p.expectedEmails.size;
/** Every row the fan-out records. */
const expectedTotal = (p: Population) => expectedSent(p) + expectedNoAddress(p);
const expectedOutcomes = (p: Population) => ({ sent: expectedSent(p), cancelled: expectedNoAddress(p) });

/** Waits until the fan-out is part way: more than one batch recorded, at most 60% of it all. */
async function midFanout(s: Scenario, batchSize: number): Promise<number> {
  return waitFor(
    'the fan-out to be part way through',
    async () => {
      const n = await recorded(s.db);
      return n > batchSize && n <= expectedTotal(s.population) * 0.6 ? n : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 5 },
  );
}

/** Exactly one notification per targeted user and channel, one ops alert, one inbox row per user. */
async function expectExactlyOnce(s: Scenario): Promise<void> {
  const p = s.population;
  const notifications = await readNotifications(s.db.pool);
  const users = notifications.filter((n) => n.audience === 'user');
  expect(users.every((n) => n.kind === 'payment-degraded')).toBe(true);
  expect(duplicates(notifications, (n) => n.dedupe_key)).toEqual([]);
  expect(duplicates(users, (n) => `${n.user_id} ${n.channel}`)).toEqual([]);

  const inapp = users.filter((n) => n.channel === 'inapp');
  const email = users.filter((n) => n.channel === 'email');
  expect(inapp.length).toBe(p.targeted);
  expect(inapp.map((n) => n.user_id).sort()).toEqual(p.expectedIds);
  const withAddress = email.filter((n) => n.address !== null);
  expect(withAddress.length).toBe(p.expectedEmails.size);
  expect(withAddress.map((n) => `${n.user_id} ${n.address}`).sort()).toEqual(
    [...p.expectedEmails].map(([id, address]) => `${id} ${address}`).sort(),
  );
  const noAddress = email.filter((n) => n.address === null);
  expect(noAddress.length).toBe(expectedNoAddress(p));
  expect(noAddress.every((n) => n.status === 'cancelled' && !p.expectedEmails.has(n.user_id!))).toBe(true);
  expect(notifications.filter((n) => n.audience === 'ops').map((n) => [n.kind, n.address])).toEqual([
    ['ops-incident-opened', OPS_EMAIL],
  ]);
  expect(notifications).toHaveLength(expectedTotal(p));

  const inbox = await readInbox(s.db.pool);
  expect(inbox).toHaveLength(p.targeted);
  expect(duplicates(inbox, (r) => r.user_id)).toEqual([]);
  expect(duplicates(inbox, (r) => r.notification_id)).toEqual([]);
  expect(inbox.map((r) => r.user_id).sort()).toEqual(p.expectedIds);

  // The fan-out's own bookkeeping agrees: everyone counted once (the ops address too), and it finished.
  const { rows } = await s.db.pool.query<{ recipients: number; finished: boolean }>(
    'SELECT recipients, finished_at IS NOT NULL AS finished FROM forewarn.fanouts',
  );
  expect(rows).toEqual([{ recipients: p.targeted + 1, finished: true }]);
}

/** The messages the SMTP server got for this scenario's notifications, by Message-ID. */
async function messagesFor(s: Scenario): Promise<{ expected: Set<string>; received: string[] }> {
  const notifications = await readNotifications(s.db.pool);
  const expected = new Set(
    notifications
      .filter((n) => n.channel === 'email' && n.address !== null)
      .map((n) => messageIdFor(n.dedupe_key, MESSAGE_ID_DOMAIN)),
  );
  const received = s.smtp.messages.map((m) => m.messageId ?? '(none)');
  return { expected, received };
}

describe('a daemon killed in the middle of a fan-out to 10,000 users', () => {
  it('resumes after a restart: exactly one notification per user and channel, one inbox row per user', async () => {
    const s = await scenario('kill', large, 500);
    const first = await s.start();
    await s.openIncident();
    await midFanout(s, 500);
    await first.kill();
    expect(first.running).toBe(false);

    // Killed part way: some batches committed, not all, and the fan-out is not finished.
    const atKill = await recorded(s.db);
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(expectedTotal(large));
    const { rows: progress } = await s.db.pool.query<{ finished: boolean; batches: number }>(
      'SELECT finished_at IS NOT NULL AS finished, batches FROM forewarn.fanouts',
    );
    expect(progress).toHaveLength(1);
    expect(progress[0]!.finished).toBe(false);

    const second = await s.start();
    const done = await waitForPipelineIdle(s.db.pool, 1, 60_000);
    expect(done.byStatus).toEqual(expectedOutcomes(s.population));
    await expectExactlyOnce(s);

    // Every email reached the server. A message the killed process handed over just before it
    // died may arrive twice (accepted, but never marked sent), always with the same Message-ID.
    const { expected, received } = await messagesFor(s);
    expect(new Set(received)).toEqual(expected);
    expect(received.length - expected.size).toBeLessThanOrEqual(10);
    expect(second.running).toBe(true);
  }, 90_000);
});

describe('Redis losing every key in the middle of a fan-out to 3,000 users', () => {
  it('recovers through the sweeper: exactly one notification per user and channel, all sent', async () => {
    const s = await scenario('flush', small, 300);
    const daemon = await s.start();
    await s.openIncident();
    // Part way through the fan-out, with deliveries waiting in the queue: those jobs are lost
    // for good, only PostgreSQL still knows about their notifications.
    let atFlush = 0;
    const flushed = await waitFor(
      'the fan-out to be part way through, with deliveries waiting in the queue',
      async () => {
        atFlush = await recorded(s.db);
        if (atFlush <= 300 || atFlush > expectedTotal(small) * 0.6) return undefined;
        return flushPrefix(s.prefix, { queue: 'delivery', onlyIfWaiting: 'deliver@' });
      },
      { timeoutMs: 30_000, intervalMs: 5 },
    );
    const flushedAt = Date.now();
    expect(flushed.deleted).toBeGreaterThan(0);
    expect(flushed.waiting).toBeGreaterThan(0);
    expect(atFlush).toBeLessThan(expectedTotal(small));

    const done = await waitForPipelineIdle(s.db.pool, 1, 60_000);
    expect(done.byStatus).toEqual(expectedOutcomes(s.population));
    await expectExactlyOnce(s);

    // The sweeper found what the queue had lost.
    const swept = await waitFor(
      'the sweeper to log what it re-queued after the flush',
      async () => {
        const lines = daemon
          .logged('sweeper re-queued work')
          .filter((line) => Date.parse(String(line.time)) >= flushedAt);
        return lines.length > 0 ? lines : undefined;
      },
      { timeoutMs: 5_000 },
    );
    expect(swept.reduce((sum, line) => sum + Number(line.deliveries), 0)).toBeGreaterThan(0);

    // Nobody died, so nothing was sent twice.
    const { expected, received } = await messagesFor(s);
    expect(new Set(received)).toEqual(expected);
    expect(duplicates(received, (id) => id)).toEqual([]);
    expect((await pipelineProgress(s.db.pool)).undispatchedEvents).toBe(0);
    expect(daemon.running).toBe(true);
  }, 90_000);
});
