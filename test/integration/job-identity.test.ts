// Job ids that no database recreation can repeat, and deployments that never run each other's
// jobs, against real PostgreSQL and Redis:
// - a database dropped and recreated under a running Redis (same queue prefix): the new
//   database's first event has the old one's id, and is still fanned out and delivered at once
//   (no scheduler runs here, so no sweeper could rescue a job dropped as a duplicate);
// - two deployments (two databases, each migrated) on one Redis with the default prefixes: both
//   run every tick, for the same fire times;
// - a job queued by another deployment on a shared prefix is refused, left in the queue
//   untouched, and run by its owner once the owner's worker is there.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueFanouts, jobIdFor as fanoutJobId } from '../../jobs/fanout-incident-event.ts';
import { jobIdFor as sweepJobId } from '../../jobs/sweep-notifications.ts';
import { startDaemon, type Daemon } from '../../lib/daemon.ts';
import { migrate } from '../../lib/db/migrate.ts';
import { detectorIds } from '../../lib/detection/registry.ts';
import { readEnv } from '../../lib/env.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { defaultQueuePrefix } from '../../lib/queue/identity.ts';
import { referencePlatform, type SimUser } from '../../sim/platform.ts';
import type { SimAttempt } from '../../sim/traffic.ts';
import { createPlatform } from '../support/daemon.ts';
import { loadPlatform } from '../support/platform.ts';
import {
  attempt,
  DAY,
  LINK_SECRET,
  startInProcess,
  user,
  waitForPipelineIdle,
  writeConfigWith,
  type InProcessPipeline,
} from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  databaseUrl,
  PG_ADMIN_URL,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';
/** Targeted users; every third has an address, so both channels and delivery jobs are used. */
const TARGETED = 60;
const WITH_EMAIL = Math.ceil(TARGETED / 3);

let dir: string;
let smtp: TestSmtpServer;
const pipelines: InProcessPipeline[] = [];
const daemons: Daemon[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-job-identity-'));
  smtp = await startSmtpServer();
});

afterEach(async () => {
  // Whatever a failed test left running.
  await Promise.all(pipelines.splice(0).map((p) => p.close()));
  await Promise.all(daemons.splice(0).map((d) => d.stop('test over')));
});

