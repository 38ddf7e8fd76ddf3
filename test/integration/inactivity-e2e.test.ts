// Security check-ups end to end, with real PostgreSQL, Redis and SMTP: a pass records the
// check-ups, fan-out and delivery send them; a user whose quiet hours it is now gets nothing yet
// (the message is held, with its reason, until the window ends), and when the user comes back
// before it is sent it is cancelled as stale. The `forewarn run inactivity --dry-run --format
// json` lines, and a crash in the middle of a pass over 200,000 users: after the restart nobody
// is reminded twice and nobody is missed.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTickAndDispatch } from '../../jobs/detect.ts';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import { inactivity } from '../../lib/detection/inactivity-tick.ts';
import { wallClock } from '../../lib/policy/quiet-hours.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { ROOT } from '../support/cli.ts';
import {
  forewarnCli,
  readInbox,
  readNotifications,
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
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const HOUR = 3_600_000;
const DAY = 86_400_000;
const SECURITY_URL = 'https://www.example.com/account/security';

let tmp: string;
let db: TestDatabase;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'forewarn-inactivity-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function platformSchema(target: TestDatabase): Promise<void> {
  const client = await target.pool.connect();
  try {
    await createPlatformSchema(client, 'platform');
  } finally {
    client.release();
  }
}

/** A window of quiet hours around the current time in UTC: quiet now for a UTC user, not in Kolkata. */
function quietNowInUtc(): { from: string; to: string } {
  const now = wallClock(Date.now(), 'UTC');
  const hhmm = (m: number) => {
    const x = ((m % 1440) + 1440) % 1440;
    return `${String(Math.floor(x / 60)).padStart(2, '0')}:${String(x % 60).padStart(2, '0')}`;
  };
  const minute = now.hour * 60 + now.minute;
  return { from: hhmm(minute - 60), to: hhmm(minute + 60) };
}

describe('check-ups through the pipeline (Redis, SMTP)', () => {
  let smtp: TestSmtpServer;
  let pipeline: InProcessPipeline;
  let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
  const window = quietNowInUtc();

  beforeAll(async () => {
    db = await createTestDatabase();
    await platformSchema(db);
    smtp = await startSmtpServer();
    redis = await createTestRedisPrefix();
    const configPath = await writeConfigWith(join(tmp, 'pipeline.yaml'), {
      detectors: { inactivity: { stepDays: [3, 30] } },
      notifications: { quietHours: { security: window } },
    });
    pipeline = await startInProcess({
      databaseUrl: db.url,
      prefix: redis.prefix,
      configPath,
      smtpUrl: smtp.url,
    });
    const now = Date.now();
    await db.pool.query(
      `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at) VALUES
         ('awake', 'awake@example.com', 'zh-CN', 'CN-GD', 'Asia/Kolkata', 'active', $1, $3),
         ('asleep', 'asleep@example.com', 'en', 'CN-GD', 'UTC', 'active', $2, $3),
         ('fresh', 'fresh@example.com', 'zh-CN', 'CN-GD', 'Asia/Kolkata', 'active', $4, $3)`,
      [new Date(now - 4 * DAY), new Date(now - 5 * DAY), new Date(now - 100 * DAY), new Date(now - HOUR)],
    );
  });

  afterAll(async () => {
    await pipeline?.close();
    await smtp?.close();
    await redis?.cleanup();
    await db?.drop();
  });

  it('the awake user gets the check-up by email and in-app; the user in quiet hours gets nothing yet', async () => {
    const result = await runTickAndDispatch(inactivity.run, pipeline.ctx, Date.now() - 1_000);
    expect(result.changes.map((c) => `${c.userId} ${c.type}`).sort()).toEqual([
      'asleep opened',
      'awake opened',
    ]);

    const [mail] = await smtp.waitForMessages(1);
    expect(mail!.envelope.to).toEqual(['awake@example.com']);
    expect(mail!.subject).toContain('账号安全');
    expect(mail!.text!).toContain('我们绝不会以任何方式向您索要密码或验证码');
    expect(mail!.text!).toContain(SECURITY_URL);
    // The only link is the configured security page; no token, no sign-in link.
    expect([...mail!.text!.matchAll(/https?:\/\/\S+/g)].map((m) => m[0])).toEqual([SECURITY_URL]);
    expect(mail!.text!).not.toMatch(/token|password=|login/i);
    // Security mail carries no unsubscribe link of a preferences token.
    expect(mail!.headers.get('list-unsubscribe')).toBeUndefined();

    await waitFor('the in-app check-up', async () =>
      (await readInbox(db.pool)).some((m) => m.user_id === 'awake'),
    );
    const notifications = await readNotifications(db.pool);
    const asleep = notifications.filter((n) => n.user_id === 'asleep');
    expect(asleep.map((n) => `${n.kind} ${n.channel} ${n.status}`).sort()).toEqual([
      'security-checkup email pending',
      'security-checkup inapp pending',
    ]);
    const { rows } = await db.pool.query<{ held_reason: string; next_attempt_at: Date }>(
      `SELECT held_reason, next_attempt_at FROM forewarn.notifications WHERE user_id = 'asleep'`,
    );
    for (const r of rows) {
      expect(r.held_reason).toContain(`security quiet hours ${window.from}-${window.to} in UTC`);
      expect(r.next_attempt_at.getTime()).toBeGreaterThan(Date.now());
    }
    // Delivery comes back for each when its window ends: a delayed job per held message.
    const delivery = pipeline.ctx.queues.get('delivery');
    for (const n of asleep) {
      const due = rows[0]!.next_attempt_at.getTime();
      const job = await waitFor('the delayed delivery of a held check-up', () =>
        delivery.getJob(`held@${pipeline.ctx.deploymentId}@${n.id}@${due}`),
      );
      expect(await job.isDelayed()).toBe(true);
      expect(job.data).toMatchObject({ ids: [n.id] });
    }
    expect(smtp.messages.map((m) => m.envelope.to[0])).toEqual(['awake@example.com']);
  });

  it('a held check-up whose user comes back before it is sent is cancelled as stale', async () => {
    await db.pool.query(`UPDATE platform.users SET last_active_at = now() WHERE id = 'asleep'`);
    // Its time comes (as if the window had ended): a stale message is cancelled, quiet hours or not.
    await db.pool.query(`UPDATE forewarn.notifications SET next_attempt_at = now() WHERE user_id = 'asleep'`);
    const ids = (await readNotifications(db.pool)).filter((n) => n.user_id === 'asleep').map((n) => n.id);
    await enqueueDeliveries(pipeline.ctx, ids, `test@${Date.now()}`);
    await waitFor(
      'both check-ups cancelled',
      async () =>
        (await readNotifications(db.pool)).filter((n) => n.user_id === 'asleep' && n.status === 'cancelled')
          .length === 2,
    );
    const { rows } = await db.pool.query<{ last_error: string }>(
      `SELECT last_error FROM forewarn.notifications WHERE user_id = 'asleep'`,
    );
    for (const r of rows) expect(r.last_error).toContain('security-checkup stale rule');
    expect(smtp.messages.map((m) => m.envelope.to[0])).toEqual(['awake@example.com']);
  });
});

