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
  workerPid,
  writeConfig,
  type DaemonEnv,
  type DaemonProcess,
  type LogLine,
} from '../support/daemon.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';

const EVERY_SECOND = '* * * * * *';
// The deadlines below only turn a hang into a failure; nothing here asserts how fast this machine
// is. Each test checks outcomes and their order: log lines, job states and detector runs.
/** A tsx start-up on a busy 2-core machine, three at once. */
const START_TIMEOUT_MS = 30_000;
/** Ticks, runs, reloads and exits: what should take seconds, allowed many times that. */
const DEADLINE_MS = 45_000;
/** Ticks the three-replica test waits to see run while all three replicas fire them. */
const TICKS_OBSERVED = 6;
/** The shipped sweeper schedule, replaced where a test needs it to tick every second. */
const SWEEPER_SCHEDULE = /^(\s*schedule:) "\*\/30 \* \* \* \* \*"$/m;

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
    replace?: Array<[RegExp, string]>;
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
    replace: options.replace,
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

type JobsByState = Record<'completed' | 'failed' | 'active' | 'waiting' | 'delayed', Job[]>;

/** A queue's jobs by state, read through BullMQ: the detection queue's tick jobs unless told. */
async function readJobs(prefix: string, queueName = 'detection'): Promise<JobsByState> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(queueName, { connection, prefix });
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

function allJobs(jobs: JobsByState): Job[] {
  return [...jobs.completed, ...jobs.failed, ...jobs.active, ...jobs.waiting, ...jobs.delayed];
}

/** The fire time a tick job of any queue carries. */
function tickOf(job: Job): number {
  return Date.parse((job.data as { tickAt: string }).tickAt);
}

/** When the daemon wrote the line (pino's ISO `time`), in ms. */
function loggedAt(line: LogLine | undefined): number {
  const at = Date.parse(String(line?.time));
  if (!Number.isFinite(at)) throw new Error(`a log line without a time: ${JSON.stringify(line)}`);
  return at;
}

/** When the daemon logged the one line containing `text`. */
function loggedOnce(daemon: DaemonProcess, text: string): number {
  const lines = daemon.logged(text);
  expect(lines, `pid ${daemon.pid} logging "${text}"; stderr:\n${daemon.stderr}`).toHaveLength(1);
  return loggedAt(lines[0]);
}

/** Every whole second from `from` to `to`, both included. */
function secondsBetween(from: number, to: number): number[] {
  const seconds: number[] = [];
  for (let s = Math.ceil(from / 1_000) * 1_000; s <= to; s += 1_000) seconds.push(s);
  return seconds;
}

/** The fire times that occur more than once, with how often. */
function repeated(ticks: readonly number[]): Array<[string, number]> {
  const counts = new Map<number, number>();
  for (const t of ticks) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([t, n]) => [iso(t), n]);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Backends of this database sleeping in the slow payment_channels view, i.e. jobs mid-run. */
async function sleepingJobs(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
    [db.name],
  );
  return rows[0]?.n ?? 0;
}

function expectCleanExit(daemon: DaemonProcess, exit: { code: number | null; signal: string | null }): void {
  expect(exit, `pid ${daemon.pid} stderr:\n${daemon.stderr}`).toMatchObject({ code: 0, signal: null });
}

