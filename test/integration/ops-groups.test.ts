// Grouped ops alerts (lib/notifications/ops-groups.ts, deliver-groups.ts), against real
// PostgreSQL, Redis and an SMTP server: alerts recorded as the fan-out records them (one insert
// and one ops-alerts job per cause event) with the group key their kind gives.
// - six alerts of one region within the wait: the wait is in the rows, then one email lists all
//   six and all six are sent; two regions: two emails; an alert after its group went out starts
//   a group of its own (sent as the normal single alert); alerts without a key go at once;
// - a group whose email fails for now is retried as one;
// - a worker that crashed holding a group: the sweeper queues each member alone, and still one
//   email goes out; a stalled worker whose claim was taken over writes nothing, so the group is
//   not sent again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import * as deliverOpsAlerts from '../../jobs/deliver-ops-alerts.ts';
import * as sweepNotifications from '../../jobs/sweep-notifications.ts';
import { messageIdFor, type EmailSender } from '../../lib/channels/email.ts';
import type { AppContext } from '../../lib/context.ts';
import { deliverOpsGroups } from '../../lib/notifications/deliver-groups.ts';
import type { DeliveryContext } from '../../lib/notifications/deliver.ts';
import { claimGroup, readOpsGroups } from '../../lib/notifications/ops-groups.ts';
import {
  insertNotifications,
  markRetry,
  markSent,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { redisOptions } from '../../lib/queue/redis.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { createPlatform } from '../support/daemon.ts';
import {
  OPS_EMAIL,
  startInProcess,
  writeConfigWith,
  type InProcessPipeline,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { reject, startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../support/smtp.ts';

const MESSAGE_ID_DOMAIN = 'notify.example.com';
const CHANNELS = ['wechat_pay', 'alipay', 'unionpay', 'qq_wallet', 'bank_card', 'jd_pay'];

let incident = 1_000;
/** An ops-incident-opened alert for one channel and region, grouped by region unless told. */
function opsAlert(
  region: string,
  channel: string,
  groupKey: string | null = `region:${region}`,
): NotificationDraft {
  incident += 1;
  const id = String(incident);
  return {
    dedupeKey: `cause:${id}:ops-incident-opened:email:${OPS_EMAIL}`,
    cause: `cause:${id}`,
    incidentId: id,
    kind: 'ops-incident-opened',
    channel: 'email',
    audience: 'ops',
    userId: null,
    address: OPS_EMAIL,
    locale: 'en',
    category: 'ops',
    groupKey,
    data: { ...templateKinds['ops-incident-opened'].sample, incidentId: id, channel, region },
  };
}

/** Records alerts as the fan-out does for one cause event: one insert, then its ops-alerts job. */
async function record(ctx: AppContext, db: TestDatabase, alert: NotificationDraft): Promise<string> {
  const [id] = await insertNotifications(db.pool, [alert]);
  await enqueueDeliveries(ctx, [id!], `test-${alert.incidentId}`);
  return id!;
}

interface Row {
  id: string;
  status: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  claimed_by: string | null;
}

async function rows(db: TestDatabase, ids: readonly string[]): Promise<Row[]> {
  const { rows } = await db.pool.query<Row>(
    `SELECT id, status, attempts, claimed_by,
            (extract(epoch FROM created_at) * 1000)::float8 AS created_at,
            (extract(epoch FROM next_attempt_at) * 1000)::float8 AS next_attempt_at
       FROM forewarn.notifications WHERE id = ANY ($1::bigint[]) ORDER BY id`,
    [ids],
  );
  return rows;
}

const toOps = (smtp: TestSmtpServer) => smtp.messages.filter((m) => m.envelope.to.includes(OPS_EMAIL));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The subject each alert has on its own (ops-incident-opened, en). */
async function ownSubject(pipeline: InProcessPipeline, alert: NotificationDraft): Promise<string> {
  const templates = await pipeline.ctx.templates();
  return templates.render({
    kind: 'ops-incident-opened',
    channel: 'email',
    locale: 'en',
    data: alert.data as never,
  }).subject!;
}

function deliveryContext(ctx: AppContext, email: () => EmailSender, templates: DeliveryContext['templates']) {
  return {
    db: ctx.db,
    config: ctx.config,
    logger: ctx.logger,
    templates,
    channels: { email },
    workerId: ctx.workerId,
  };
}

let dir: string;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-ops-groups-'));
});

afterEach(async () => {
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse())
    await cleanup().catch((error: unknown) => errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setUp(
  name: string,
  options: { waitSeconds: number; worker?: boolean; retry?: object },
): Promise<{
  db: TestDatabase;
  smtp: TestSmtpServer;
  pipeline: InProcessPipeline;
  start: () => Promise<InProcessPipeline>;
  prefix: string;
}> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  await createPlatform(db.pool);
  const redis = await createTestRedisPrefix();
  cleanups.push(() => redis.cleanup());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.close());
  const configPath = await writeConfigWith(join(dir, `${name}.yaml`), {
    detectors: { paymentHealth: { enabled: false } },
    notifications: {
      email: { messageIdDomain: MESSAGE_ID_DOMAIN },
      ops: { emails: [OPS_EMAIL], locale: 'en', groupWaitSeconds: options.waitSeconds },
      ...(options.retry ? { retry: options.retry } : {}),
    },
  });
  const start = async (worker = true) => {
    const pipeline = await startInProcess({
      databaseUrl: db.url,
      prefix: redis.prefix,
      configPath,
      smtpUrl: smtp.url,
      ...(worker ? {} : { worker: false }),
    });
    cleanups.push(() => pipeline.close());
    return pipeline;
  };
  const pipeline = await start(options.worker !== false);
  return { db, smtp, pipeline, start: () => start(true), prefix: redis.prefix };
}

describe('ops alerts of one group within the wait', () => {
  it('hold in their rows for the wait, then reach ops as one email listing all six, all six sent', async () => {
    const WAIT = 2;
    const { db, smtp, pipeline } = await setUp('six', { waitSeconds: WAIT });
    const alerts = CHANNELS.map((channel) => opsAlert('CN-GD', channel));
    const ids: string[] = [];
    for (const alert of alerts) {
      ids.push(await record(pipeline.ctx, db, alert));
      await sleep(100);
    }
    // The wait is in the rows: every member due when the first one's wait is over.
    const held = await waitFor('all six held until the group is due', async () => {
      const r = await rows(db, ids);
      const due = r[0]!.created_at + WAIT * 1000;
      return r.every((row) => row.status === 'pending' && Math.abs(row.next_attempt_at - due) < 2) ? r : null;
    });
    expect(toOps(smtp)).toEqual([]);

    const [email] = await waitFor(
      'the group email',
      async () => (toOps(smtp).length > 0 ? toOps(smtp) : null),
      {
        timeoutMs: 15_000,
        intervalMs: 20,
      },
    );
    // Not before the wait was over (the database's clock and this one are the same machine's).
    expect(Date.now()).toBeGreaterThanOrEqual(held[0]!.created_at + WAIT * 1000);
    await waitFor('all six sent', async () => (await rows(db, ids)).every((r) => r.status === 'sent'));
    await sleep(1_000);
    expect(toOps(smtp)).toHaveLength(1);
    expect(email!.subject).toBe('[forewarn] 6 alerts for region CN-GD');
    for (const alert of alerts) expect(email!.text).toContain(await ownSubject(pipeline, alert));
    for (const alert of alerts) expect(email!.html).toContain(`Incident ${alert.incidentId} opened`);
    expect((await rows(db, ids)).map((r) => r.attempts)).toEqual(ids.map(() => 1));
  }, 60_000);

  it('of two regions reach ops as two emails, each listing its own', async () => {
    const { db, smtp, pipeline } = await setUp('two-regions', { waitSeconds: 2 });
    const gd = CHANNELS.slice(0, 3).map((c) => opsAlert('CN-GD', c));
    const sh = CHANNELS.slice(0, 3).map((c) => opsAlert('CN-SH', c));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(await record(pipeline.ctx, db, gd[i]!), await record(pipeline.ctx, db, sh[i]!));
    await waitFor('all sent', async () => (await rows(db, ids)).every((r) => r.status === 'sent'), {
      timeoutMs: 15_000,
    });
    await sleep(1_000);
    const bySubject = new Map(toOps(smtp).map((m) => [m.subject, m]));
    expect([...bySubject.keys()].sort()).toEqual([
      '[forewarn] 3 alerts for region CN-GD',
      '[forewarn] 3 alerts for region CN-SH',
    ]);
    expect(toOps(smtp)).toHaveLength(2);
    const text = (subject: string) => bySubject.get(subject)!.text!;
    for (const alert of gd) {
      expect(text('[forewarn] 3 alerts for region CN-GD')).toContain(`Incident ${alert.incidentId} opened`);
      expect(text('[forewarn] 3 alerts for region CN-SH')).not.toContain(
        `Incident ${alert.incidentId} opened`,
      );
    }
    for (const alert of sh)
      expect(text('[forewarn] 3 alerts for region CN-SH')).toContain(`Incident ${alert.incidentId} opened`);
  }, 60_000);

  it('a later alert starts a group of its own, which waits again and, alone, goes as the normal alert', async () => {
    const WAIT = 2;
    const { db, smtp, pipeline } = await setUp('later', { waitSeconds: WAIT });
    const first = [opsAlert('CN-GD', 'wechat_pay'), opsAlert('CN-GD', 'alipay')];
    const firstIds = [await record(pipeline.ctx, db, first[0]!), await record(pipeline.ctx, db, first[1]!)];
    await waitFor(
      'the first group sent',
      async () => (await rows(db, firstIds)).every((r) => r.status === 'sent'),
      {
        timeoutMs: 15_000,
      },
    );
    expect(toOps(smtp).map((m) => m.subject)).toEqual(['[forewarn] 2 alerts for region CN-GD']);

    const later = opsAlert('CN-GD', 'unionpay');
    const laterId = await record(pipeline.ctx, db, later);
    const [held] = await waitFor('the later alert held for a wait of its own', async () => {
      const r = await rows(db, [laterId]);
      return r[0]!.next_attempt_at > r[0]!.created_at + WAIT * 1000 - 2 ? r : null;
    });
    expect(held!.status).toBe('pending');
    const alone = await waitFor('the later alert', async () => toOps(smtp)[1], {
      timeoutMs: 15_000,
      intervalMs: 20,
    });
    expect(Date.now()).toBeGreaterThanOrEqual(held!.created_at + WAIT * 1000);
    // A group of one is the alert itself: its own subject, text and Message-ID.
    expect(alone.subject).toBe(await ownSubject(pipeline, later));
    expect(alone.messageId).toBe(messageIdFor(later.dedupeKey, MESSAGE_ID_DOMAIN));
    await waitFor('sent', async () => (await rows(db, [laterId]))[0]!.status === 'sent');
    expect(toOps(smtp)).toHaveLength(2);
  }, 60_000);

  it('an alert without a group key goes at once, while a grouped one waits', async () => {
    const WAIT = 30;
    const { db, smtp, pipeline } = await setUp('ungrouped', { waitSeconds: WAIT });
    const grouped = opsAlert('CN-GD', 'wechat_pay');
    const ungrouped = opsAlert('CN-GD', 'alipay', null);
    const groupedId = await record(pipeline.ctx, db, grouped);
    const started = Date.now();
    const ungroupedId = await record(pipeline.ctx, db, ungrouped);
    const email = await waitFor('the ungrouped alert', async () => toOps(smtp)[0], {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    expect(Date.now() - started).toBeLessThan(WAIT * 1000);
    expect(email.messageId).toBe(messageIdFor(ungrouped.dedupeKey, MESSAGE_ID_DOMAIN));
    await waitFor('sent', async () => (await rows(db, [ungroupedId]))[0]!.status === 'sent');
    const [waiting] = await rows(db, [groupedId]);
    expect(waiting!.status).toBe('pending');
    expect(waiting!.next_attempt_at).toBeCloseTo(waiting!.created_at + WAIT * 1000, -1);
    expect(toOps(smtp)).toHaveLength(1);
  }, 60_000);

  it('whose email fails for now is retried as one group', async () => {
    const { db, smtp, pipeline } = await setUp('retry', {
      waitSeconds: 1,
      retry: { maxAttempts: 3, baseDelaySeconds: 0.2, maxDelaySeconds: 0.5 },
    });
    smtp.queue(reject(451));
    const ids: string[] = [];
    for (const channel of CHANNELS.slice(0, 3))
      ids.push(await record(pipeline.ctx, db, opsAlert('CN-GD', channel)));
    await waitFor('all sent', async () => (await rows(db, ids)).every((r) => r.status === 'sent'), {
      timeoutMs: 15_000,
    });
    await sleep(500);
    expect(toOps(smtp).map((m) => m.subject)).toEqual(['[forewarn] 3 alerts for region CN-GD']);
    expect((await rows(db, ids)).map((r) => r.attempts)).toEqual([2, 2, 2]);
  }, 60_000);
});

describe('a held group whose job Redis lost', () => {
  it('keeps its wait in the rows; the sweeper finds it once due, and it goes out as one email', async () => {
    const WAIT = 2;
    const { db, smtp, pipeline, start, prefix } = await setUp('lost-job', {
      waitSeconds: WAIT,
      worker: false,
    });
    const ids: string[] = [];
    for (const channel of CHANNELS.slice(0, 3)) {
      const [id] = await insertNotifications(db.pool, [opsAlert('CN-GD', channel)]);
      ids.push(id!);
      // The alert's own job, run here: it holds the group and queues a job for when it is due.
      const result = await deliverOpsAlerts.handle({ ids: [id!] }, pipeline.ctx);
      expect(result).toMatchObject({ claimed: 0, sent: 0, held: ids.length });
    }
    const held = await rows(db, ids);
    const due = held[0]!.created_at + WAIT * 1000;
    for (const row of held) {
      expect(row.status).toBe('pending');
      expect(Math.abs(row.next_attempt_at - due)).toBeLessThan(2);
    }
    const queue = new Queue('ops-alerts', { connection: redisOptions(REDIS_URL), prefix });
    try {
      const delayed = await queue.getJobs(['delayed'], 0, -1);
      // One job for the group, whichever alert queued it, due when the group is.
      expect(delayed.map((j) => (j.data as { ids: string[] }).ids)).toEqual([[ids[0]]]);
      expect(delayed[0]!.timestamp + delayed[0]!.delay).toBeGreaterThanOrEqual(due);
      // Redis loses it (a flush, a failover without persistence).
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
    // Time passes beyond the wait and the sweeper's staleSeconds: the rows say the group is due.
    await db.pool.query(
      `UPDATE forewarn.notifications SET created_at = created_at - interval '10 minutes',
              next_attempt_at = next_attempt_at - interval '10 minutes' WHERE id = ANY ($1::bigint[])`,
      [ids],
    );
    const swept = await sweepNotifications.handle({ tickAt: new Date().toISOString() }, pipeline.ctx);
    expect(swept.deliveries).toBe(ids.length);
    await start();
    await waitFor('all sent', async () => (await rows(db, ids)).every((r) => r.status === 'sent'), {
      timeoutMs: 15_000,
    });
    await sleep(500);
    expect(toOps(smtp).map((m) => m.subject)).toEqual(['[forewarn] 3 alerts for region CN-GD']);
  }, 60_000);
});

describe('a group whose claim was lost', () => {
  it('of a worker that crashed holding it is taken over whole: the sweeper queues each member alone, one email goes out', async () => {
    const { db, smtp, pipeline } = await setUp('crash', { waitSeconds: 0 });
    const alerts = CHANNELS.map((c) => opsAlert('CN-GD', c));
    const ids = await insertNotifications(db.pool, alerts);
    // A worker claimed the whole group, then died before sending.
    const { groups } = await readOpsGroups(db.pool, ids);
    expect(groups).toHaveLength(1);
    const dead = await claimGroup(db.pool, ids, {
      token: '00000000-0000-4000-8000-000000000001',
      worker: 'dead-worker',
      claimSeconds: 1,
      maxAttempts: 6,
    });
    expect(dead.claimed.map((n) => n.id)).toEqual(ids);
    await db.pool.query(
      "UPDATE forewarn.notifications SET claimed_until = now() - interval '1 minute' WHERE id = ANY ($1::bigint[])",
      [ids],
    );
    // The sweeper queues each expired claim alone (a message that crashed its worker goes without
    // others); the first job brings the whole group.
    const swept = await sweepNotifications.handle({ tickAt: new Date().toISOString() }, pipeline.ctx);
    expect(swept.deliveries).toBe(ids.length);
    await waitFor('all six sent', async () => (await rows(db, ids)).every((r) => r.status === 'sent'), {
      timeoutMs: 15_000,
    });
    await sleep(1_000);
    expect(toOps(smtp).map((m) => m.subject)).toEqual(['[forewarn] 6 alerts for region CN-GD']);
    const after = await rows(db, ids);
    expect(after.map((r) => r.attempts)).toEqual(ids.map(() => 2));
    expect(after.every((r) => r.claimed_by === pipeline.ctx.workerId)).toBe(true);
    // The dead worker's outcomes, should it write them late, change nothing.
    expect(
      await markSent(
        db.pool,
        dead.claimed.map((n) => ({ id: n.id, token: n.token })),
      ),
    ).toEqual([]);
    expect(await markRetry(db.pool, { id: ids[0]!, token: dead.claimed[0]!.token }, 'late', 0)).toBeNull();
    const again = await sweepNotifications.handle(
      { tickAt: new Date(Date.now() + 30_000).toISOString() },
      pipeline.ctx,
    );
    expect(again.deliveries).toBe(0);
  }, 60_000);

  it('of a stalled worker, taken over and sent, is not sent again when the stalled worker fails', async () => {
    const { db, smtp, pipeline } = await setUp('stalled', { waitSeconds: 0, worker: false });
    const ids = await insertNotifications(
      db.pool,
      CHANNELS.slice(0, 3).map((c) => opsAlert('CN-GD', c)),
    );
    const { groups } = await readOpsGroups(db.pool, ids);
    const templates = await pipeline.ctx.templates();
    // Worker A stalls on its way to the relay (a paused process), holding the group's claim.
    let resume!: () => void;
    const resumed = new Promise<void>((resolve) => (resume = resolve));
    let stalled!: () => void;
    const isStalled = new Promise<void>((resolve) => (stalled = resolve));
    const real = pipeline.ctx.opsEmail();
    const stalling: EmailSender = {
      kind: real.kind,
      verify: () => real.verify(),
      close: async () => undefined,
      async send(message) {
        stalled();
        await resumed;
        return real.send(message);
      },
    };
    const a = deliverOpsGroups(
      deliveryContext(pipeline.ctx, () => stalling, templates),
      groups,
    );
    await isStalled;
    expect((await rows(db, ids)).map((r) => r.status)).toEqual(['sending', 'sending', 'sending']);
    // Its claim runs out meanwhile (it cannot renew it), and worker B takes the group over.
    await db.pool.query(
      "UPDATE forewarn.notifications SET claimed_until = now() - interval '1 second' WHERE id = ANY ($1::bigint[])",
      [ids],
    );
    const b = await deliverOpsGroups(
      { ...deliveryContext(pipeline.ctx, () => real, templates), workerId: 'worker-b' },
      groups,
    );
    expect(b).toMatchObject({ claimed: 3, sent: 3, emails: 1, lost: 0 });
    // A wakes up; the relay now says "try later": A's retry must not put the group back.
    smtp.queue(reject(451));
    resume();
    const outcome = await a;
    expect(outcome).toMatchObject({ claimed: 3, sent: 0, emails: 0, lost: 3, retries: [] });
    const after = await rows(db, ids);
    expect(after.map((r) => [r.status, r.claimed_by])).toEqual(ids.map(() => ['sent', 'worker-b']));
    const received: ReceivedMessage[] = toOps(smtp);
    expect(received.map((m) => m.subject)).toEqual(['[forewarn] 3 alerts for region CN-GD']);
    const swept = await sweepNotifications.handle({ tickAt: new Date().toISOString() }, pipeline.ctx);
    expect(swept.deliveries).toBe(0);
  }, 60_000);
});
