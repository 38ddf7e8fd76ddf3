// The watchdog (lib/watchdog/) against real PostgreSQL, Redis and an SMTP server, on an injected
// clock for the ticks (the platform's clock is the database's own: data rows are written relative
// to it):
// - a detector's ticks stop: one ops email naming it, its age and bound; ticks resume: one
//   recovery email;
// - the platform's newest payment attempt lags beyond the bound: one alert; caught up: one notice;
// - two watchdogs (two contexts, as two replicas) checking at the same moment: one email each time;
// - the platform database unreachable: logged, the ticks are still watched; a check whose own
//   database is unreachable is logged and the next one runs;
// - `forewarn start --role notifications` (no scheduler anywhere) notices the stopped ticks by itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../../lib/context.ts';
import { runWatchdogCheck, startWatchdog } from '../../lib/watchdog/run.ts';
import { createPlatform, Daemons } from '../support/daemon.ts';
import {
  OPS_EMAIL,
  startInProcess,
  writeConfigWith,
  type InProcessPipeline,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../support/smtp.ts';

const S = 1_000;
/** Nothing listens here: a database that cannot be reached. */
const CLOSED_URL = 'postgres://postgres@127.0.0.1:1/nowhere';

let dir: string;
let db: TestDatabase;
let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let smtp: TestSmtpServer;
let configPath: string;
let a: InProcessPipeline;
let b: InProcessPipeline;
let attemptId = 0;
const daemons = new Daemons();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-watchdog-'));
  db = await createTestDatabase();
  await createPlatform(db.pool);
  redis = await createTestRedisPrefix();
  smtp = await startSmtpServer();
  // Only payment-health is watched (every 15 s: the 180 s floor); the other detectors are off.
  configPath = await writeConfigWith(join(dir, 'forewarn.yaml'), {
    detectors: {
      errorSpikes: { enabled: false },
      inventory: { enabled: false },
      inactivity: { enabled: false },
    },
    notifications: { ops: { emails: [OPS_EMAIL], locale: 'en', groupWaitSeconds: 0 } },
    watchdog: { checkEverySeconds: 1, maxDataLagSeconds: 900 },
  });
  a = await startInProcess({ databaseUrl: db.url, prefix: redis.prefix, configPath, smtpUrl: smtp.url });
  // A second replica: its own context and connections, no workers of its own.
  b = await startInProcess({
    databaseUrl: db.url,
    prefix: redis.prefix,
    configPath,
    smtpUrl: smtp.url,
    worker: false,
  });
});

