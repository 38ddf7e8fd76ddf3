// Logs stay JSON when connections fail: a real `forewarn start` against a Redis of the test's own
// that is killed and started again, twice, and against PostgreSQL terminating its connections.
// Every line the daemon writes, on stdout and stderr, must be a JSON object; each connection's
// errors are one line per error code per interval (the second outage falls within it), with the
// repeats counted; and the daemon works again afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  CONNECTION_ERROR_INTERVAL_MS,
  connectionErrorLog,
  connectionTo,
  watchPool,
} from '../../lib/connection-errors.ts';
import { createPool } from '../../lib/db/pool.ts';
import { QUEUE_NAMES } from '../../lib/queue/queues.ts';
import { createPlatform, Daemons, sleep, writeConfig, type DaemonProcess } from '../support/daemon.ts';
import { RedisServer } from '../support/redis-server.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';

const START_TIMEOUT_MS = 30_000;
const DEADLINE_MS = 45_000;
/** Redis stays down this long once the daemon has logged its errors, so that clients retry. */
const DOWN_MS = 3_000;

const daemons = new Daemons();
const cleanups: Array<() => Promise<void>> = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-connections-'));
});

afterEach(async () => {
  await daemons.killAll();
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup().catch((error: unknown) => errors.push(error));
  }
  await rm(dir, { recursive: true, force: true });
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

async function startDaemon(
  redisUrl: string,
  options: { slowChannelsSeconds?: number } = {},
): Promise<{ daemon: DaemonProcess; db: TestDatabase }> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  await createPlatform(db.pool, options);
  // Keys on the shared Redis are removed afterwards; a Redis of the test's own dies with its keys.
  const prefix = await createTestRedisPrefix();
  cleanups.push(() => prefix.cleanup());
  const configPath = await writeConfig(join(dir, 'forewarn.yaml'), { schedule: '* * * * * *' });
  const daemon = daemons.start({
    DATABASE_URL: db.url,
    FOREWARN_QUEUE_PREFIX: prefix.prefix,
    FOREWARN_CONFIG: configPath,
    REDIS_URL: redisUrl,
  });
  await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
  await ticksAfter(db, await countRuns(db), 1);
  return { daemon, db };
}

async function countRuns(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM forewarn.detector_runs',
  );
  return rows[0]?.n ?? 0;
}

/** Waits until `more` detector ticks ran after `count`: the daemon schedules and works. */
async function ticksAfter(db: TestDatabase, count: number, more: number): Promise<void> {
  await waitFor(`${more} more detector run(s)`, async () => (await countRuns(db)) >= count + more, {
    timeoutMs: DEADLINE_MS,
  });
}

/** Every line of both streams parsed; a line that is not a JSON object fails the test, named. */
function jsonLines(daemon: DaemonProcess): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const [stream, text] of [
    ['stdout', daemon.stdout],
    ['stderr', daemon.stderr],
  ] as const) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new Error(`${stream} has a line that is not JSON: ${line}\n--- ${stream}:\n${text}`);
      }
      expect(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), line).toBe(true);
      lines.push(parsed as Record<string, unknown>);
    }
  }
  return lines;
}

/** Error lines of the connection log per (service, connection, code), each at least the interval apart. */
function expectRateLimited(lines: Array<Record<string, unknown>>, service: string): Map<string, number> {
  const errors = lines.filter(
    (l) => l.component === 'connection' && l.level === 'warn' && l.service === service,
  );
  const byKey = new Map<string, number[]>();
  for (const line of errors) {
    const key = `${String(line.connection)} ${String(line.code ?? (line.err as { message?: string }).message)}`;
    byKey.set(key, [...(byKey.get(key) ?? []), Date.parse(String(line.time))]);
  }
  for (const [key, times] of byKey) {
    for (let i = 1; i < times.length; i++) {
      expect(times[i]! - times[i - 1]!, `${key}: lines closer than the interval`).toBeGreaterThanOrEqual(
        CONNECTION_ERROR_INTERVAL_MS,
      );
    }
  }
  return new Map([...byKey].map(([key, times]) => [key, times.length]));
}

/** Each "answers again" line of `service` comes after an error line of it, one per error line at most. */
function expectAgainOnlyAfterErrors(lines: Array<Record<string, unknown>>, service: string): void {
  let unanswered = 0;
  for (const line of lines) {
    if (line.component !== 'connection' || line.service !== service) continue;
    if (line.level === 'warn') unanswered++;
    else {
      expect(unanswered, `"${String(line.msg)}" without an error line before it`).toBeGreaterThan(0);
      unanswered = 0;
    }
  }
}

