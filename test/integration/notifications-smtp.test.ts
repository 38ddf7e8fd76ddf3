// Delivery against a real SMTP server that misbehaves (test/support/smtp.ts): notifications are
// recorded with the store's own function and queued as the fan-out queues them; the delivery
// worker (workers/delivery.ts) claims, renders, sends and records. A 4xx recipient is retried
// with backoff and sent once; a 5xx recipient fails for good with the reason, tried once; a
// dropped connection is retried; a server that drops every connection for a while loses nothing;
// data that breaks a template's schema fails without sending anything.
// `forewarn deliveries failed` lists the permanent failures with their reasons.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import { messageIdFor } from '../../lib/channels/email.ts';
import { retryDelayMs } from '../../lib/notifications/backoff.ts';
import { insertNotifications, type NotificationDraft } from '../../lib/notifications/store.ts';
import { templateKinds } from '../../templates/kinds.ts';
import {
  countBy,
  duplicates,
  forewarnCli,
  readInbox,
  readNotifications,
  startInProcess,
  waitForPipelineIdle,
  writeConfigWith,
  type InProcessPipeline,
  type NotificationRecord,
} from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import {
  accept,
  drop,
  reject,
  startSmtpServer,
  type SmtpBehaviour,
  type TestSmtpServer,
} from '../support/smtp.ts';

const MESSAGE_ID_DOMAIN = 'notify.example.com';
const RETRY_POLICY = { baseDelaySeconds: 0.2, maxDelaySeconds: 2 };
/**
 * What lib/notifications/backoff.ts promises for every retry: full jitter draws the delay from
 * [0, ceiling], and no delay is shorter than a tenth of a second.
 */
const RETRY_FLOOR_MS = 100;
/** The longest delay the backoff may choose after `attempt` attempts: base * 2^(attempt-1), at most max. */
const retryCeilingMs = (attempt: number): number =>
  Math.max(
    RETRY_FLOOR_MS,
    Math.min(RETRY_POLICY.maxDelaySeconds, RETRY_POLICY.baseDelaySeconds * 2 ** (attempt - 1)) * 1000,
  );
/**
 * PostgreSQL's now() and Date.now() read the same clock here, but one is kept to microseconds and
 * turned into milliseconds by pg, the other floored to milliseconds: readings can be 1 ms apart.
 * This slack is for that rounding, not for the machine's speed.
 */
const CLOCK_SLACK_MS = 2;

const RETRY_4XX = 'retry-4xx@example.com';
const FAIL_550 = 'fail-550@example.com';
const FAIL_554 = 'fail-554-data@example.com';
const DROPPED = 'dropped@example.com';
const BAD_DATA = 'bad-data@example.com';
const OK = Array.from({ length: 20 }, (_, i) => `ok-${String(i).padStart(2, '0')}@example.com`);
const DROP_PHASE = Array.from({ length: 5 }, (_, i) => `drop-phase-${i}@example.com`);

/** What the server did with each transaction, by recipient, in order. */
interface Transaction {
  to: string;
  at: number;
  behaviour: SmtpBehaviour['kind'];
  code?: number;
}

const degraded = templateKinds['payment-degraded'].sample;
const recovered = templateKinds['payment-recovered'].sample;

let seq = 0;
function draft(
  channel: 'email' | 'inapp',
  to: string,
  overrides: Partial<NotificationDraft> = {},
): NotificationDraft {
  seq += 1;
  const userId = `u-smtp-${String(seq).padStart(3, '0')}`;
  return {
    dedupeKey: `test:smtp:payment-degraded:${channel}:${userId}`,
    cause: 'test:smtp',
    incidentId: null,
    category: 'service',
    kind: 'payment-degraded',
    channel,
    audience: 'user',
    userId,
    address: channel === 'email' ? to : null,
    locale: 'zh-CN',
    data: { ...degraded },
    ...overrides,
  };
}

let dir: string;
let db: TestDatabase;
let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let smtp: TestSmtpServer;
let pipeline: InProcessPipeline;
const transactions: Transaction[] = [];
/**
 * Every distinct (status, attempts, next_attempt_at) the 4xx recipient's row went through, with
 * when the watcher first saw it (Date.now() after the read, so not before the row was written).
 */
const retryHistory: Array<{
  status: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  seenAt: number;
}> = [];

const txOf = (to: string) => transactions.filter((t) => t.to === to);

/** While set, every transaction loses its connection at RCPT TO, whoever it is for. */
let dropEverything = false;

