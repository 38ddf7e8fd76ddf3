// Queues of their own for fan-out, delivery and ops alerts, and a sweeper that queues a backlog
// once, against real PostgreSQL, Redis and an SMTP server (test/support/smtp.ts):
// - user email fills every delivery worker and waits at the relay; a new incident is still fanned
//   out and its ops alert delivered meanwhile (on the ops alerts' own queue and connection);
// - the sweeper, run twice over a backlog that nothing is working on, leaves one job per batch
//   (stable job ids), expired claims one job each, ops alerts on their own queue; once done,
//   the same ids can be queued again.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import { enqueueFanouts } from '../../jobs/fanout-incident-event.ts';
import * as sweepNotifications from '../../jobs/sweep-notifications.ts';
import { messageIdFor } from '../../lib/channels/email.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { insertNotifications, type NotificationDraft } from '../../lib/notifications/store.ts';
import { QUEUE_NAMES } from '../../lib/queue/queues.ts';
import { redisOptions } from '../../lib/queue/redis.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { createPlatform } from '../support/daemon.ts';
import {
  duplicates,
  OPS_EMAIL,
  pipelineProgress,
  readNotifications,
  startInProcess,
  waitForPipelineIdle,
  writeConfigWith,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { accept, startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const MESSAGE_ID_DOMAIN = 'notify.example.com';

let seq = 0;
function userEmail(): NotificationDraft {
  seq += 1;
  const userId = `u-queue-${String(seq).padStart(5, '0')}`;
  return {
    dedupeKey: `test:queues:payment-degraded:email:${userId}`,
    cause: 'test:queues',
    incidentId: null,
    category: 'service',
    kind: 'payment-degraded',
    channel: 'email',
    audience: 'user',
    userId,
    address: `${userId}@example.com`,
    locale: 'zh-CN',
    data: { ...templateKinds['payment-degraded'].sample },
  };
}

/** An opened incident on wechat_pay in CN-GD, with its outbox event; returns the event's id. */
async function openIncident(db: TestDatabase): Promise<string> {
  const change = {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel: 'wechat_pay', region: 'CN-GD' },
    subjectKey: 'wechat_pay:CN-GD',
    kind: 'failures',
    at: Date.now(),
    evidence: {
      windowSeconds: 30,
      attempts: 120,
      bad: 120,
      rate: 1,
      lowerBound: 0.9,
      upperBound: 1,
      baseline: 0.03,
      threshold: 0.11,
      confidence: 0.9999,
      medianLatencyMs: null,
      baselineLatencyMs: null,
      users: 40,
      topErrorCodes: [],
    },
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1];
  return (await recordCauseChange(db.pool, change)).eventId;
}

interface QueuedJob {
  queue: string;
  name: string;
  id: string;
  ids: string[];
}

/** Every job waiting under `prefix`, in any queue, with the notification ids it carries. */
async function waitingJobs(prefix: string): Promise<QueuedJob[]> {
  const jobs: QueuedJob[] = [];
  for (const name of QUEUE_NAMES) {
    const queue = new Queue(name, { connection: redisOptions(REDIS_URL), prefix });
    try {
      for (const job of (await queue.getJobs(['waiting', 'delayed', 'prioritized'], 0, -1)) as Job[]) {
        const data = job.data as { ids?: string[] };
        jobs.push({ queue: name, name: job.name, id: job.id!, ids: data.ids ?? [] });
      }
    } finally {
      await queue.close();
    }
  }
  return jobs;
}

let dir: string;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-queues-'));
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

async function services(): Promise<{ db: TestDatabase; prefix: string; smtp: TestSmtpServer }> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  await createPlatform(db.pool);
  const redis = await createTestRedisPrefix();
  cleanups.push(() => redis.cleanup());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.close());
  return { db, prefix: redis.prefix, smtp };
}