afterAll(async () => {
  await smtp?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Deletes every key under `prefix` (BullMQ's keys are `${prefix}:${queue}:...`). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function withQueue<T>(prefix: string, name: string, use: (queue: Queue) => Promise<T>): Promise<T> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection, prefix });
  try {
    return await use(queue);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const silent = () => captureLogs('silent').logger;

describe('a database dropped and recreated under a running Redis', () => {
  const name = `fw_test_recreate_${Math.random().toString(16).slice(2, 10)}`;
  const url = databaseUrl(name);
  let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;

  beforeAll(async () => {
    redis = await createTestRedisPrefix();
  });
  afterAll(async () => {
    await redis?.cleanup();
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });

  /** Users who paid with the channel three days ago, so that an outage there targets them. */
  function audience(): { users: SimUser[]; attempts: SimAttempt[] } {
    const paidAt = Date.now() - 3 * DAY;
    const users = Array.from({ length: TARGETED }, (_, i) =>
      user(`r${String(i).padStart(4, '0')}`, { email: i % 3 === 0 ? `r${i}@example.com` : null }),
    );
    return { users, attempts: users.map((u, i) => attempt(1 + i, u.id, CHANNEL, 'succeeded', paidAt)) };
  }

  /**
   * One life of the database: recreated, migrated, its platform loaded; an incident opened and
   * its fan-out queued as a tick does (enqueueFanouts), on the same queue prefix every time.
   */
  async function life(configPath: string) {
    await admin(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.query(`CREATE DATABASE ${name}`);
    });
    const { deploymentId } = await migrate(url, silent());
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      await loadPlatform(pool, { platform: referencePlatform(), ...audience() });
      const pipeline = await startInProcess({
        databaseUrl: url,
        prefix: redis.prefix,
        configPath,
        smtpUrl: smtp.url,
      });
      pipelines.push(pipeline);
      const change = {
        type: 'opened',
        detector: 'payment-health',
        subject: { channel: CHANNEL, region: REGION },
        subjectKey: `${CHANNEL}:${REGION}`,
        kind: 'failures',
        at: Date.now(),
        // The fan-out reads subject, kind, time and backups; the numbers are the detector's
        // (and only ops mail, off here, shows them).
        evidence: { windowSeconds: 30, attempts: 120, bad: 120, rate: 1, baseline: 0.03 },
        backupChannels: ['alipay'],
      } as unknown as Parameters<typeof recordCauseChange>[1];
      const recorded = await recordCauseChange(pool, change);
      const { rows } = await pool.query<{ uid: string }>(
        'SELECT uid FROM forewarn.incident_events WHERE id = $1',
        [recorded.eventId],
      );
      const eventUid = rows[0]!.uid;
      const queuedAt = Date.now();
      await enqueueFanouts(pipeline.ctx, [recorded.eventId]);
      const idle = await waitForPipelineIdle(pool, 1, 20_000);
      const deliveredMs = Date.now() - queuedAt;
      const counts = await pool.query<{ channel: string; status: string; n: number }>(
        'SELECT channel, status, count(*)::int AS n FROM forewarn.notifications GROUP BY 1, 2 ORDER BY 1, 2',
      );
      await pipeline.close();
      pipelines.splice(pipelines.indexOf(pipeline), 1);
      return { deploymentId, eventId: recorded.eventId, eventUid, idle, deliveredMs, counts: counts.rows };
    } finally {
      await pool.end();
    }
  }

  it('fans out and delivers the new database events at once, though their ids are the old ones', async () => {
    const configPath = await writeConfigWith(join(dir, 'recreate.yaml'), {
      notifications: { ops: { emails: [] } },
    });
    const first = await life(configPath);
    const second = await life(configPath);
    const expected = [
      // The targeted users without an address: one withheld email row each, saying so.
      { channel: 'email', status: 'cancelled', n: TARGETED - WITH_EMAIL },
      { channel: 'email', status: 'sent', n: WITH_EMAIL },
      { channel: 'inapp', status: 'sent', n: TARGETED },
    ];
    expect(first.counts).toEqual(expected);
    // The sequence started over, so an id made from it would name the first life's job, which
    // Redis still keeps as completed.
    expect(second.eventId).toBe(first.eventId);
    expect(second.eventUid).not.toBe(first.eventUid);
    expect(second.deploymentId).not.toBe(first.deploymentId);
    expect(second.counts).toEqual(expected);
    // Promptly, by the jobs queued for it: nothing here runs a sweeper that could make up for a
    // dropped job (its interval would be 30 s at least).
    expect(second.deliveredMs).toBeLessThan(15_000);
    expect(smtp.messages.filter((m) => m.envelope.to.some((to) => to.startsWith('r')))).toHaveLength(
      2 * WITH_EMAIL,
    );

    const jobs = { completed: [] as Job[], failed: [] as Job[] };
    for (const name of ['fanout', 'delivery']) {
      await withQueue(redis.prefix, name, async (queue) => {
        jobs.completed.push(...((await queue.getJobs(['completed'], 0, -1)) as Job[]));
        jobs.failed.push(...((await queue.getJobs(['failed'], 0, -1)) as Job[]));
      });
    }
    expect(jobs.failed).toEqual([]);
    const ids = jobs.completed.map((j) => j.id);
    expect(ids).toEqual(expect.arrayContaining([fanoutJobId(first.eventUid), fanoutJobId(second.eventUid)]));
    // Delivery batches are named after the event's uid as well, one set per life.
    for (const life of [first, second]) {
      const deliveries = jobs.completed.filter((j) => j.id?.startsWith(`deliver@fanout@${life.eventUid}-`));
      expect(deliveries.length).toBeGreaterThan(0);
      for (const job of deliveries) expect(job.data).toMatchObject({ deploymentId: life.deploymentId });
    }
  }, 90_000);
});

describe('two deployments on one Redis, each with its own database', () => {
  const databases: TestDatabase[] = [];
  const prefixes: string[] = [];

  afterAll(async () => {
    await Promise.all(prefixes.map(deleteKeys));
    await Promise.all(databases.map((db) => db.drop()));
  });

  it('take the default prefixes of their own deployment ids and both run every tick', async () => {
    const configPath = await writeConfigWith(join(dir, 'ticks.yaml'), {
      // Two watchers on the same schedule, so each queue holds more than one watcher's ticks.
      detectors: {
        paymentHealth: { schedule: '*/5 * * * * *' },
        inventory: { schedule: '*/5 * * * * *' },
      },
    });
    const deployments: Array<{ db: TestDatabase; deploymentId: string }> = [];
    for (let i = 0; i < 2; i++) {
      const db = await createTestDatabase({ migrated: false });
      databases.push(db);
      const { deploymentId } = await migrate(db.url, silent());
      await createPlatform(db.pool);
      deployments.push({ db, deploymentId });
    }
    expect(deployments[0]!.deploymentId).not.toBe(deployments[1]!.deploymentId);
    for (const { db, deploymentId } of deployments) {
      // Nothing set: the prefix comes from the deployment.
      const env = readEnv({
        DATABASE_URL: db.url,
        REDIS_URL,
        FOREWARN_CONFIG: configPath,
        FOREWARN_LINK_SECRET: LINK_SECRET,
        FOREWARN_OUTBOX: join(dir, 'outbox'),
        LOG_LEVEL: 'silent',
      });
      expect(env.queuePrefix).toBeUndefined();
      const daemon = await startDaemon({
        env,
        logger: silent(),
        roles: ['scheduler', 'detection', 'notifications'],
      });
      daemons.push(daemon);
      prefixes.push(daemon.ctx.queues.prefix);
      expect(daemon.ctx.deploymentId).toBe(deploymentId);
      expect(daemon.ctx.queues.prefix).toBe(defaultQueuePrefix(deploymentId));
    }
    expect(prefixes[0]).not.toBe(prefixes[1]);
    expect(prefixes[0]).toMatch(/^forewarn:[0-9a-f]{12}$/);

    const ticksOf = async (db: TestDatabase) => {
      const { rows } = await db.pool.query<{ tick_at: Date; outcome: string }>(
        "SELECT tick_at, outcome FROM forewarn.detector_runs WHERE detector = 'payment-health' ORDER BY tick_at",
      );
      return rows;
    };
    // Three fire times seen by both.
    await waitFor(
      'both deployments to have run three of the same ticks',
      async () => {
        const [a, b] = await Promise.all(deployments.map(({ db }) => ticksOf(db)));
        const inB = new Set(b!.map((r) => r.tick_at.getTime()));
        return a!.filter((r) => inB.has(r.tick_at.getTime())).length >= 3;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await Promise.all(daemons.splice(0).map((d) => d.stop('test over')));

    const [a, b] = await Promise.all(deployments.map(({ db }) => ticksOf(db)));
    for (const runs of [a!, b!]) {
      expect(runs.length).toBeGreaterThanOrEqual(3);
      expect(runs.every((r) => r.outcome === 'evaluated')).toBe(true);
    }
    // Every fire time from when both ran to when both stopped was evaluated by both.
    const from = Math.max(a![0]!.tick_at.getTime(), b![0]!.tick_at.getTime());
    const to = Math.min(a!.at(-1)!.tick_at.getTime(), b!.at(-1)!.tick_at.getTime());
    const within = (runs: typeof a) =>
      runs!.map((r) => r.tick_at.getTime()).filter((t) => t >= from && t <= to);
    expect(within(a).length).toBeGreaterThanOrEqual(3);
    expect(within(a)).toEqual(within(b));

    // Each queue holds its own deployment's ticks only, named after it.
    for (const [i, { deploymentId }] of deployments.entries()) {
      const jobs = await withQueue(prefixes[i]!, 'detection', (queue) =>
        queue.getJobs(['completed', 'failed'], 0, -1),
      );
      const detectorNames = detectorIds.join('|');
      const paymentTicks = jobs.filter((job) => job.id?.startsWith('payment-health@'));
      expect(paymentTicks.length).toBeGreaterThanOrEqual(3);
      expect(jobs.some((job) => job.id?.startsWith('inventory@'))).toBe(true);
      for (const job of jobs) {
        expect(job.finishedOn && !job.failedReason).toBeTruthy();
        expect(job.data).toMatchObject({ deploymentId });
        expect(job.id).toMatch(new RegExp(`^(${detectorNames})@${deploymentId}@`));
      }
    }
  }, 60_000);
});

describe('a job of another deployment on a shared prefix (FOREWARN_QUEUE_PREFIX set alike)', () => {
  let ours: TestDatabase;
  let theirs: TestDatabase;
  let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;

  beforeAll(async () => {
    ours = await createTestDatabase();
    theirs = await createTestDatabase();
    // Clones of one template share its deployment id; a second deployment has its own.
    await theirs.pool.query('UPDATE forewarn.deployment SET id = gen_random_uuid()');
    redis = await createTestRedisPrefix();
  });
  afterAll(async () => {
    await redis?.cleanup();
    await ours?.drop();
    await theirs?.drop();
  });

  it('is refused with a warning naming both ids, left in the queue untouched, and run by its owner', async () => {
    const configPath = await writeConfigWith(join(dir, 'shared.yaml'), {});
    const worker = await startInProcess({ databaseUrl: ours.url, prefix: redis.prefix, configPath });
    pipelines.push(worker);
    const owner = await startInProcess({
      databaseUrl: theirs.url,
      prefix: redis.prefix,
      configPath,
      worker: false,
    });
    pipelines.push(owner);
    expect(owner.ctx.deploymentId).not.toBe(worker.ctx.deploymentId);

    const tickAt = Date.now();
    const jobId = sweepJobId(owner.ctx.deploymentId, tickAt);
    await owner.ctx.queues.enqueue(
      'sweep-notifications',
      { tickAt: new Date(tickAt).toISOString() },
      { jobId },
    );
    const warning = await waitFor('the worker to refuse the foreign job', async () =>
      worker.logs.lines().find((l) => l.code === 'FW_JOB_FOREIGN' && l.jobId === jobId),
    );
    expect(warning).toMatchObject({
      level: 'warn',
      jobDeployment: owner.ctx.deploymentId,
      deployment: worker.ctx.deploymentId,
    });
    expect(String(warning.msg)).toContain(owner.ctx.deploymentId);
    expect(String(warning.msg)).toContain(worker.ctx.deploymentId);

    // Handed back as it came: delayed, no attempt counted, its data as queued. The warning is
    // logged before the move back to delayed completes, so wait for the move.
    const left = await waitFor('the foreign job to be back in the delayed set', () =>
      withQueue(redis.prefix, 'fanout', async (queue) => {
        const job = await queue.getJob(jobId);
        const state = await job?.getState();
        return state === 'delayed' ? { state, attemptsMade: job?.attemptsMade, data: job?.data } : undefined;
      }),
    );
    expect(left).toEqual({
      state: 'delayed',
      attemptsMade: 0,
      data: { tickAt: new Date(tickAt).toISOString(), deploymentId: owner.ctx.deploymentId },
    });
    // The worker ran none of it: its own sweeper did not run for that tick either.
    expect(worker.logs.lines().filter((l) => l.msg === 'job failed')).toEqual([]);

    // The owner's worker takes it when it is due again, and runs it.
    await worker.close();
    pipelines.splice(pipelines.indexOf(worker), 1);
    await owner.close();
    pipelines.splice(pipelines.indexOf(owner), 1);
    const owning = await startInProcess({ databaseUrl: theirs.url, prefix: redis.prefix, configPath });
    pipelines.push(owning);
    const done = await waitFor(
      'the owner to run the job',
      () =>
        withQueue(redis.prefix, 'fanout', async (queue) => {
          const job = await queue.getJob(jobId);
          return (await job?.getState()) === 'completed' ? job : undefined;
        }),
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(done.returnvalue).toEqual({ events: 0, deliveries: 0 });
    expect(done.attemptsMade).toBe(1);
    expect(owning.logs.lines().filter((l) => l.code === 'FW_JOB_FOREIGN')).toEqual([]);
  }, 60_000);
});