/**
 * Per recipient: the n-th transaction (0-based) for it gets `plan[n]`, later ones the last
 * entry; recipients without a plan are accepted. Every decision is recorded in `transactions`.
 */
function planned(plans: Record<string, SmtpBehaviour[]>) {
  return ({ to }: { to: string }): SmtpBehaviour => {
    const n = txOf(to).length;
    const plan = plans[to];
    const behaviour = dropEverything
      ? drop('rcpt')
      : plan
        ? (plan[Math.min(n, plan.length - 1)] ?? accept())
        : accept();
    transactions.push({
      to,
      at: Date.now(),
      behaviour: behaviour.kind,
      ...(behaviour.kind === 'reject' ? { code: behaviour.code } : {}),
    });
    return behaviour;
  };
}

async function record(drafts: NotificationDraft[], key: string): Promise<string[]> {
  const ids = await insertNotifications(db.pool, drafts);
  expect(ids).toHaveLength(drafts.length);
  await enqueueDeliveries(pipeline.ctx, ids, key);
  return ids;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-notify-smtp-'));
  db = await createTestDatabase();
  redis = await createTestRedisPrefix();
  smtp = await startSmtpServer();
  const configPath = await writeConfigWith(join(dir, 'forewarn.yaml'), {
    notifications: {
      retry: { maxAttempts: 8, ...RETRY_POLICY },
      email: { messageIdDomain: MESSAGE_ID_DOMAIN, maxConnections: 3 },
    },
  });
  pipeline = await startInProcess({
    databaseUrl: db.url,
    prefix: redis.prefix,
    configPath,
    smtpUrl: smtp.url,
  });
});