describe('a new incident while user email fills every delivery worker', () => {
  const BATCHES = 6;
  const PER_BATCH = 50;

  it('is fanned out and its ops alert delivered while the user email waits at the relay', async () => {
    const { db, prefix, smtp } = await services();
    // User mail is accepted only once the test says so: until then every delivery worker and
    // every pooled connection is busy with it.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let heldAtRelay = 0;
    smtp.behave(({ to }) => {
      if (to === OPS_EMAIL) return accept();
      heldAtRelay++;
      return accept({ until: released });
    });
    const configPath = await writeConfigWith(join(dir, 'backlog.yaml'), {
      detectors: { paymentHealth: { enabled: false } },
      notifications: {
        email: { messageIdDomain: MESSAGE_ID_DOMAIN, maxConnections: 2 },
        // The alert goes as soon as it is recorded: no wait for others of its group.
        ops: { emails: [OPS_EMAIL], locale: 'zh-CN', groupWaitSeconds: 0 },
      },
    });
    const pipeline = await startInProcess({ databaseUrl: db.url, prefix, configPath, smtpUrl: smtp.url });
    cleanups.push(() => pipeline.close());
    // Before the pipeline closes (cleanups run last first): it waits for the mail it holds.
    cleanups.push(async () => release());

    // More delivery jobs than any worker runs at once, queued the way fan-out batches are.
    for (let i = 0; i < BATCHES; i++) {
      const ids = await insertNotifications(
        db.pool,
        Array.from({ length: PER_BATCH }, () => userEmail()),
      );
      await enqueueDeliveries(pipeline.ctx, ids, `backlog-${i}`);
    }
    await waitFor('both pooled connections to be held at the relay', async () => heldAtRelay >= 2, {
      timeoutMs: 20_000,
      intervalMs: 20,
    });

    await enqueueFanouts(pipeline.ctx, [await openIncident(db)]);
    const alert = await waitFor(
      'the ops alert to reach the relay',
      async () => smtp.messages.find((m) => m.envelope.to.includes(OPS_EMAIL)),
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    expect(alert.subject).toBeTruthy();
    // Not one user email had gone through: the alert did not wait for them.
    expect(smtp.messages.filter((m) => !m.envelope.to.includes(OPS_EMAIL))).toEqual([]);
    expect((await pipelineProgress(db.pool)).undispatchedEvents).toBe(0);
    const { rows: waiting } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM forewarn.notifications
        WHERE audience = 'user' AND status IN ('pending', 'sending')`,
    );
    expect(waiting[0]!.n).toBe(BATCHES * PER_BATCH);

    release();
    await waitForPipelineIdle(db.pool, 1, 60_000);
    const rows = await readNotifications(db.pool);
    expect(rows.map((r) => r.status)).toEqual(rows.map(() => 'sent'));
    expect(rows).toHaveLength(BATCHES * PER_BATCH + 1);
    const received = smtp.messages.map((m) => m.messageId ?? '(none)');
    expect(duplicates(received, (id) => id)).toEqual([]);
    expect(received.sort()).toEqual(rows.map((r) => messageIdFor(r.dedupe_key, MESSAGE_ID_DOMAIN)).sort());
  }, 120_000);
});

describe('the sweeper over a backlog nothing is working on', () => {
  const USERS = 1_500;

  it('queues one job per batch however often it runs, and the same ids again once they are done', async () => {
    const { db, prefix, smtp } = await services();
    const configPath = await writeConfigWith(join(dir, 'sweep.yaml'), {
      detectors: { paymentHealth: { enabled: false } },
      notifications: {
        email: { messageIdDomain: MESSAGE_ID_DOMAIN },
        ops: { emails: [OPS_EMAIL], locale: 'zh-CN' },
      },
    });
    // No workers: what the sweeper queues stays queued.
    const sweeper = await startInProcess({ databaseUrl: db.url, prefix, configPath, worker: false });
    cleanups.push(() => sweeper.close());

    const users = await insertNotifications(
      db.pool,
      Array.from({ length: USERS }, () => userEmail()),
    );
    const ops = await insertNotifications(
      db.pool,
      ['ops-1@example.com', 'ops-2@example.com'].map((address) => ({
        ...userEmail(),
        dedupeKey: `test:queues:ops-feed-silent:email:${address}`,
        kind: 'ops-feed-silent',
        audience: 'ops' as const,
        userId: null,
        address,
        data: { ...templateKinds['ops-feed-silent'].sample },
      })),
    );
    // Two claims that ran out: their workers died.
    const expired = [users[10]!, users[1_200]!];
    await db.pool.query(
      `UPDATE forewarn.notifications SET status = 'sending', attempts = 1,
              claimed_until = now() - interval '1 minute'
        WHERE id = ANY ($1::bigint[])`,
      [expired],
    );
    // Queued long ago and lost: due, and older than the sweeper's staleSeconds.
    await db.pool.query("UPDATE forewarn.notifications SET next_attempt_at = now() - interval '10 minutes'");
    const eventId = await openIncident(db);
    await db.pool.query(
      "UPDATE forewarn.incident_events SET created_at = now() - interval '10 minutes' WHERE id = $1",
      [eventId],
    );

    const tick = Date.now();
    for (const tickAt of [tick, tick + 30_000]) {
      await sweepNotifications.handle({ tickAt: new Date(tickAt).toISOString() }, sweeper.ctx);
    }
    const jobs = await waitingJobs(prefix);
    const deliveries = jobs.filter((j) => j.name === 'deliver-notifications');
    const alone = (j: QueuedJob) => j.ids.length === 1 && expired.includes(j.ids[0]!);
    // One job per range of 1,000 ids, whatever the ticks were.
    const ranges = new Set(
      users.filter((id) => !expired.includes(id)).map((id) => Math.floor(Number(id) / 1_000)),
    );
    expect(deliveries.filter((j) => !alone(j))).toHaveLength(ranges.size);
    expect(deliveries.filter(alone)).toHaveLength(expired.length);
    expect(duplicates(jobs, (j) => j.id)).toEqual([]);
    expect(duplicates(jobs, (j) => `${j.name} ${j.ids.join(',')}`)).toEqual([]);
    expect(
      deliveries
        .flatMap((j) => j.ids)
        .sort()
        .join(','),
    ).toEqual([...users].sort().join(','));
    // Each expired claim alone.
    for (const id of expired)
      expect(deliveries.filter((j) => j.ids.includes(id)).map((j) => j.ids)).toEqual([[id]]);
    // Ops alerts on their own queue; the stalled fan-out once.
    expect(jobs.filter((j) => j.queue === 'ops-alerts').map((j) => [j.name, j.ids.sort()])).toEqual([
      ['deliver-ops-alerts', [...ops].sort()],
    ]);
    expect(jobs.filter((j) => j.name === 'fanout-incident-event').map((j) => j.queue)).toEqual(['fanout']);
    expect(deliveries.every((j) => j.queue === 'delivery')).toBe(true);
    expect(jobs).toHaveLength(deliveries.length + 2);

    // Workers take it all; done jobs free their ids, so lost work can be queued under them again.
    const workers = await startInProcess({ databaseUrl: db.url, prefix, configPath, smtpUrl: smtp.url });
    cleanups.push(() => workers.close());
    await waitForPipelineIdle(db.pool, 1, 60_000);
    await waitFor('the queues to be empty', async () => (await waitingJobs(prefix)).length === 0);
    const lost = users[0]!;
    await db.pool.query(
      `UPDATE forewarn.notifications SET status = 'pending', next_attempt_at = now() - interval '10 minutes'
        WHERE id = $1`,
      [lost],
    );
    const before = smtp.messages.length;
    await sweepNotifications.handle({ tickAt: new Date(tick + 60_000).toISOString() }, sweeper.ctx);
    await waitForPipelineIdle(db.pool, 1, 30_000);
    expect(smtp.messages.length).toBe(before + 1);
    const rows = await readNotifications(db.pool);
    expect(rows.find((r) => r.id === lost)?.status).toBe('sent');
  }, 120_000);
});
