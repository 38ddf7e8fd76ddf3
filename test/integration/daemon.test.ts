// The daemon as operators run it: real `forewarn start` processes against real PostgreSQL and
// Redis. Ticks run once however many replicas fire them, roles split scheduling from work,
// SIGTERM lets running jobs finish within the grace period, a bad config reload is refused
// while the daemon keeps working, and start-up fails fast, with the fix, when a service is off.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUCKET_MS } from '../../detectors/payment-health/index.ts';
import {
  createPlatform,
  Daemons,
  sleep,
  workerPid,
  writeConfig,
  type DaemonEnv,
  type DaemonProcess,
} from '../support/daemon.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';

const EVERY_SECOND = '* * * * * *';
/** A tsx start-up on a busy 2-core machine, three at once. */
const START_TIMEOUT_MS = 30_000;

const daemons = new Daemons();
const cleanups: Array<() => Promise<void>> = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-daemon-'));
});

afterEach(async () => {
  // Processes first: they hold connections to the database about to be dropped.
  await daemons.killAll();
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => errors.push(error));
  }
  await rm(dir, { recursive: true, force: true });
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

interface Fixture {
  db: TestDatabase;
  prefix: string;
  configPath: string;
  env: DaemonEnv;
}

/** A database (migrated unless told otherwise), a platform schema, a queue prefix and a config file. */
async function fixture(
  options: {
    migrated?: boolean;
    platform?: boolean;
    slowChannelsSeconds?: number;
    graceSeconds?: number;
  } = {},
): Promise<Fixture> {
  const db = await createTestDatabase({ migrated: options.migrated ?? true });
  cleanups.push(() => db.drop());
  const redis = await createTestRedisPrefix();
  cleanups.push(() => redis.cleanup());
  if (options.platform ?? true)
    await createPlatform(db.pool, { slowChannelsSeconds: options.slowChannelsSeconds });
  const configPath = await writeConfig(join(dir, 'forewarn.yaml'), {
    schedule: EVERY_SECOND,
    graceSeconds: options.graceSeconds,
  });
  return {
    db,
    prefix: redis.prefix,
    configPath,
    env: {
      DATABASE_URL: db.url,
      FOREWARN_QUEUE_PREFIX: redis.prefix,
      FOREWARN_CONFIG: configPath,
      PLATFORM_SCHEMA: 'platform',
    },
  };
}

interface Run {
  tickAt: number;
  outcome: 'evaluated' | 'stale';
  startedAt: number;
  finishedAt: number;
  worker: string;
}

async function readRuns(db: TestDatabase): Promise<Run[]> {
  const { rows } = await db.pool.query<{
    tick_at: Date;
    outcome: 'evaluated' | 'stale';
    started_at: Date;
    finished_at: Date;
    worker: string;
  }>(
    `SELECT tick_at, outcome, started_at, finished_at, worker
       FROM forewarn.detector_runs WHERE detector = 'payment-health' ORDER BY id`,
  );
  return rows.map((r) => ({
    tickAt: r.tick_at.getTime(),
    outcome: r.outcome,
    startedAt: r.started_at.getTime(),
    finishedAt: r.finished_at.getTime(),
    worker: r.worker,
  }));
}

async function countRuns(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM forewarn.detector_runs',
  );
  return rows[0]?.n ?? 0;
}

/** The detection queue's tick jobs by state, read through BullMQ. */
async function readJobs(
  prefix: string,
): Promise<Record<'completed' | 'failed' | 'active' | 'waiting' | 'delayed', Job[]>> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue('detection', { connection, prefix });
  try {
    const [completed, failed, active, waiting, delayed] = await Promise.all(
      (['completed', 'failed', 'active', 'waiting', 'delayed'] as const).map(
        (state) => queue.getJobs(state, 0, -1) as Promise<Job[]>,
      ),
    );
    return { completed: completed!, failed: failed!, active: active!, waiting: waiting!, delayed: delayed! };
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** The tick a job evaluates, checked against its id (`payment-health@<deployment>@<ISO tick>`). */
function jobTick(job: Job): number {
  const { tickAt, deploymentId } = job.data as { tickAt: string; deploymentId: string };
  expect(job.id).toBe(`payment-health@${deploymentId}@${tickAt}`);
  return Date.parse(tickAt);
}

/** Backends of this database sleeping in the slow payment_channels view, i.e. jobs mid-run. */
async function sleepingJobs(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
    [db.name],
  );
  return rows[0]?.n ?? 0;
}

/** Waits until the middle of a second, so that a signal sent next cannot race an every-second tick. */
async function untilMidSecond(): Promise<void> {
  const ms = Date.now() % 1_000;
  await sleep((1_500 - ms) % 1_000);
}

function expectCleanExit(daemon: DaemonProcess, exit: { code: number | null; signal: string | null }): void {
  expect(exit, `pid ${daemon.pid} stderr:\n${daemon.stderr}`).toMatchObject({ code: 0, signal: null });
}

