// Claims on deliveries, against real PostgreSQL, Redis and SMTP servers (test/support/smtp.ts):
// - a relay that takes a second per message, two workers (each with the context and SMTP pool of
//   a process of its own) and claims of a few seconds, shorter than a job takes: every message
//   arrives exactly once, each in one attempt;
// - an outcome written under a claim that was taken over changes nothing (the claim token fences
//   sent, retry and failed alike), and a renewal no longer holds what was taken;
// - a message that hangs or crashes its worker (the daemon as a child process, stopped or killed
//   while the relay holds that very message) uses an attempt per claim and ends failed, with the
//   reason, after retry.maxAttempts, instead of being reclaimed forever;
// - a claim that ran out is taken over only after the policy has judged the message again: a
//   user who opted out meanwhile gets nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import { messageIdFor } from '../../lib/channels/email.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { holdRule } from '../../lib/notifications/policy.ts';
import { savePreferences } from '../../lib/policy/preferences.ts';
import { Scheduler } from '../../lib/scheduler.ts';
import {
  claimNotifications,
  insertNotifications,
  markFailed,
  markRetry,
  markSent,
  renewClaims,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { Daemons, workerPid, type DaemonProcess } from '../support/daemon.ts';
import {
  duplicates,
  LINK_SECRET,
  readNotifications,
  startInProcess,
  waitForPipelineIdle,
  writeConfigWith,
  type InProcessPipeline,
  type NotificationDaemonEnv,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { accept, hang, startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const MESSAGE_ID_DOMAIN = 'notify.example.com';
/** A tsx start-up on a busy 2-core machine. */
const START_TIMEOUT_MS = 30_000;

let seq = 0;
function draft(to: string): NotificationDraft {
  seq += 1;
  const userId = `u-claim-${String(seq).padStart(3, '0')}`;
  return {
    dedupeKey: `test:claims:payment-degraded:email:${userId}`,
    cause: 'test:claims',
    incidentId: null,
    category: 'service',
    kind: 'payment-degraded',
    channel: 'email',
    audience: 'user',
    userId,
    address: to,
    locale: 'zh-CN',
    data: { ...templateKinds['payment-degraded'].sample },
  };
}

let dir: string;
const cleanups: Array<() => Promise<unknown>> = [];
const daemons = new Daemons();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-claims-'));
});

afterEach(async () => {
  // Processes first: they hold connections to the databases about to be dropped.
  await daemons.killAll();
  const errors: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse())
    await cleanup().catch((error: unknown) => errors.push(error));
  if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pipeline, closed by the test or else by the cleanup, whichever comes first. */
function closesOnce(pipeline: InProcessPipeline): InProcessPipeline {
  let closing: Promise<void> | undefined;
  return { ...pipeline, close: () => (closing ??= pipeline.close()) };
}

async function services(): Promise<{ db: TestDatabase; prefix: string; smtp: TestSmtpServer }> {
  const db = await createTestDatabase();
  cleanups.push(() => db.drop());
  const redis = await createTestRedisPrefix();
  cleanups.push(() => redis.cleanup());
  const smtp = await startSmtpServer();
  cleanups.push(() => smtp.close());
  return { db, prefix: redis.prefix, smtp };
}

describe('a relay taking a second per message, two workers, claims shorter than a job', () => {
  const MESSAGES = 40;
  // A job's 40 messages take 14 s on its 3 connections at the least: every claim made for all
  // of them at once runs out long before, and the sweeper (every second) hands them on.
  const CLAIM_SECONDS = 4;

  it('delivers every message exactly once, each in one attempt', async () => {
    const { db, prefix, smtp } = await services();
    smtp.behave(accept({ delayMs: 1_000 }));
    const configPath = await writeConfigWith(join(dir, 'slow-relay.yaml'), {
      detectors: { paymentHealth: { enabled: false } },
      notifications: {
        claimSeconds: CLAIM_SECONDS,
        email: { messageIdDomain: MESSAGE_ID_DOMAIN, maxConnections: 3 },
        sweeper: { schedule: '* * * * * *', staleSeconds: 1 },
      },
      // One delivery job per worker at a time: the first takes the queued job, so the other
      // takes what the sweeper queues, and both deliver.
      workers: { delivery: { concurrency: 1 } },
    });
    const workers: InProcessPipeline[] = [];
    for (let i = 0; i < 2; i++) {
      const worker = closesOnce(
        await startInProcess({ databaseUrl: db.url, prefix, configPath, smtpUrl: smtp.url }),
      );
      cleanups.push(() => worker.close());
      workers.push(worker);
    }
    const sweeper = new Scheduler(workers[0]!.ctx);
    sweeper.start();
    cleanups.push(() => sweeper.stop());

    const ids = await insertNotifications(
      db.pool,
      Array.from({ length: MESSAGES }, (_, i) => draft(`slow-${String(i).padStart(2, '0')}@example.com`)),
    );
    expect(ids).toHaveLength(MESSAGES);
    await enqueueDeliveries(workers[0]!.ctx, ids, 'slow-relay');
    await waitForPipelineIdle(db.pool, 0, 120_000);
    // Whatever a worker still has in hand is sent (or not) before its close returns.
    await sweeper.stop();
    for (const worker of workers) await worker.close();

    const rows = await readNotifications(db.pool);
    expect(rows.map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ['sent', 1]));
    const received = smtp.messages.map((m) => m.messageId ?? '(none)');
    expect(duplicates(received, (id) => id)).toEqual([]);
    expect(received.sort()).toEqual(rows.map((r) => messageIdFor(r.dedupe_key, MESSAGE_ID_DOMAIN)).sort());
    // Both workers delivered a share.
    const { rows: claims } = await db.pool.query<{ claimed_by: string }>(
      'SELECT DISTINCT claimed_by FROM forewarn.notifications',
    );
    expect(claims.map((c) => c.claimed_by).sort()).toEqual(workers.map((w) => w.ctx.workerId).sort());
  }, 150_000);
});

describe('outcomes written under a claim that was taken over', () => {
  it('change nothing: sent, retry and failed are fenced by the claim token', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const ids = await insertNotifications(db.pool, [
      draft('a@example.com'),
      draft('b@example.com'),
      draft('c@example.com'),
    ]);
    const claim = (token: string, chosen: string[]) =>
      claimNotifications(db.pool, chosen, {
        token,
        worker: `test:${token}`,
        claimSeconds: 60,
        maxAttempts: 5,
      });
    const old = '00000000-0000-4000-8000-00000000000a';
    const second = '00000000-0000-4000-8000-00000000000b';
    const first = await claim(old, ids);
    expect(first.claimed.map((n) => [n.id, n.attempts])).toEqual(ids.map((id) => [id, 1]));
    // A live claim is nobody else's to take.
    expect((await claim(second, ids.slice(0, 1))).claimed).toEqual([]);

    // The first holder stalls until its claims run out; each is taken over on its own.
    await db.pool.query(
      "UPDATE forewarn.notifications SET claimed_until = now() - interval '1 second' WHERE id = ANY ($1::bigint[])",
      [ids],
    );
    // Several at once are not taken over: a message that killed its worker is retried alone.
    expect((await claim(second, ids)).claimed).toEqual([]);
    for (const id of ids) {
      const taken = await claim(second, [id]);
      expect(taken.claimed.map((n) => [n.id, n.attempts])).toEqual([[id, 2]]);
    }
    const [a, b, c] = ids as [string, string, string];

    // The first holder comes back and writes its outcomes: none lands.
    expect(await renewClaims(db.pool, old, 60)).toEqual([]);
    expect(await markSent(db.pool, [{ id: a, token: old }])).toEqual([]);
    expect(await markRetry(db.pool, { id: b, token: old }, 'late 451', 1_000)).toBeNull();
    expect(await markFailed(db.pool, [{ id: c, token: old, reason: 'late 550' }])).toEqual([]);
    const rows = await db.pool.query<{ status: string; attempts: number; last_error: string | null }>(
      'SELECT status, attempts, last_error FROM forewarn.notifications ORDER BY id',
    );
    expect(rows.rows.map((r) => [r.status, r.attempts])).toEqual(ids.map(() => ['sending', 2]));
    expect(rows.rows.every((r) => !/late/.test(r.last_error ?? ''))).toBe(true);

    // The holder of the claim writes them.
    expect((await renewClaims(db.pool, second, 60)).sort()).toEqual([...ids].sort());
    expect(await markSent(db.pool, [{ id: a, token: second }])).toEqual([a]);
    expect(await markRetry(db.pool, { id: b, token: second }, '451', 1_000)).not.toBeNull();
    expect(await markFailed(db.pool, [{ id: c, token: second, reason: '550' }])).toEqual([c]);
    const after = await db.pool.query<{ status: string; attempts: number; last_error: string | null }>(
      'SELECT status, attempts, last_error FROM forewarn.notifications ORDER BY id',
    );
    expect(after.rows).toEqual([
      { status: 'sent', attempts: 2, last_error: null },
      { status: 'pending', attempts: 2, last_error: '451' },
      { status: 'failed', attempts: 2, last_error: '550' },
    ]);
  });
});