describe('forewarn start', () => {
  it('runs every tick exactly once across three replicas', async () => {
    const f = await fixture();
    const replicas = [1, 2, 3].map(() => daemons.start(f.env));
    await Promise.all(replicas.map((d) => d.waitForLog('forewarn started', START_TIMEOUT_MS)));
    // Each replica scheduled the detector, so each one fires the ticks: from the last of them to
    // schedule until the first of them to stop, every fire time is fired three times.
    const allFiringFrom = Math.max(...replicas.map((d) => loggedOnce(d, 'detector scheduled')));
    await waitFor(
      `runs of ${TICKS_OBSERVED} ticks fired by all three replicas`,
      async () => (await readRuns(f.db)).filter((r) => r.tickAt > allFiringFrom).length >= TICKS_OBSERVED,
      { timeoutMs: DEADLINE_MS, intervalMs: 100 },
    );
    for (const d of replicas) d.signal('SIGTERM');
    const exits = await Promise.all(replicas.map((d) => d.waitForExit(DEADLINE_MS)));
    replicas.forEach((d, i) => expectCleanExit(d, exits[i]!));
    for (const d of replicas) expect(d.logged('job failed'), d.stderr).toEqual([]);
    const allFiringUntil = Math.min(...replicas.map((d) => loggedOnce(d, 'stopping')));

    const runs = await readRuns(f.db);
    const jobs = await readJobs(f.prefix);
    const runTicks = runs.map((r) => r.tickAt);

    // Once: no fire time has a second run, whatever its outcome (a duplicate finds its bucket
    // already evaluated and records itself stale, so it shows here too).
    expect(repeated(runTicks), 'fire times run more than once').toEqual([]);
    // Every tick: no second is missing from the first run's fire time to the last's...
    const firstRun = Math.min(...runTicks);
    const lastRun = Math.max(...runTicks);
    const ran = new Set(runTicks);
    expect(
      secondsBetween(firstRun, lastRun)
        .filter((s) => !ran.has(s))
        .map(iso),
      'fire times without a run',
    ).toEqual([]);
    expect(runs.filter((r) => r.tickAt > allFiringFrom).length).toBeGreaterThanOrEqual(TICKS_OBSERVED);
    // ...nor from the jobs of the seconds all three replicas were firing (a tick queued just
    // before the stop may be left waiting for the next start; it is not lost).
    const queued = allJobs(jobs).map(jobTick);
    expect(repeated(queued), 'fire times queued more than once').toEqual([]);
    const queuedSet = new Set(queued);
    expect(
      secondsBetween(allFiringFrom + 1_000, allFiringUntil - 1_000)
        .filter((s) => !queuedSet.has(s))
        .map(iso),
      'fire times no replica queued',
    ).toEqual([]);

    // The runs are the completed jobs, one each, and the replicas ran them.
    expect(jobs.failed).toEqual([]);
    expect(jobs.active).toEqual([]);
    expect(jobs.completed.map(jobTick).sort((a, b) => a - b)).toEqual([...ran].sort((a, b) => a - b));
    const pids = replicas.map((d) => d.pid);
    for (const run of runs) expect(pids).toContain(workerPid(run.worker));

    // The detector evaluates 5-second buckets: of the runs in a bucket exactly one evaluated it,
    // the other ticks in it found it done (stale).
    const bucket = (ms: number) => Math.floor(ms / BUCKET_MS) * BUCKET_MS;
    for (const b of new Set(runTicks.map(bucket))) {
      expect(
        runs.filter((r) => bucket(r.tickAt) === b && r.outcome === 'evaluated'),
        `bucket ${iso(b)}`,
      ).toHaveLength(1);
    }
    const evaluatedJobs = jobs.completed.filter(
      (j) => (j.returnvalue as { outcome?: string } | null)?.outcome === 'evaluated',
    );
    expect(evaluatedJobs).toHaveLength(runs.filter((r) => r.outcome === 'evaluated').length);
  }, 150_000);

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
    await waitFor('three detector runs', async () => (await countRuns(f.db)) >= 3, {
      timeoutMs: DEADLINE_MS,
    });
    expect(scheduler.logged('detector scheduled')).toHaveLength(1);
    expect(detection.logged('detector scheduled')).toEqual([]);

    scheduler.signal('SIGTERM');
    detection.signal('SIGTERM');
    expectCleanExit(scheduler, await scheduler.waitForExit(DEADLINE_MS));
    expectCleanExit(detection, await detection.waitForExit(DEADLINE_MS));

    const workers = new Set((await readRuns(f.db)).map((r) => workerPid(r.worker)));
    expect([...workers]).toEqual([detection.pid]);
    expect(workers.has(scheduler.pid)).toBe(false);
  }, 120_000);

  describe('SIGTERM', () => {
    it('lets the running job finish, starts nothing new, and exits 0', async () => {
      const graceSeconds = 10;
      const f = await fixture({ slowChannelsSeconds: 3, graceSeconds });
      const d = daemons.start(f.env);
      await d.waitForLog('forewarn started', START_TIMEOUT_MS);
      await waitFor('a detector job to be running', async () => (await sleepingJobs(f.db)) > 0, {
        timeoutMs: DEADLINE_MS,
        intervalMs: 50,
      });
      const activeAtStop = (await readJobs(f.prefix)).active.map((j) => j.id);
      expect(activeAtStop.length).toBeGreaterThan(0);

      d.signal('SIGTERM');
      const exit = await d.waitForExit((graceSeconds + 30) * 1_000);
      expectCleanExit(d, exit);
      // Within the grace period by the daemon's own clock: it never had to give up on a job.
      expect(d.logged('grace period over')).toEqual([]);
      expect(d.logged('forewarn stopped')).toMatchObject([{ forced: false }]);
      // From this line on the daemon takes no new work; every order below is relative to it.
      const stoppedTakingWork = loggedOnce(d, 'stopping');

      const runs = await readRuns(f.db);
      // A job that was running when the daemon stopped taking work finished, and wrote its run, after.
      expect(
        runs.filter((r) => r.startedAt < stoppedTakingWork && r.finishedAt > stoppedTakingWork),
      ).not.toEqual([]);
      // No job started after it, and no tick after it was scheduled.
      expect(runs.filter((r) => r.startedAt >= stoppedTakingWork)).toEqual([]);
      const jobs = await readJobs(f.prefix);
      expect(
        allJobs(jobs)
          .filter((j) => jobTick(j) > stoppedTakingWork)
          .map((j) => j.id),
      ).toEqual([]);
      // Nothing was abandoned: every job running at SIGTERM completed.
      expect(jobs.active).toEqual([]);
      expect(jobs.completed.map((j) => j.id)).toEqual(expect.arrayContaining(activeAtStop));
    }, 120_000);

    it('abandons a job that overruns the grace period and exits 0 without waiting for it', async () => {
      // Jobs that would run for a minute, against a grace period of one second.
      const f = await fixture({ slowChannelsSeconds: 60, graceSeconds: 1 });
      const d = daemons.start(f.env);
      await d.waitForLog('forewarn started', START_TIMEOUT_MS);
      await waitFor('a detector job to be running', async () => (await sleepingJobs(f.db)) > 0, {
        timeoutMs: DEADLINE_MS,
        intervalMs: 50,
      });
      const activeAtStop = (await readJobs(f.prefix)).active.map((j) => j.id);
      expect(activeAtStop.length).toBeGreaterThan(0);

      d.signal('SIGTERM');
      const exit = await d.waitForExit(DEADLINE_MS);
      expectCleanExit(d, exit);
      // Stopped, gave up on the running job when the grace period ran out, then closed.
      const stopping = loggedOnce(d, 'stopping');
      const graceOver = loggedOnce(d, 'grace period over');
      const stopped = loggedOnce(d, 'forewarn stopped');
      expect(stopping).toBeLessThanOrEqual(graceOver);
      expect(graceOver).toBeLessThanOrEqual(stopped);
      expect(d.logged('forewarn stopped')).toMatchObject([{ forced: true }]);
      // It exited before the job was done: the job never wrote its run and is still active in
      // Redis, for BullMQ to hand to another worker once its lock runs out.
      expect(await readRuns(f.db)).toEqual([]);
      const jobs = await readJobs(f.prefix);
      expect(jobs.active.map((j) => j.id)).toEqual(expect.arrayContaining(activeAtStop));
      expect(jobs.completed).toEqual([]);
    }, 120_000);
  });

  it('refuses a bad config reload and keeps working, then takes a good one that disables the detector', async () => {
    // The sweeper ticks every second too: after the detector is switched off, its ticks show that
    // the scheduler went on firing, and the detector's ticks did not.
    const sweeperEverySecond: [RegExp, string] = [SWEEPER_SCHEDULE, `$1 "${EVERY_SECOND}"`];
    const f = await fixture({ replace: [sweeperEverySecond] });
    const d = daemons.start(f.env);
    await d.waitForLog('forewarn started', START_TIMEOUT_MS);
    await waitFor('a first detector run', async () => (await countRuns(f.db)) >= 1, {
      timeoutMs: DEADLINE_MS,
    });

    // Replaced on disk: the file watcher notices.
    await writeConfig(f.configPath, {
      schedule: EVERY_SECOND,
      replace: [sweeperEverySecond, [/^(\s*confirmSeconds:).*$/m, '$1 -1']],
    });
    const refused = await d.waitForLog('config reload refused', DEADLINE_MS);
    expect(refused).toMatchObject({ level: 'error', component: 'config', file: f.configPath });
    expect(JSON.stringify(refused.problems)).toContain('detectors.paymentHealth.confirmSeconds');
    const refusedAt = loggedAt(refused);
    await waitFor(
      'two detector ticks after the refusal to run under the last good config',
      async () => (await readRuns(f.db)).filter((r) => r.tickAt > refusedAt).length >= 2,
      { timeoutMs: DEADLINE_MS },
    );
    expect(d.running).toBe(true);
    expect(d.logged('config reloaded')).toEqual([]);

    // A valid file, announced with SIGHUP as well: the detector's schedule stops.
    await writeConfig(f.configPath, {
      schedule: EVERY_SECOND,
      enabled: false,
      replace: [sweeperEverySecond],
    });
    d.signal('SIGHUP');
    const reloadedAt = loggedAt(await d.waitForLog('config reloaded', DEADLINE_MS));
    // The scheduler fires on: three sweeper ticks after the reload...
    await waitFor(
      'three sweeper ticks after the reload',
      async () =>
        allJobs(await readJobs(f.prefix, 'fanout')).filter((j) => tickOf(j) > reloadedAt).length >= 3,
      { timeoutMs: DEADLINE_MS },
    );
    // ...and ticks queued before the reload may still run; after them, nothing is left.
    await waitFor('the queued detector ticks to be done', async () => {
      const jobs = await readJobs(f.prefix);
      return jobs.waiting.length + jobs.active.length + jobs.delayed.length === 0;
    });
    // No detector tick was fired after the reload, or run: the same seconds saw sweeper ticks.
    const jobs = await readJobs(f.prefix);
    expect(jobs.failed).toEqual([]);
    expect(
      allJobs(jobs)
        .filter((j) => jobTick(j) > reloadedAt)
        .map((j) => j.id),
    ).toEqual([]);
    const runs = await readRuns(f.db);
    expect(runs.filter((r) => r.tickAt > reloadedAt).map((r) => iso(r.tickAt))).toEqual([]);
    expect(runs).toHaveLength(jobs.completed.length);
    expect(d.logged('detector scheduled')).toHaveLength(1);
    expect(d.running).toBe(true);

    d.signal('SIGTERM');
    expectCleanExit(d, await d.waitForExit(DEADLINE_MS));
  }, 150_000);

  describe('start-up checks', () => {
    it('exits 1 with FW_SCHEMA_OUTDATED on an unmigrated database', async () => {
      const f = await fixture({ migrated: false, platform: false });
      const d = daemons.start(f.env);
      const exit = await d.waitForExit(DEADLINE_MS);
      expect(exit, d.stderr).toMatchObject({ code: 1, signal: null });
      expect(d.stderr).toContain('FW_SCHEMA_OUTDATED');
      expect(d.stderr).toContain('forewarn migrate');
      expect(d.logged('forewarn started')).toEqual([]);
    });

    it('exits non-zero with FW_SERVICE_UNREACHABLE when Redis does not answer', async () => {
      const f = await fixture({ platform: false });
      const d = daemons.start({ ...f.env, REDIS_URL: 'redis://127.0.0.1:1' });
      // Start-up plus the bounded first contact; waitForExit kills and fails the test on a hang.
      const exit = await d.waitForExit(DEADLINE_MS);
      expect(exit.signal, d.stderr).toBeNull();
      expect(exit.code, d.stderr).not.toBe(0);
      expect(d.stderr).toContain('FW_SERVICE_UNREACHABLE');
      expect(d.stderr).toContain('REDIS_URL');
      expect(d.logged('forewarn started')).toEqual([]);
    });
  });
});