describe('forewarn run inactivity --dry-run --format json', () => {
  let cliDb: TestDatabase;
  let configPath: string;

  beforeAll(async () => {
    cliDb = await createTestDatabase();
    await platformSchema(cliDb);
    configPath = await writeConfigWith(join(tmp, 'dry.yaml'), {
      detectors: { inactivity: { stepDays: [3, 30] } },
    });
  });

  afterAll(async () => {
    await cliDb?.drop();
  });

  it('lists every user due, at which step, with sendAt when their quiet hours delay it, and sends nothing', async () => {
    // The latest past instant at which it is 03:00 in Los Angeles.
    let at = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    while (wallClock(at, 'America/Los_Angeles').hour !== 3) at -= HOUR;
    await cliDb.pool.query(
      `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at) VALUES
         ('la', 'la@example.com', 'en', 'US-CA', 'America/Los_Angeles', 'active', $1, $3),
         ('sh', NULL, 'zh-CN', 'CN-GD', 'Asia/Shanghai', 'active', $2, $3),
         ('no', 'no@example.com', 'zh-CN', 'CN-GD', 'Asia/Shanghai', 'active', $4, $3)`,
      [new Date(at - 31 * DAY), new Date(at - 3 * DAY - HOUR), new Date(at - 200 * DAY), new Date(at - DAY)],
    );
    const out = await forewarnCli(
      ['run', 'inactivity', '--dry-run', '--format', 'json', '--at', new Date(at).toISOString()],
      { DATABASE_URL: cliDb.url, FOREWARN_CONFIG: configPath },
    );
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .sort((a, b) => `${a.userId} ${a.channel}`.localeCompare(`${b.userId} ${b.channel}`));
    const shanghaiHour = wallClock(at, 'Asia/Shanghai').hour; // 19:00 or 18:00: outside 22:00-08:00
    expect(shanghaiHour).toBeGreaterThanOrEqual(8);
    expect(lines).toEqual([
      expect.objectContaining({
        kind: 'security-checkup',
        userId: 'la',
        channel: 'email',
        locale: 'en',
        step: 30,
        sendAt: new Date(at + 5 * HOUR).toISOString(),
        dedupeKey: expect.stringMatching(/^cause:\d+:security-checkup:email:la$/),
      }),
      expect.objectContaining({ kind: 'security-checkup', userId: 'la', channel: 'inapp', step: 30 }),
      // sh has no email address: the email is shown withheld, as the real run records it.
      expect.objectContaining({
        kind: 'security-checkup',
        userId: 'sh',
        channel: 'email',
        step: 3,
        withheld: 'no address: the platform has no email address for this user',
      }),
      expect.objectContaining({
        kind: 'security-checkup',
        userId: 'sh',
        channel: 'inapp',
        locale: 'zh-CN',
        step: 3,
      }),
    ]);
    expect(lines[3]).not.toHaveProperty('sendAt');
    expect(lines[3]).not.toHaveProperty('withheld');
    const { rows } = await cliDb.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM forewarn.incidents`,
    );
    expect(rows[0]!.n).toBe(0);
  });
});

describe('a crash in the middle of a pass over 200,000 users', () => {
  let crashDb: TestDatabase;
  let configPath: string;
  const USERS = 200_000;

  beforeAll(async () => {
    crashDb = await createTestDatabase();
    await platformSchema(crashDb);
    configPath = await writeConfigWith(join(tmp, 'crash.yaml'), {
      detectors: { inactivity: { stepDays: [3, 30], remindersPerMinute: 1_000_000, pageSize: 1000 } },
    });
    // A quarter idle between 3 and 300 days (every 4th user), the rest active within the last 2 days.
    await crashDb.pool.query(
      `INSERT INTO platform.users (id, email, locale, region, timezone, status, last_active_at, created_at)
       SELECT 'u' || lpad(i::text, 7, '0'), 'u' || i || '@example.com', 'zh-CN', 'CN-GD', 'Asia/Shanghai', 'active',
              CASE WHEN i % 4 = 0 THEN now() - interval '3 days 1 hour' - (i % 297) * interval '1 day' - (i % 1000) * interval '1 second'
                   ELSE now() - (i % 47) * interval '1 hour' END,
              now() - interval '400 days'
         FROM generate_series(1, $1) AS i`,
      [USERS],
    );
    await crashDb.pool.query('ANALYZE platform.users');
  });

  afterAll(async () => {
    await crashDb?.drop();
  });

  it('after the restart, every idle user is reminded exactly once, and nobody else', async () => {
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      DATABASE_URL: crashDb.url,
      REDIS_URL,
      FOREWARN_CONFIG: configPath,
      LOG_LEVEL: 'warn',
      FOREWARN_LINK_SECRET: 'crash-test-secret-0123456789abcdef0123456789',
    };
    const child = spawn(process.execPath, ['bin/forewarn.js', 'run', 'inactivity'], { cwd: ROOT, env });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Mid-pass: the pass's transaction has recorded check-ups of its first pages (visible to
    // PostgreSQL's own statistics, not yet committed), and has not finished.
    await waitFor(
      'the pass recording its first pages',
      async () => {
        const { rows } = await crashDb.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND xact_start IS NOT NULL AND query ILIKE '%forewarn.incident_events%'`,
        );
        return rows[0]!.n > 0;
      },
      { timeoutMs: 60_000, intervalMs: 5 },
    );
    child.kill('SIGKILL');
    expect(await exited).toBeNull();
    const evaluated = await crashDb.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM forewarn.detector_runs WHERE detector = 'inactivity' AND outcome = 'evaluated'`,
    );
    expect(evaluated.rows[0]!.n, 'the pass finished before it was killed: the test proved nothing').toBe(0);

    const again = await forewarnCli(
      ['run', 'inactivity'],
      { DATABASE_URL: crashDb.url, FOREWARN_CONFIG: configPath },
      120_000,
    );
    expect(again.code, again.stderr).toBe(0);
    const { rows } = await crashDb.pool.query<{
      users: number;
      events: number;
      causes: number;
      states: number;
    }>(
      `SELECT count(DISTINCT i.subject_key)::int AS users, count(e.id)::int AS events,
              count(DISTINCT i.id)::int AS causes,
              (SELECT count(*)::int FROM forewarn.subject_state WHERE detector = 'inactivity') AS states
         FROM forewarn.incidents i JOIN forewarn.incident_events e ON e.incident_id = i.id
        WHERE i.detector = 'inactivity'`,
    );
    expect(rows[0]).toEqual({ users: USERS / 4, events: USERS / 4, causes: USERS / 4, states: USERS / 4 });
    const wrong = await crashDb.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM forewarn.incidents i
         JOIN platform.users u ON u.id = i.subject_key
        WHERE i.detector = 'inactivity' AND substr(u.id, 2)::int % 4 <> 0`,
    );
    expect(wrong.rows[0]!.n).toBe(0);
    // And a pass after that records nothing new.
    const third = await forewarnCli(
      ['run', 'inactivity'],
      { DATABASE_URL: crashDb.url, FOREWARN_CONFIG: configPath },
      120_000,
    );
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toMatch(/: 0 change\(s\)/);
  }, 240_000);
});