describe('forewarn start', () => {
  it('runs every tick exactly once across three replicas', async () => {
    const f = await fixture();
    const replicas = [1, 2, 3].map(() => daemons.start(f.env));
    await Promise.all(replicas.map((d) => d.waitForLog('forewarn started', START_TIMEOUT_MS)));
    await sleep(8_000);
    for (const d of replicas) d.signal('SIGTERM');
    const exits = await Promise.all(replicas.map((d) => d.waitForExit(15_000)));
    replicas.forEach((d, i) => expectCleanExit(d, exits[i]!));
    // Each replica scheduled the detector, so each one fired the ticks too.
    for (const d of replicas) {
      expect(d.logged('detector scheduled'), d.stderr).toHaveLength(1);
      expect(d.logged('job failed'), d.stderr).toEqual([]);
    }

    const runs = await readRuns(f.db);
    const jobs = await readJobs(f.prefix);
    expect(jobs.failed).toEqual([]);
    expect(jobs.active).toEqual([]);
    const ticks = jobs.completed.map(jobTick);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.length).toBeGreaterThanOrEqual(5);
    // One run per tick: three replicas firing the same tick still ran it once.
    expect(runs).toHaveLength(ticks.length);
    const pids = replicas.map((d) => d.pid);
    for (const run of runs) expect(pids).toContain(workerPid(run.worker));

    // The detector evaluates 5-second buckets: per bucket, the runs recorded are the ticks that fell
    // in it, and exactly one of them evaluated it (later ticks in a bucket find it done: stale).
    const bucket = (ms: number) => Math.floor(ms / BUCKET_MS) * BUCKET_MS;
    const buckets = new Set([...ticks.map(bucket), ...runs.map((r) => bucket(r.tickAt))]);
    for (const b of buckets) {
      const inBucket = runs.filter((r) => bucket(r.tickAt) === b);
      expect(inBucket, `bucket ${new Date(b).toISOString()}`).toHaveLength(
        ticks.filter((t) => bucket(t) === b).length,
      );
      expect(
        inBucket.filter((r) => r.outcome === 'evaluated'),
        `bucket ${new Date(b).toISOString()}`,
      ).toHaveLength(1);
    }
    const evaluatedJobs = jobs.completed.filter(
      (j) => (j.returnvalue as { outcome?: string } | null)?.outcome === 'evaluated',
    );
    expect(evaluatedJobs).toHaveLength(runs.filter((r) => r.outcome === 'evaluated').length);
  }, 90_000);

  it('splits roles: a scheduler-only process fires ticks, a detection process runs them', async () => {
    const f = await fixture();
    const scheduler = daemons.start(f.env, ['--role', 'scheduler']);
    const detection = daemons.start(f.env, ['--role', 'detection']);
    expect(await scheduler.waitForLog('forewarn started', START_TIMEOUT_MS)).toMatchObject({
      roles: ['scheduler'],
    });
    expect(await detection.waitForLog('forewarn started', START_TIMEOUT_MS)).toMatchObject({
      roles: ['detection'],
    });
    await waitFor('three detector runs', async () => (await countRuns(f.db)) >= 3, { timeoutMs: 15_000 });
    expect(scheduler.logged('detector scheduled')).toHaveLength(1);
    expect(detection.logged('detector scheduled')).toEqual([]);

    scheduler.signal('SIGTERM');
    detection.signal('SIGTERM');
    expectCleanExit(scheduler, await scheduler.waitForExit(15_000));
    expectCleanExit(detection, await detection.waitForExit(15_000));

    const workers = new Set((await readRuns(f.db)).map((r) => workerPid(r.worker)));
    expect([...workers]).toEqual([detection.pid]);
    expect(workers.has(scheduler.pid)).toBe(false);
  });

  describe('SIGTERM', () => {
    it('lets the running job finish, starts nothing new, and exits 0', async () => {
      const graceSeconds = 10;
      const f = await fixture({ slowChannelsSeconds: 3, graceSeconds });
      const d = daemons.start(f.env);
      await d.waitForLog('forewarn started', START_TIMEOUT_MS);
      await waitFor('a detector job to be running', async () => (await sleepingJobs(f.db)) > 0, {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      await untilMidSecond();
      const activeAtStop = (await readJobs(f.prefix)).active.map((j) => j.id);
      expect(activeAtStop.length).toBeGreaterThan(0);

      const sentAt = d.signal('SIGTERM');
      const exit = await d.waitForExit((graceSeconds + 10) * 1_000);
      expectCleanExit(d, exit);
      expect(d.logged('grace period over')).toEqual([]);
      expect(d.logged('forewarn stopped')).toMatchObject([{ forced: false }]);
      expect(exit.at - sentAt).toBeLessThan((graceSeconds + 3) * 1_000);

      const runs = await readRuns(f.db);
      // The job that was running at SIGTERM finished, and wrote its run, after it.
      expect(runs.filter((r) => r.startedAt < sentAt && r.finishedAt > sentAt)).not.toEqual([]);
      // No job started after SIGTERM, and no tick after it was scheduled.
      expect(runs.filter((r) => r.startedAt >= sentAt)).toEqual([]);
      const jobs = await readJobs(f.prefix);
      const all = [...jobs.completed, ...jobs.failed, ...jobs.active, ...jobs.waiting, ...jobs.delayed];
      expect(all.filter((j) => jobTick(j) > sentAt).map((j) => j.id)).toEqual([]);
      // Nothing was abandoned: every job running at SIGTERM completed.
      expect(jobs.active).toEqual([]);
      expect(jobs.completed.map((j) => j.id)).toEqual(expect.arrayContaining(activeAtStop));
    });

    it('abandons a job that overruns the grace period and still exits 0 soon after it', async () => {
      const f = await fixture({ slowChannelsSeconds: 10, graceSeconds: 1 });
      const d = daemons.start(f.env);
      await d.waitForLog('forewarn started', START_TIMEOUT_MS);
      await waitFor('a detector job to be running', async () => (await sleepingJobs(f.db)) > 0, {
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      const sentAt = d.signal('SIGTERM');
      const exit = await d.waitForExit(20_000);
      expectCleanExit(d, exit);
      expect(d.logged('grace period over'), d.stderr).toHaveLength(1);
      // The grace period (1 s) and a little for closing, not the 10 s the job would need.
      expect(exit.at - sentAt, d.stderr).toBeLessThan(4_000);
    });
  });

  it('refuses a bad config reload and keeps working, then takes a good one that disables the detector', async () => {
    const f = await fixture();
    const d = daemons.start(f.env);
    await d.waitForLog('forewarn started', START_TIMEOUT_MS);
    await waitFor('a first detector run', async () => (await countRuns(f.db)) >= 1, { timeoutMs: 10_000 });

    // Replaced on disk: the file watcher notices.
    await writeConfig(f.configPath, {
      schedule: EVERY_SECOND,
      replace: [[/^(\s*confirmSeconds:).*$/m, '$1 -1']],
    });
    const refused = await d.waitForLog('config reload refused', 5_000);
    expect(refused).toMatchObject({ level: 'error', component: 'config', file: f.configPath });
    expect(JSON.stringify(refused.problems)).toContain('detectors.paymentHealth.confirmSeconds');
    const afterRefusal = await countRuns(f.db);
    await waitFor(
      'two more detector runs under the last good config',
      async () => (await countRuns(f.db)) >= afterRefusal + 2,
      {
        timeoutMs: 10_000,
      },
    );
    expect(d.running).toBe(true);
    expect(d.logged('config reloaded')).toEqual([]);

    // A valid file, announced with SIGHUP as well: the detector's schedule stops.
    await writeConfig(f.configPath, { schedule: EVERY_SECOND, enabled: false });
    d.signal('SIGHUP');
    await d.waitForLog('config reloaded', 5_000);
    // Ticks queued before the reload may still run; after them, nothing more is scheduled.
    await waitFor('the queued ticks to be done', async () => {
      const jobs = await readJobs(f.prefix);
      return jobs.waiting.length + jobs.active.length + jobs.delayed.length === 0;
    });
    const settledRuns = await countRuns(f.db);
    const settledJobs = (await readJobs(f.prefix)).completed.length;
    await sleep(2_500);
    expect(await countRuns(f.db)).toBe(settledRuns);
    expect((await readJobs(f.prefix)).completed).toHaveLength(settledJobs);
    expect(d.running).toBe(true);

    d.signal('SIGTERM');
    expectCleanExit(d, await d.waitForExit(15_000));
  });

  describe('start-up checks', () => {
    it('exits 1 with FW_SCHEMA_OUTDATED on an unmigrated database', async () => {
      const f = await fixture({ migrated: false, platform: false });
      const d = daemons.start(f.env);
      const exit = await d.waitForExit(15_000);
      expect(exit, d.stderr).toMatchObject({ code: 1, signal: null });
      expect(d.stderr).toContain('FW_SCHEMA_OUTDATED');
      expect(d.stderr).toContain('forewarn migrate');
      expect(d.logged('forewarn started')).toEqual([]);
    });

    it('exits non-zero with FW_SERVICE_UNREACHABLE when Redis does not answer', async () => {
      const f = await fixture({ platform: false });
      const d = daemons.start({ ...f.env, REDIS_URL: 'redis://127.0.0.1:1' });
      // Start-up plus the bounded first contact; waitForExit kills and fails the test on a hang.
      const exit = await d.waitForExit(20_000);
      expect(exit.signal, d.stderr).toBeNull();
      expect(exit.code, d.stderr).not.toBe(0);
      expect(d.stderr).toContain('FW_SERVICE_UNREACHABLE');
      expect(d.stderr).toContain('REDIS_URL');
      expect(d.logged('forewarn started')).toEqual([]);
    });
  });
});