afterAll(async () => {
  await pipeline?.close();
  await smtp?.close();
  await redis?.cleanup();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

describe('delivery through an SMTP server answering 4xx, 5xx and dropping connections', () => {
  let rows: NotificationRecord[];

  beforeAll(async () => {
    smtp.behave(
      planned({
        [RETRY_4XX]: [reject(451, 'rcpt'), reject(452, 'data'), accept()],
        [FAIL_550]: [reject(550, 'rcpt', 'mailbox unavailable')],
        [FAIL_554]: [reject(554, 'data', 'message rejected')],
        [DROPPED]: [drop('rcpt'), drop('data'), accept()],
      }),
    );
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const { rows: r } = await db.pool.query<{
          status: string;
          attempts: number;
          next_attempt_at: Date;
          last_error: string | null;
        }>(
          'SELECT status, attempts, next_attempt_at, last_error FROM forewarn.notifications WHERE address = $1',
          [RETRY_4XX],
        );
        const row = r[0];
        const last = retryHistory.at(-1);
        if (
          row &&
          (!last ||
            last.status !== row.status ||
            last.attempts !== row.attempts ||
            last.nextAttemptAt !== row.next_attempt_at.getTime())
        ) {
          retryHistory.push({
            status: row.status,
            attempts: row.attempts,
            nextAttemptAt: row.next_attempt_at.getTime(),
            lastError: row.last_error,
            seenAt: Date.now(),
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      await record(
        [
          draft('email', RETRY_4XX),
          draft('email', FAIL_550),
          draft('email', FAIL_554),
          draft('email', DROPPED, { kind: 'payment-recovered', data: { ...recovered } }),
          ...OK.map((to, i) => draft('email', to, i % 4 === 0 ? { locale: 'en' } : {})),
          draft('inapp', ''),
          draft('inapp', '', { locale: 'en' }),
          // Data that breaks the kind's schema, as a bad row would carry it: fails at render time.
          draft('email', BAD_DATA, { data: { ...degraded, payUrl: 'javascript:alert(1)' } }),
          draft('inapp', '', { data: { ...degraded, channelName: undefined } }),
        ],
        'smtp-phase-a',
      );
      await waitForPipelineIdle(db.pool, 0, 30_000);
    } finally {
      watching = false;
      await watcher;
    }
    rows = await readNotifications(db.pool);
  }, 60_000);

  it('retries a 4xx recipient with backoff and delivers it exactly once', () => {
    const row = rows.find((r) => r.address === RETRY_4XX)!;
    expect(row.status).toBe('sent');
    expect(row.attempts).toBe(3);
    expect(row.last_error).toBeNull();
    expect(txOf(RETRY_4XX).map((t) => t.code ?? t.behaviour)).toEqual([451, 452, 'accept']);
    expect(smtp.messages.filter((m) => m.envelope.to.includes(RETRY_4XX))).toHaveLength(1);

    // The bounds below are the ones backoff.ts itself promises, whatever the jitter draws.
    for (const attempt of [1, 2]) {
      expect(retryDelayMs(RETRY_POLICY, attempt, () => 0)).toBe(RETRY_FLOOR_MS);
      expect(retryDelayMs(RETRY_POLICY, attempt, () => 1)).toBe(retryCeilingMs(attempt));
    }

    // Each failure set next_attempt_at at least the floor, at most the attempt's ceiling, after
    // the failure, and the next try came after it. Every bound is an order between recorded
    // events (the server's transaction, the row's state, the read that saw it), not a speed.
    const retries = retryHistory.filter((h) => h.status === 'pending' && h.attempts > 0);
    expect(retries.map((h) => h.attempts)).toEqual([1, 2]);
    expect(retries[0]!.lastError).toMatch(/451/);
    expect(retries[1]!.lastError).toMatch(/452/);
    const tx = txOf(RETRY_4XX);
    retries.forEach((retry, i) => {
      const attempt = retry.attempts;
      const failedAt = tx[i]!.at;
      const retriedAt = tx[i + 1]!.at;
      const what = `retry after attempt ${attempt}`;
      // The delay counts from after the failure, so due - failedAt >= delay >= floor.
      expect(retry.nextAttemptAt - failedAt, what).toBeGreaterThanOrEqual(RETRY_FLOOR_MS - CLOCK_SLACK_MS);
      // The row was written before it was seen, so due - seenAt <= delay <= ceiling (30 s would not do).
      expect(retry.nextAttemptAt - retry.seenAt, what).toBeLessThanOrEqual(
        retryCeilingMs(attempt) + CLOCK_SLACK_MS,
      );
      // A claim takes only what is due: the retry waited for its backoff.
      expect(retriedAt, what).toBeGreaterThanOrEqual(retry.nextAttemptAt - CLOCK_SLACK_MS);
      expect(retriedAt - failedAt, what).toBeGreaterThanOrEqual(RETRY_FLOOR_MS - CLOCK_SLACK_MS);
    });
  });

  it('records a 5xx recipient as failed with the reason, after one try', () => {
    const at550 = rows.find((r) => r.address === FAIL_550)!;
    expect(at550.status).toBe('failed');
    expect(at550.attempts).toBe(1);
    expect(at550.last_error).toMatch(/550/);
    expect(txOf(FAIL_550)).toHaveLength(1);

    const at554 = rows.find((r) => r.address === FAIL_554)!;
    expect(at554.status).toBe('failed');
    expect(at554.attempts).toBe(1);
    expect(at554.last_error).toMatch(/554/);
    expect(txOf(FAIL_554)).toHaveLength(1);
    expect(
      smtp.messages.filter((m) => m.envelope.to.some((to) => to === FAIL_550 || to === FAIL_554)),
    ).toEqual([]);
  });

  it('retries a recipient whose connection dropped, and delivers it once', () => {
    const row = rows.find((r) => r.address === DROPPED)!;
    expect(row.status).toBe('sent');
    // nodemailer's pool re-sends a message whose connection closed on its own (maxRequeues);
    // forewarn retries what it gives up on. Either way the server saw both drops, then one send.
    expect(row.attempts).toBeGreaterThanOrEqual(1);
    expect(txOf(DROPPED).map((t) => t.behaviour)).toEqual(['drop', 'drop', 'accept']);
    expect(smtp.messages.filter((m) => m.envelope.to.includes(DROPPED))).toHaveLength(1);
  });

  it('fails data that breaks the template schema with the reason, and sends nothing for it', async () => {
    const badEmail = rows.find((r) => r.address === BAD_DATA)!;
    expect(badEmail.status).toBe('failed');
    expect(badEmail.last_error).toMatch(/FW_TEMPLATE_RENDER/);
    expect(badEmail.last_error).toMatch(/data\.payUrl/);
    expect(txOf(BAD_DATA)).toEqual([]);

    const badInapp = rows.find((r) => r.channel === 'inapp' && r.data.channelName === undefined)!;
    expect(badInapp.status).toBe('failed');
    expect(badInapp.last_error).toMatch(/FW_TEMPLATE_RENDER.*data\.channelName/);
    const inbox = await readInbox(db.pool);
    expect(inbox.map((r) => r.notification_id).sort()).toEqual(
      rows
        .filter((r) => r.channel === 'inapp' && r.status === 'sent')
        .map((r) => r.id)
        .sort(),
    );
    expect(inbox.some((r) => r.notification_id === badInapp.id)).toBe(false);
  });

  it('loses nothing and sends nothing twice', () => {
    expect(countBy(rows, (r) => r.status)).toEqual(
      new Map([
        ['sent', 20 + 2 + 2],
        ['failed', 4],
      ]),
    );
    expect(duplicates(smtp.messages, (m) => m.messageId ?? '(none)')).toEqual([]);
    const sent = rows.filter((r) => r.channel === 'email' && r.status === 'sent');
    expect(smtp.messages.map((m) => m.messageId).sort()).toEqual(
      sent.map((r) => messageIdFor(r.dedupe_key, MESSAGE_ID_DOMAIN)).sort(),
    );
    for (const to of OK) expect(txOf(to), to).toHaveLength(1);
  });
});

describe('an SMTP server that drops every connection for a while', () => {
  it('keeps retrying and delivers everything once the server is back', async () => {
    const before = smtp.messages.length;
    dropEverything = true;
    let ids: string[] = [];
    try {
      ids = await record(
        DROP_PHASE.map((to) => draft('email', to)),
        'smtp-phase-b',
      );
      // Past nodemailer's own re-sends, each message fails in forewarn and waits for its retry.
      const failing = await waitFor(
        'every message to have failed on a dropped connection',
        async () => {
          const { rows } = await db.pool.query<{
            status: string;
            attempts: number;
            last_error: string | null;
          }>(
            'SELECT status, attempts, last_error FROM forewarn.notifications WHERE id = ANY ($1::bigint[])',
            [ids],
          );
          return rows.length === ids.length && rows.every((r) => r.attempts >= 1 && r.status === 'pending')
            ? rows
            : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 20 },
      );
      for (const r of failing) expect(r.last_error).toMatch(/connection/i);
      expect(smtp.messages.length).toBe(before);
    } finally {
      dropEverything = false;
    }
    await waitForPipelineIdle(db.pool, 0, 30_000);

    const rows = (await readNotifications(db.pool)).filter((r) => ids.includes(r.id));
    expect(rows.map((r) => r.status)).toEqual(DROP_PHASE.map(() => 'sent'));
    for (const r of rows) expect(r.attempts).toBeGreaterThanOrEqual(2);
    for (const to of DROP_PHASE) {
      expect(txOf(to).filter((t) => t.behaviour === 'drop').length, to).toBeGreaterThanOrEqual(1);
      expect(
        smtp.messages.filter((m) => m.envelope.to.includes(to)),
        to,
      ).toHaveLength(1);
    }
    expect(duplicates(smtp.messages, (m) => m.messageId ?? '(none)')).toEqual([]);
  });
});

describe('forewarn deliveries failed', () => {
  const env = () => ({
    DATABASE_URL: db.url,
    FOREWARN_QUEUE_PREFIX: redis.prefix,
    FOREWARN_CONFIG: join(dir, 'forewarn.yaml'),
  });

  it('lists the permanent failures with their reasons, and nothing that was sent', async () => {
    const json = await forewarnCli(['deliveries', 'failed', '--format', 'json', '--show-addresses'], env());
    expect(json.code, json.stderr).toBe(0);
    const listed = json.stdout
      .split('\n')
      .filter(Boolean)
      .map(
        (line) =>
          JSON.parse(line) as {
            address: string | null;
            reason: string | null;
            channel: string;
            attempts: number;
          },
      );
    expect(listed).toHaveLength(4);
    const at550 = listed.find((f) => f.address === FAIL_550);
    expect(at550?.reason).toMatch(/550/);
    expect(at550?.attempts).toBe(1);
    expect(listed.find((f) => f.address === FAIL_554)?.reason).toMatch(/554/);
    expect(listed.find((f) => f.address === BAD_DATA)?.reason).toMatch(/FW_TEMPLATE_RENDER/);
    expect(listed.find((f) => f.channel === 'inapp')?.reason).toMatch(/FW_TEMPLATE_RENDER/);
    for (const to of [RETRY_4XX, DROPPED, ...OK, ...DROP_PHASE]) {
      expect(
        listed.some((f) => f.address === to),
        to,
      ).toBe(false);
    }

    // Still tried once each, long after their failure.
    expect(txOf(FAIL_550)).toHaveLength(1);
    expect(txOf(FAIL_554)).toHaveLength(1);

    const table = await forewarnCli(['deliveries', 'failed'], env());
    expect(table.code, table.stderr).toBe(0);
    const line550 = table.stdout.split('\n').find((l) => l.includes('550'));
    expect(line550).toBeDefined();
    // Addresses are masked unless asked for.
    expect(line550).toContain('f***@example.com');
    expect(table.stdout).not.toContain(FAIL_550);
    expect(table.stdout).toContain('4 failed deliveries');
  });
});