it('a Redis killed and restarted twice: JSON lines only, one per connection and code, the daemon working after', async () => {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.stop());
  const { daemon, db } = await startDaemon(redis.url);

  // First outage: each of the daemon's Redis connections logs its error once.
  await redis.stop();
  // The shared client (queues, scheduler) and each queue's worker, which has clients of its own.
  const connections = ['shared', ...QUEUE_NAMES.map((queue) => `worker:${queue}`)];
  for (const connection of connections) {
    await waitFor(
      `an error line of ${connection}`,
      async () => daemon.logs().find((l) => l.component === 'connection' && l.connection === connection),
      { timeoutMs: DEADLINE_MS },
    );
  }
  await sleep(DOWN_MS);
  let runs = await countRuns(db);
  await redis.restart();
  const again = await daemon.waitForLog('answers again', DEADLINE_MS);
  await ticksAfter(db, runs, 2);

  // Second outage, within the interval: counted, not logged again.
  await redis.stop();
  await sleep(DOWN_MS);
  runs = await countRuns(db);
  await redis.restart();
  await ticksAfter(db, runs, 2);

  daemon.signal('SIGTERM');
  expect((await daemon.waitForExit(DEADLINE_MS)).code).toBe(0);

  const lines = jsonLines(daemon);
  const perKey = expectRateLimited(lines, 'redis');
  expect([...perKey.keys()]).toEqual(
    expect.arrayContaining(connections.map((connection) => `${connection} ECONNREFUSED`)),
  );
  // The clients retried several times a second while Redis was down: far more errors than lines.
  expect(again).toMatchObject({ service: 'redis', connection: 'shared', server: `127.0.0.1:${redis.port}` });
  expect(again.suppressed as number).toBeGreaterThan(0);
  // An "answers again" line follows an error line, never a counted error alone: the second outage
  // writes one only if it brought a code not logged yet (a connection reset instead of a refusal).
  expectAgainOnlyAfterErrors(lines, 'redis');
  // A worker's connection errors go to the connection log; what is left there is something else
  // (a job that the emptied Redis lost, for one).
  const workerErrors = lines.filter((l) => l.msg === 'worker error');
  expect(workerErrors.filter((l) => /ECONNREFUSED|ECONNRESET/.test(JSON.stringify(l.err)))).toEqual([]);
});

it('PostgreSQL terminating the daemon’s connections twice: one JSON line for it, the daemon working after', async () => {
  // Each tick's read of the channels takes a second: a tick holds its client mid-query, so that a
  // checked-out client loses its connection too (without a listener of its own, that ends the
  // process with an unhandled 'error').
  const { daemon, db } = await startDaemon(REDIS_URL, { slowChannelsSeconds: 1 });
  const terminate = async (after: Date) => {
    // The daemon's backends (application_name forewarn) connected after `after`, once one of them
    // is in the middle of a query.
    const backends = await waitFor(
      'a backend of the daemon in the middle of a query',
      async () => {
        const { rows } = await db.pool.query<{ pid: number; state: string }>(
          `SELECT pid, state FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'forewarn' AND backend_start > $1`,
          [after],
        );
        return rows.some((r) => r.state === 'active') ? rows : undefined;
      },
      { timeoutMs: DEADLINE_MS, intervalMs: 20 },
    );
    const at = new Date();
    await db.pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [
      backends.map((b) => b.pid),
    ]);
    return at;
  };

  const first = await terminate(new Date(0));
  await waitFor(
    'the PostgreSQL error line',
    async () => daemon.logs().find((l) => l.component === 'connection' && l.service === 'postgres'),
    { timeoutMs: DEADLINE_MS },
  );
  await daemon.waitForLog('answers again', DEADLINE_MS);
  await terminate(first);
  await ticksAfter(db, await countRuns(db), 2);

  daemon.signal('SIGTERM');
  expect((await daemon.waitForExit(DEADLINE_MS)).code).toBe(0);
  const lines = jsonLines(daemon);
  const perKey = expectRateLimited(lines, 'postgres');
  expect(perKey.get('forewarn 57P01')).toBe(1);
  expect(daemon.logged('answers again')[0]).toMatchObject({ service: 'postgres', connection: 'forewarn' });
  expectAgainOnlyAfterErrors(lines, 'postgres');
});

it('checked-out PostgreSQL clients losing their connection: one JSON line, no unhandled error', async () => {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const { logger, lines } = captureLogs();
  const pool = createPool(db.url, { applicationName: 'forewarn-watch-test' });
  cleanups.push(() => pool.end());
  watchPool(connectionErrorLog(logger), pool, connectionTo('postgres', 'forewarn', db.url));
  // Checked out and idle, as a transaction's client is between its statements.
  const clients = await Promise.all([pool.connect(), pool.connect()]);
  const ended = Promise.all(clients.map((client) => new Promise((resolve) => client.once('end', resolve))));
  await db.pool.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'forewarn-watch-test'`,
  );
  // Both connections are gone (their errors, if unhandled, would have failed the run by now).
  await ended;
  expect(lines().filter((l) => l.code === '57P01')).toHaveLength(1);
  for (const client of clients) {
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release(true);
  }
  await pool.query('SELECT 1');

  const errors = lines().filter((l) => l.component === 'connection' && l.level === 'warn');
  const keys = errors.map((l) => String(l.code ?? (l.err as { message: string }).message));
  // Both clients failed the same way: one line for the code, the other counted.
  expect(keys.filter((k) => k === '57P01')).toHaveLength(1);
  expect(new Set(keys).size).toBe(keys.length);
  const again = lines().filter((l) => l.component === 'connection' && l.level === 'info');
  expect(again).toHaveLength(1);
  expect(again[0]).toMatchObject({ service: 'postgres', connection: 'forewarn' });
  expect(again[0]!.suppressed as number).toBeGreaterThan(0);
});