describe('a claim that ran out, taken over after its user opted out', () => {
  it('is judged anew: cancelled with the reason, not sent, and its lost attempt recorded', async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const config = await loadConfigFile('config/forewarn.yaml');
    const [id] = await insertNotifications(db.pool, [draft('gone@example.com')]);
    const claim = (token: string) =>
      claimNotifications(db.pool, [id!], {
        token,
        worker: `test:${token}`,
        claimSeconds: 60,
        maxAttempts: 5,
        hold: holdRule(config),
      });
    expect((await claim('00000000-0000-4000-8000-0000000000c1')).claimed).toHaveLength(1);
    // Its worker hangs; meanwhile the user switches service emails off.
    await db.pool.query(
      "UPDATE forewarn.notifications SET claimed_until = now() - interval '1 second' WHERE id = $1",
      [id],
    );
    const { rows: users } = await db.pool.query<{ user_id: string }>(
      'SELECT user_id FROM forewarn.notifications WHERE id = $1',
      [id],
    );
    await savePreferences(
      db.pool,
      [{ userId: users[0]!.user_id, category: 'service', channel: 'email', optedOut: true }],
      'api',
    );
    const taken = await claim('00000000-0000-4000-8000-0000000000c2');
    expect(taken.claimed).toEqual([]);
    expect(taken.withheld).toEqual([{ id, reason: 'opted out: service by email' }]);
    const { rows } = await db.pool.query(
      'SELECT status, held_reason, last_error, claim_token FROM forewarn.notifications WHERE id = $1',
      [id],
    );
    expect(rows).toEqual([
      {
        status: 'cancelled',
        held_reason: 'opted out: service by email',
        last_error:
          'attempt 1 never finished (its claim ran out: the worker crashed or hung while delivering it)',
        claim_token: null,
      },
    ]);
  });
});