afterAll(async () => {
  await daemons.killAll();
  await b?.close();
  await a?.close();
  await smtp?.close();
  await redis?.cleanup();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

/** A finished tick of payment-health, as the tick runner records it. */
async function tickFinished(at: number): Promise<void> {
  await db.pool.query(
    `INSERT INTO forewarn.detector_runs (detector, tick_at, outcome, started_at, finished_at, worker)
     VALUES ('payment-health', $1, 'evaluated', $1, $1, 'test')`,
    [new Date(at)],
  );
}

/** A payment attempt created `secondsAgo` before the platform database's clock. */
async function attemptCreated(secondsAgo: number): Promise<void> {
  attemptId += 1;
  await db.pool.query(
    `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at, finished_at)
     VALUES ($1, 'u1', 'alipay', 'CN-GD', 'succeeded', 900, now() - make_interval(secs => $2), now() - make_interval(secs => $2))`,
    [attemptId, secondsAgo],
  );
}

const watchdogMail = () => smtp.messages.filter((m) => /watchdog/i.test(m.subject ?? ''));

/** Waits for `count` watchdog emails in all, then a little longer to see that no more come. */
async function mailCount(count: number): Promise<ReceivedMessage[]> {
  await waitFor(`${count} watchdog email(s)`, async () => watchdogMail().length >= count, {
    timeoutMs: 10_000,
  });
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(watchdogMail().map((m) => m.subject)).toHaveLength(count);
  return watchdogMail();
}

async function states(): Promise<Record<string, string>> {
  const { rows } = await db.pool.query<{ subject: string; status: string }>(
    'SELECT subject, status FROM forewarn.watchdog_state ORDER BY subject',
  );
  return Object.fromEntries(rows.map((r) => [r.subject, r.status]));
}

async function rowsOfKind(): Promise<Array<{ dedupe_key: string; status: string }>> {
  const { rows } = await db.pool.query<{ dedupe_key: string; status: string }>(
    `SELECT dedupe_key, status FROM forewarn.notifications WHERE kind = 'ops-watchdog' ORDER BY id`,
  );
  return rows;
}

describe('the watchdog', () => {
  // The ticks' clock: fixed, moved by the test.
  let T: number;

  it('is quiet while the ticks and the data are fresh', async () => {
    const { rows } = await db.pool.query<{ now: Date }>('SELECT now()');
    T = Math.floor(rows[0]!.now.getTime() / 1000) * 1000;
    await tickFinished(T - 10 * S);
    await attemptCreated(5);
    const check = await runWatchdogCheck(a.ctx, { now: () => T });
    expect(check.verdicts.map((v) => [v.subject, v.status, v.transition])).toEqual([
      ['ticks:payment-health', 'ok', null],
      ['data:payment_attempts', 'ok', null],
    ]);
    expect(check.notificationIds).toEqual([]);
    expect(await states()).toEqual({ 'data:payment_attempts': 'ok', 'ticks:payment-health': 'ok' });
  });

  it('sends one email when the ticks stop, from one of two replicas checking at once, and one when they resume', async () => {
    // 200 s after the last tick (bound: 180 s), both replicas check at the same moment.
    const stoppedAt = T + 190 * S;
    const [one, two] = await Promise.all([
      runWatchdogCheck(a.ctx, { now: () => stoppedAt }),
      runWatchdogCheck(b.ctx, { now: () => stoppedAt }),
    ]);
    const alerted = [one!, two!].filter((c) => c.verdicts.some((v) => v.transition === 'alert'));
    expect(alerted).toHaveLength(1);
    expect([...one!.notificationIds, ...two!.notificationIds]).toHaveLength(1);
    const [stopped] = await mailCount(1);
    expect(stopped!.envelope.to).toEqual([OPS_EMAIL]);
    expect(stopped!.subject).toBe(
      '[forewarn] WATCHDOG: payment-health ticks stopped, last tick 200 s ago (bound 180 s)',
    );
    expect(stopped!.text).toContain('The detector payment-health has not finished a tick for 200 s');
    expect(stopped!.text).toContain(`Last tick finished (evaluated): ${new Date(T - 10 * S).toISOString()}`);
    // Times in the config's zone (Asia/Shanghai).
    expect(stopped!.text).toContain('(China Standard Time)');
    expect(await states()).toMatchObject({ 'ticks:payment-health': 'failing' });

    // Still stopped a minute later: nothing more, from either replica.
    await Promise.all([
      runWatchdogCheck(a.ctx, { now: () => stoppedAt + 60 * S }),
      runWatchdogCheck(b.ctx, { now: () => stoppedAt + 60 * S }),
    ]);
    await mailCount(1);

    await tickFinished(T + 300 * S);
    const resumedAt = T + 305 * S;
    await Promise.all([
      runWatchdogCheck(a.ctx, { now: () => resumedAt }),
      runWatchdogCheck(b.ctx, { now: () => resumedAt }),
    ]);
    const [, recovered] = await mailCount(2);
    expect(recovered!.subject).toBe('[forewarn] Watchdog: payment-health ticks again');
    expect(recovered!.text).toContain('its last tick finished 5 s before this check (bound 180 s)');
    expect(await states()).toMatchObject({ 'ticks:payment-health': 'ok' });
    expect((await rowsOfKind()).map((r) => r.status)).toEqual(['sent', 'sent']);
  });

  it('sends one email when the payment data lags beyond the bound, and one when it caught up', async () => {
    const now = T + 310 * S;
    await tickFinished(now);
    // The newest attempt now 20 minutes old on the platform's clock (bound: 15 minutes).
    await db.pool.query('DELETE FROM platform.payment_attempts');
    await attemptCreated(1_200);
    await Promise.all([
      runWatchdogCheck(a.ctx, { now: () => now }),
      runWatchdogCheck(b.ctx, { now: () => now }),
    ]);
    const [, , lagging] = await mailCount(3);
    expect(lagging!.subject).toMatch(
      /^\[forewarn\] WATCHDOG: platform payment data lags 120\d s \(bound 900 s\)$/,
    );
    expect(lagging!.text).toContain('Newest payment attempt created:');
    expect(await states()).toMatchObject({
      'data:payment_attempts': 'failing',
      'ticks:payment-health': 'ok',
    });

    await attemptCreated(2);
    await Promise.all([
      runWatchdogCheck(a.ctx, { now: () => now + 5 * S }),
      runWatchdogCheck(b.ctx, { now: () => now + 5 * S }),
    ]);
    const [, , , caughtUp] = await mailCount(4);
    expect(caughtUp!.subject).toBe('[forewarn] Watchdog: platform payment data caught up');
    expect(caughtUp!.text).toMatch(
      /the newest payment attempt \(payment_attempts.created_at\) is \d+ s behind the platform database's clock/,
    );
    expect(await states()).toMatchObject({ 'data:payment_attempts': 'ok' });
    const keys = (await rowsOfKind()).map((r) => r.dedupe_key);
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(4);
  });

  it('with the platform database unreachable logs it and still watches the ticks', async () => {
    const closed = new pg.Pool({ connectionString: CLOSED_URL, connectionTimeoutMillis: 2_000 });
    closed.on('error', () => undefined);
    try {
      const ctx: AppContext = { ...a.ctx, platformDb: closed };
      const check = await runWatchdogCheck(ctx, { now: () => T + 900 * S });
      expect(check.dataRead).toBe(false);
      expect(check.verdicts.map((v) => [v.subject, v.transition])).toEqual([
        ['ticks:payment-health', 'alert'],
      ]);
      const failed = a.logs.lines().filter((l) => l.code === 'FW_WATCHDOG_CHECK_FAILED');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ part: 'data', component: 'watchdog' });
      await mailCount(5);
      // The data subject keeps its state: it is neither dropped nor judged.
      expect(await states()).toEqual({ 'data:payment_attempts': 'ok', 'ticks:payment-health': 'failing' });
    } finally {
      await closed.end();
    }
  });

  it('logs a check whose own database is unreachable, runs the next one, and stops cleanly', async () => {
    const closed = new pg.Pool({ connectionString: CLOSED_URL, connectionTimeoutMillis: 2_000 });
    closed.on('error', () => undefined);
    const before = a.logs.lines().length;
    const running = startWatchdog({ ...a.ctx, db: closed }, { intervalMs: 50 });
    try {
      await waitFor(
        'two failed checks logged',
        async () =>
          a.logs
            .lines()
            .slice(before)
            .filter(
              (l) =>
                l.code === 'FW_WATCHDOG_CHECK_FAILED' &&
                l.msg === 'watchdog check failed; the next one runs as usual',
            ).length >= 2,
        { timeoutMs: 5_000 },
      );
    } finally {
      await running.stop();
      await closed.end();
    }
  });
});

describe('forewarn start --role notifications', () => {
  it('with no scheduler running anywhere, alerts ops that the ticks stopped, and keeps running', async () => {
    const own = await createTestDatabase();
    const prefix = await createTestRedisPrefix();
    try {
      await createPlatform(own.pool);
      await own.pool.query(
        `INSERT INTO forewarn.detector_runs (detector, tick_at, outcome, started_at, finished_at, worker)
         VALUES ('payment-health', now() - interval '1 hour', 'evaluated', now() - interval '1 hour', now() - interval '1 hour', 'gone')`,
      );
      const before = smtp.messages.length;
      const daemon = daemons.start(
        {
          DATABASE_URL: own.url,
          // The platform's database unreachable: each check logs it, and goes on.
          PLATFORM_DATABASE_URL: CLOSED_URL,
          FOREWARN_QUEUE_PREFIX: prefix.prefix,
          FOREWARN_CONFIG: configPath,
          SMTP_URL: smtp.url,
          FOREWARN_LINK_SECRET: 'test-link-secret-0123456789abcdef0123456789',
        } as Parameters<Daemons['start']>[0],
        ['--role', 'notifications'],
      );
      await daemon.waitForLog('forewarn started');
      const mail = await waitFor(
        'the daemon’s watchdog email',
        async () =>
          smtp.messages.slice(before).find((m) => m.subject?.includes('payment-health ticks stopped')),
        { timeoutMs: 15_000 },
      );
      expect(mail.subject).toMatch(/last tick 36\d\d s ago \(bound 180 s\)$/);
      await waitFor('a failed platform read logged', async () =>
        daemon.logs().some((l) => l.code === 'FW_WATCHDOG_CHECK_FAILED'),
      );
      expect(daemon.running).toBe(true);
      daemon.signal('SIGTERM');
      expect((await daemon.waitForExit(15_000)).code).toBe(0);
    } finally {
      await daemons.killAll();
      await prefix.cleanup();
      await own.drop();
    }
  });
});