describe('a message that hangs or crashes its worker', () => {
  const MAX_ATTEMPTS = 3;
  const POISON = 'poison@example.com';

  it('uses an attempt per claim and ends failed with the reason after retry.maxAttempts', async () => {
    const { db, prefix, smtp } = await services();
    // The relay never answers for this message: its worker is stuck on it, as on a message
    // that hangs or crashes it; the test then stops or kills that worker.
    const arrivals: number[] = [];
    smtp.behave(({ to }) => {
      if (to !== POISON) return accept();
      arrivals.push(Date.now());
      return hang();
    });
    const configPath = await writeConfigWith(join(dir, 'poison.yaml'), {
      detectors: { paymentHealth: { enabled: false } },
      notifications: {
        claimSeconds: 2,
        retry: { maxAttempts: MAX_ATTEMPTS, baseDelaySeconds: 0.2, maxDelaySeconds: 1 },
        email: { messageIdDomain: MESSAGE_ID_DOMAIN },
        sweeper: { schedule: '* * * * * *', staleSeconds: 1 },
      },
      shutdown: { graceSeconds: 2 },
    });
    const env: NotificationDaemonEnv = {
      DATABASE_URL: db.url,
      FOREWARN_QUEUE_PREFIX: prefix,
      FOREWARN_CONFIG: configPath,
      SMTP_URL: smtp.url,
      FOREWARN_LINK_SECRET: LINK_SECRET,
      REDIS_URL,
      LOG_LEVEL: 'info',
    };
    const start = async (): Promise<DaemonProcess> => {
      const daemon = daemons.start(env, ['--role', 'scheduler,notifications']);
      await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
      return daemon;
    };

    const [id] = await insertNotifications(db.pool, [draft(POISON)]);
    const queueing = await startInProcess({ databaseUrl: db.url, prefix, configPath, worker: false });
    cleanups.push(() => queueing.close());
    await enqueueDeliveries(queueing.ctx, [id!], 'poison');

    const read = async () => {
      const { rows } = await db.pool.query<{
        status: string;
        attempts: number;
        claimed_by: string | null;
        last_error: string | null;
      }>('SELECT status, attempts, claimed_by, last_error FROM forewarn.notifications WHERE id = $1', [id]);
      return rows[0]!;
    };
    const held: Array<{ attempts: number; holder: number | null; worker: number }> = [];
    let current = await start();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      await waitFor(`attempt ${attempt} to reach the relay`, async () => arrivals.length >= attempt, {
        timeoutMs: 30_000,
        intervalMs: 20,
      });
      const row = await read();
      held.push({
        attempts: row.attempts,
        holder: row.claimed_by === null ? null : workerPid(row.claimed_by),
        worker: current.pid,
      });
      // The first worker hangs (stopped, it holds its connections and renews nothing), the
      // others crash.
      if (attempt === 1) current.signal('SIGSTOP');
      else await current.kill();
      current = await start();
    }
    // Failed, or reclaimed once more: either way the question is settled.
    const final = await waitFor(
      'the message to be failed or claimed again',
      async () => {
        const row = await read();
        return row.status === 'failed' || arrivals.length > MAX_ATTEMPTS ? row : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(arrivals).toHaveLength(MAX_ATTEMPTS);
    expect(held).toEqual(held.map((h, i) => ({ attempts: i + 1, holder: h.worker, worker: h.worker })));
    expect(final.status).toBe('failed');
    expect(final.attempts).toBe(MAX_ATTEMPTS);
    expect(final.last_error).toBe(
      `gave up after ${MAX_ATTEMPTS} attempts: attempt ${MAX_ATTEMPTS} never finished (its claim ran out: the worker crashed or hung while delivering it)`,
    );
    expect(smtp.messages.filter((m) => m.envelope.to.includes(POISON))).toEqual([]);
  }, 180_000);
});
