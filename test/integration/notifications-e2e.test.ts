// The notification pipeline end to end, in this process, against real PostgreSQL, Redis and a
// real SMTP server (test/support/smtp.ts): simulated traffic with an outage of wechat_pay in
// CN-GD, detector ticks at chosen times (runTickAndDispatch, as the detection job runs them), and
// the notification workers (workers/fanout.ts, delivery.ts, ops-alerts.ts) fanning out and
// delivering. Exactly the users the rule targets hear about it once per channel, in their
// language, with the backup channel named; they alone hear about the recovery; ops get both alerts with the numbers.
// `forewarn run payment-health --dry-run --format json` lists the same audience and writes nothing.
//
// The user base is built so that who qualifies is known: simulated payers of wechat_pay (and of
// the other channels, some of them never wechat_pay) in every region, plus hand-made users at
// each edge of the rule (disabled, deleted, no email, other region, alipay only, history just
// inside or outside the windows, failed but never stuck). The oracle is computed from the
// generated rows in JavaScript, not with forewarn's SQL.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageIdFor } from '../../lib/channels/email.ts';
import { generateUsers, referencePlatform, type SimUser } from '../../sim/platform.ts';
import { generateAttempts, type SimAttempt } from '../../sim/traffic.ts';
import { loadPlatform, forewarnCounts } from '../support/platform.ts';
import {
  attempt,
  countBy,
  DAY,
  duplicates,
  forewarnCli,
  insertAttempts,
  keysUnder,
  MINUTE,
  OPS_EMAIL,
  readInbox,
  readNotifications,
  SECOND,
  startInProcess,
  targetedUsers,
  tickUntil,
  user,
  waitForPipelineIdle,
  writeConfigWith,
  type InboxRecord,
  type InProcessPipeline,
  type NotificationRecord,
} from '../support/notifications.ts';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../support/smtp.ts';

const CHANNEL = 'wechat_pay';
const REGION = 'CN-GD';
const BACKUP = 'alipay';
// 20:00 in Beijing, the busiest hour: wechat_pay in CN-GD sees ~27 attempts every 5 s.
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const OUTAGE_END = OUTAGE_START + 2 * MINUTE;
// The detector looks back an hour; 65 minutes give the first tick a full window.
const HISTORY_FROM = OUTAGE_START - 65 * MINUTE;
const HISTORY_TO = OUTAGE_END + 6 * MINUTE;
const STEP = 15 * SECOND;
const CONFIRM_SECONDS = 30;
const RESOLVE_SECONDS = 60;
const MESSAGE_ID_DOMAIN = 'notify.example.com';
const DASHBOARD = 'https://ops.example.com/incidents/{incidentId}';
const AUDIENCE = { stuckWithinMinutes: 60, usedWithinDays: 30 };

/** Hand-made users at each edge of the rule, with the attempts that put them there. */
function edgeCases(): { users: SimUser[]; attempts: SimAttempt[]; targeted: string[]; untouched: string[] } {
  let id = 900_000_000;
  const users: SimUser[] = [];
  const attempts: SimAttempt[] = [];
  const targeted: string[] = [];
  const untouched: string[] = [];
  const add = (
    u: SimUser,
    expected: boolean,
    history: Array<[channel: string, status: SimAttempt['status'], at: number, region?: string]>,
  ) => {
    users.push(u);
    for (const [channel, status, at, region] of history)
      attempts.push(attempt(id++, u.id, channel, status, at, region));
    (expected ? targeted : untouched).push(u.id);
  };
  const before = (ms: number) => OUTAGE_START - ms;
  add(user('x01-gd-zh-29-days'), true, [[CHANNEL, 'succeeded', before(29 * DAY)]]);
  add(user('x02-gd-en', { locale: 'en' }), true, [[CHANNEL, 'succeeded', before(2 * DAY)]]);
  add(user('x03-gd-en-us', { locale: 'en-US' }), true, [[CHANNEL, 'succeeded', before(3 * DAY)]]);
  add(user('x04-gd-no-email', { email: null }), true, [[CHANNEL, 'succeeded', before(5 * DAY)]]);
  add(user('x05-gd-ja', { locale: 'ja' }), true, [[CHANNEL, 'succeeded', before(6 * DAY)]]);
  add(user('x06-gd-pending-20-min'), true, [[CHANNEL, 'pending', before(20 * MINUTE)]]);
  add(user('x07-gd-timeout-5-min', { locale: 'en' }), true, [[CHANNEL, 'timeout', before(5 * MINUTE)]]);
  add(user('x20-gd-disabled', { status: 'disabled' }), false, [[CHANNEL, 'succeeded', before(DAY)]]);
  add(user('x21-gd-deleted', { status: 'deleted' }), false, [[CHANNEL, 'succeeded', before(DAY)]]);
  add(user('x22-gd-alipay-only'), false, [
    [BACKUP, 'succeeded', before(DAY)],
    [BACKUP, 'pending', before(10 * MINUTE)],
  ]);
  add(user('x23-gd-31-days'), false, [[CHANNEL, 'succeeded', before(31 * DAY)]]);
  add(user('x24-gd-failed-only'), false, [[CHANNEL, 'failed', before(10 * MINUTE)]]);
  add(user('x25-gd-timeout-2-hours'), false, [[CHANNEL, 'timeout', before(2 * 60 * MINUTE)]]);
  add(user('x26-bj', { region: 'CN-BJ' }), false, [[CHANNEL, 'succeeded', before(DAY), 'CN-BJ']]);
  add(user('x27-bj-paid-in-gd', { region: 'CN-BJ' }), false, [[CHANNEL, 'succeeded', before(DAY), REGION]]);
  add(user('x28-gd-no-email-disabled', { email: null, status: 'disabled' }), false, [
    [CHANNEL, 'timeout', before(MINUTE)],
  ]);
  return { users, attempts, targeted, untouched };
}

/** en and en-US get the English templates; everyone else (zh-CN, ja, zh-TW, ...) the Chinese ones. */
const speaksEnglish = (locale: string) => /^en(-|$)/i.test(locale);
/** A share as the templates print it: percent, one decimal (Liquid's `times: 100 | round: 1`). */
const pct = (share: number) => String(Math.round(share * 100 * 10) / 10);

let dir: string;
let db: TestDatabase;
let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let smtp: TestSmtpServer;
let pipeline: InProcessPipeline;
let users: SimUser[];
let attempts: SimAttempt[];
let edges: ReturnType<typeof edgeCases>;
let openedAt: number;
let resolvedAt: number;
let incidentId: string;
let notifications: NotificationRecord[];
let inbox: InboxRecord[];
let received: ReceivedMessage[];
const byMessageId = new Map<string, NotificationRecord>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-notify-e2e-'));
  const platform = referencePlatform();
  // Payers of wechat_pay are the first 500 generated users, payers of the other CN-GD channels
  // users 300 to 799: some use both, some never touched wechat_pay.
  const generated = generateUsers(800, 41, { platform });
  edges = edgeCases();
  users = [...generated, ...edges.users];
  const wechat = { ...platform, pairs: platform.pairs.filter((p) => p.channel === CHANNEL) };
  const others = {
    ...platform,
    pairs: platform.pairs.filter((p) => p.region === REGION && p.channel !== CHANNEL),
  };
  attempts = [
    ...generateAttempts({
      platform: wechat,
      from: HISTORY_FROM,
      to: HISTORY_TO,
      seed: 2026,
      users: generated.slice(0, 500),
      scenarios: [
        { channel: CHANNEL, region: REGION, from: OUTAGE_START, to: OUTAGE_END, effect: { type: 'outage' } },
      ],
    }),
    ...generateAttempts({
      platform: others,
      from: HISTORY_FROM,
      to: HISTORY_TO,
      seed: 2027,
      firstId: 10_000_000,
      users: generated.slice(300),
    }),
    ...edges.attempts,
  ];

  db = await createTestDatabase();
  await loadPlatform(db.pool, { platform, users, attempts: [] });
  await insertAttempts(db.pool, attempts);
  await db.pool.query('ANALYZE platform.payment_attempts');

  smtp = await startSmtpServer();
  redis = await createTestRedisPrefix();
  const configPath = await writeConfigWith(join(dir, 'forewarn.yaml'), {
    detectors: { paymentHealth: { confirmSeconds: CONFIRM_SECONDS, resolveSeconds: RESOLVE_SECONDS } },
    notifications: {
      audience: AUDIENCE,
      email: { messageIdDomain: MESSAGE_ID_DOMAIN },
      ops: { emails: [OPS_EMAIL], locale: 'zh-CN', groupWaitSeconds: 0 },
      links: { dashboardUrl: DASHBOARD },
    },
  });
  pipeline = await startInProcess({
    databaseUrl: db.url,
    prefix: redis.prefix,
    configPath,
    smtpUrl: smtp.url,
  });

  // Ticks every 15 s of simulated time until the incident opens; its fan-out is queued by the
  // tick and run by the worker. The warnings must be out before the recovery: only users who
  // were warned hear that it is over.
  const opened = await tickUntil(pipeline.ctx, 'opened', {
    from: OUTAGE_START - 30 * SECOND,
    to: OUTAGE_END,
    stepMs: STEP,
  });
  openedAt = opened.tickAt;
  await waitForPipelineIdle(db.pool, 1);
  const resolved = await tickUntil(pipeline.ctx, 'resolved', {
    from: openedAt + STEP,
    to: HISTORY_TO,
    stepMs: STEP,
  });
  resolvedAt = resolved.tickAt;
  await waitForPipelineIdle(db.pool, 2);

  const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM forewarn.incidents');
  incidentId = rows[0]!.id;
  notifications = await readNotifications(db.pool);
  inbox = await readInbox(db.pool);
  const emails = notifications.filter((n) => n.channel === 'email' && n.status === 'sent');
  received = await smtp.waitForMessages(emails.length, 10_000);
  for (const n of notifications) byMessageId.set(messageIdFor(n.dedupe_key, MESSAGE_ID_DOMAIN), n);
}, 90_000);

afterAll(async () => {
  await pipeline?.close();
  await smtp?.close();
  await redis?.cleanup();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

/** The targeted users at the incident's opening, by the issue's rule. */
const targeted = () =>
  targetedUsers(users, attempts, { channel: CHANNEL, region: REGION, at: openedAt, ...AUDIENCE });
const ofKind = (kind: string) => notifications.filter((n) => n.kind === kind);
const receivedOfKind = (kind: string) =>
  received.filter((m) => byMessageId.get(m.messageId ?? '')?.kind === kind);

describe('an outage of wechat_pay in CN-GD, end to end', () => {
  it('opens one failures incident on wechat_pay in CN-GD, alipay first among the backups, and resolves it', async () => {
    const { rows } = await db.pool.query<{
      subject: { channel: string; region: string };
      kind: string;
      opened_at: Date;
      resolved_at: Date | null;
      backup_channels: string[];
    }>('SELECT subject, kind, opened_at, resolved_at, backup_channels FROM forewarn.incidents');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.subject).toEqual({ channel: CHANNEL, region: REGION });
    expect(rows[0]!.kind).toBe('failures');
    expect(rows[0]!.backup_channels[0]).toBe(BACKUP);
    expect(rows[0]!.opened_at.getTime()).toBe(openedAt);
    expect(rows[0]!.resolved_at?.getTime()).toBe(resolvedAt);
    expect(openedAt).toBeGreaterThan(OUTAGE_START);
    expect(resolvedAt).toBeGreaterThan(OUTAGE_END);
  });

  it('the user base has people on every side of the rule', () => {
    const expected = targeted();
    const ids = new Set(expected.map((u) => u.id));
    for (const id of edges.targeted) expect(ids.has(id), id).toBe(true);
    for (const id of edges.untouched) expect(ids.has(id), id).toBe(false);
    const generated = users.filter((u) => u.id.startsWith('u'));
    const gdActive = generated.filter((u) => u.region === REGION && u.status === 'active');
    // Active CN-GD users who only paid with other channels, and payers of other regions.
    expect(gdActive.filter((u) => !ids.has(u.id)).length).toBeGreaterThan(50);
    expect(generated.filter((u) => u.region !== REGION).length).toBeGreaterThan(100);
    expect(expected.length).toBeGreaterThan(100);
    expect(expected.filter((u) => u.email === null).length).toBeGreaterThan(5);
    expect(expected.filter((u) => speaksEnglish(u.locale)).length).toBeGreaterThan(3);
  });

  it('records exactly one warning per targeted user and channel: email when the user has an address, in-app always', () => {
    const expected = targeted();
    const warnings = ofKind('payment-degraded');
    // A user without an address has the email recorded all the same, withheld ("no address").
    const want = expected
      .flatMap((u) => [`email ${u.id} ${u.email ?? '- cancelled'}`, `inapp ${u.id} -`])
      .sort();
    const got = warnings
      .map((n) => `${n.channel} ${n.user_id} ${n.address ?? (n.channel === 'email' ? `- ${n.status}` : '-')}`)
      .sort();
    expect(got).toEqual(want);
    expect(expected.some((u) => !u.email)).toBe(true);
    expect(duplicates(warnings, (n) => n.dedupe_key)).toEqual([]);
    const sent = warnings.filter((n) => n.address !== null || n.channel !== 'email');
    expect(sent.every((n) => n.status === 'sent' && n.incident_id === incidentId)).toBe(true);
    const locales = new Map(expected.map((u) => [u.id, u.locale]));
    for (const n of warnings) expect(n.locale, n.user_id!).toBe(locales.get(n.user_id!));
  });

  it('delivers each warning email once at the SMTP server, and each in-app warning once in forewarn.inbox', () => {
    const expected = targeted();
    const mails = receivedOfKind('payment-degraded');
    expect(mails.map((m) => m.envelope.to.join(',')).sort()).toEqual(
      expected.flatMap((u) => (u.email ? [u.email] : [])).sort(),
    );
    const rows = inbox.filter((r) => r.kind === 'payment-degraded');
    expect(rows.map((r) => r.user_id).sort()).toEqual(expected.map((u) => u.id).sort());
  });

  it('tells nobody else: other regions, disabled or deleted users, alipay-only payers, stale or failed-only history', () => {
    const expected = new Set(targeted().map((u) => u.id));
    const others = users.filter((u) => !expected.has(u.id));
    const otherIds = new Set(others.map((u) => u.id));
    const otherEmails = new Set(others.flatMap((u) => (u.email ? [u.email] : [])));
    expect(notifications.filter((n) => n.user_id !== null && otherIds.has(n.user_id))).toEqual([]);
    expect(inbox.filter((r) => otherIds.has(r.user_id))).toEqual([]);
    expect(received.filter((m) => m.envelope.to.some((to) => otherEmails.has(to)))).toEqual([]);
    for (const id of edges.untouched)
      expect(
        notifications.some((n) => n.user_id === id),
        id,
      ).toBe(false);
  });

  it("names the backup channel by its display name, in the user's language", () => {
    const locale = new Map(users.map((u) => [u.id, u.locale]));
    const mails = receivedOfKind('payment-degraded');
    expect(mails.length).toBeGreaterThan(0);
    for (const m of mails) {
      const n = byMessageId.get(m.messageId!)!;
      if (speaksEnglish(locale.get(n.user_id!)!)) {
        expect(m.subject).toMatch(
          /^Heads-up: 微信支付 payments are failing in your area — please use 支付宝 for now$/,
        );
        expect(m.text).toContain('please choose 支付宝 at checkout');
      } else {
        expect(m.subject).toBe('【支付提醒】微信支付暂时无法正常付款，建议改用支付宝');
        expect(m.text).toContain('建议付款时改用支付宝');
      }
      expect(m.text).toContain(`channel=${BACKUP}`);
    }
    const mailTo = (id: string) => mails.find((m) => m.envelope.to[0] === `${id}@example.com`);
    expect(mailTo('x02-gd-en')?.subject).toMatch(/^Heads-up:/);
    expect(mailTo('x03-gd-en-us')?.subject).toMatch(/^Heads-up:/);
    expect(mailTo('x05-gd-ja')?.subject).toMatch(/^【支付提醒】/);
    expect(mailTo('x01-gd-zh-29-days')?.subject).toMatch(/^【支付提醒】/);

    for (const row of inbox.filter((r) => r.kind === 'payment-degraded')) {
      if (speaksEnglish(locale.get(row.user_id)!)) {
        expect(row.title).toBe('微信支付 payments are failing');
        expect(row.body).toContain('Please use 支付宝 for now');
      } else {
        expect(row.title).toBe('微信支付暂时无法正常付款');
        expect(row.body).toContain('建议改用支付宝付款');
      }
      expect(row.link).toBe(`https://www.example.com/recharge?channel=${BACKUP}`);
    }
    expect(inbox.find((r) => r.user_id === 'x04-gd-no-email')?.kind).toBe('payment-degraded');
  });

  it('sends the recovery to exactly the warned users, on the channels they were warned on', () => {
    const warned = ofKind('payment-degraded').filter((n) => n.status === 'sent');
    const recovered = ofKind('payment-recovered');
    expect(recovered.map((n) => `${n.channel} ${n.user_id} ${n.address ?? '-'}`).sort()).toEqual(
      warned.map((n) => `${n.channel} ${n.user_id} ${n.address ?? '-'}`).sort(),
    );
    expect(recovered.every((n) => n.status === 'sent')).toBe(true);

    const mails = receivedOfKind('payment-recovered');
    expect(mails.map((m) => m.envelope.to.join(',')).sort()).toEqual(
      warned
        .filter((n) => n.channel === 'email')
        .map((n) => n.address)
        .sort(),
    );
    const locale = new Map(users.map((u) => [u.id, u.locale]));
    for (const m of mails) {
      const n = byMessageId.get(m.messageId!)!;
      expect(m.subject).toBe(
        speaksEnglish(locale.get(n.user_id!)!)
          ? '微信支付 is working normally again'
          : '【支付提醒】微信支付已恢复正常',
      );
    }
    expect(
      inbox
        .filter((r) => r.kind === 'payment-recovered')
        .map((r) => r.user_id)
        .sort(),
    ).toEqual(
      warned
        .filter((n) => n.channel === 'inapp')
        .map((n) => n.user_id)
        .sort(),
    );
  });

  it('alerts ops by email when the incident opens and when it resolves, with the numbers', async () => {
    const { rows } = await db.pool.query<{
      open_evidence: { attempts: number; bad: number; rate: number; baseline: number; windowSeconds: number };
      resolve_evidence: { attempts: number; bad: number; rate: number };
    }>('SELECT open_evidence, resolve_evidence FROM forewarn.incidents');
    const open = rows[0]!.open_evidence;
    const resolve = rows[0]!.resolve_evidence;
    const ops = received.filter((m) => m.envelope.to.includes(OPS_EMAIL));
    expect(ops).toHaveLength(2);
    expect(ofKind('ops-incident-opened').map((n) => [n.address, n.status])).toEqual([[OPS_EMAIL, 'sent']]);
    expect(ofKind('ops-incident-resolved').map((n) => [n.address, n.status])).toEqual([[OPS_EMAIL, 'sent']]);

    const opened = ops.find((m) => byMessageId.get(m.messageId!)?.kind === 'ops-incident-opened')!;
    expect(opened.subject).toBe(
      `[forewarn] 事件开启：wechat_pay @ CN-GD 付款失败 ${open.bad}/${open.attempts}（${pct(open.rate)}%，平时 ${pct(open.baseline)}%）`,
    );
    expect(opened.text).toContain(`付款尝试：${open.attempts} 笔`);
    expect(opened.text).toContain(`失败或超时：${open.bad} 笔（${pct(open.rate)}%）`);
    expect(opened.text).toContain('alipay');
    expect(opened.text).toContain(DASHBOARD.replace('{incidentId}', incidentId));

    const resolved = ops.find((m) => byMessageId.get(m.messageId!)?.kind === 'ops-incident-resolved')!;
    const minutes = Math.round((resolvedAt - openedAt) / MINUTE);
    expect(resolved.subject).toBe(
      `[forewarn] 事件恢复：wechat_pay @ CN-GD 付款失败，持续 ${minutes} 分钟，当前 ${pct(resolve.rate)}%`,
    );
    expect(resolved.text).toContain(`付款尝试：${resolve.attempts} 笔`);
    // "At opening" in the resolved alert must be the numbers that opened the incident.
    expect(resolved.text).toContain(`：${open.bad}/${open.attempts}（${pct(open.rate)}%`);
  });

  it('sends every message once, with a Message-ID derived from its dedupe key', () => {
    expect(duplicates(received, (m) => m.messageId ?? '(none)')).toEqual([]);
    expect(received.every((m) => byMessageId.has(m.messageId ?? ''))).toBe(true);
    const sentEmails = notifications.filter((n) => n.channel === 'email' && n.status === 'sent');
    expect(received).toHaveLength(sentEmails.length);
    // Everything went, but the emails of users without an address (recorded withheld, never tried).
    const noAddress = notifications.filter((n) => n.channel === 'email' && n.address === null);
    expect(noAddress.length).toBeGreaterThan(0);
    expect(countBy(notifications, (n) => n.status)).toEqual(
      new Map([
        ['sent', notifications.length - noAddress.length],
        ['cancelled', noAddress.length],
      ]),
    );
    expect(duplicates(inbox, (r) => r.notification_id)).toEqual([]);
  });
});

describe('forewarn run payment-health --dry-run --format json', () => {
  let fresh: TestDatabase;
  let freshRedis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
  let dryRunSmtp: TestSmtpServer;

  beforeAll(async () => {
    fresh = await createTestDatabase();
    freshRedis = await createTestRedisPrefix();
    dryRunSmtp = await startSmtpServer();
  });

  afterAll(async () => {
    await dryRunSmtp?.close();
    await freshRedis?.cleanup();
    await fresh?.drop();
  });

  it('prints one line per notification the outage would cause, for exactly the targeted users and ops, and writes and sends nothing', async () => {
    // A fresh state opens on the first degraded tick only without confirmation.
    const configPath = await writeConfigWith(join(dir, 'dry-run.yaml'), {
      detectors: { paymentHealth: { confirmSeconds: 0 } },
      notifications: { audience: AUDIENCE, ops: { emails: [OPS_EMAIL], locale: 'zh-CN' } },
    });
    const at = OUTAGE_START + 60 * SECOND;
    const result = await forewarnCli(
      ['run', 'payment-health', '--dry-run', '--format', 'json', '--at', new Date(at).toISOString()],
      {
        DATABASE_URL: fresh.url,
        PLATFORM_DATABASE_URL: db.url,
        FOREWARN_CONFIG: configPath,
        FOREWARN_QUEUE_PREFIX: freshRedis.prefix,
        SMTP_URL: dryRunSmtp.url,
      },
    );
    expect(result.code, `stderr: ${result.stderr}`).toBe(0);
    const lines = result.stdout.split('\n').filter(Boolean);
    const printed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    // The fields the dry run always printed, its kind's category, the subject, and for ops their recipient.
    for (const p of printed)
      expect(Object.keys(p).sort()).toEqual(
        [
          'category',
          'channel',
          'dedupeKey',
          'kind',
          'locale',
          'subject',
          'userId',
          ...(p.userId === null ? ['recipient'] : []),
          ...(p.withheld === undefined ? [] : ['withheld']),
        ].sort(),
      );
    // Only for want of an address: nobody here opted out or is suppressed.
    for (const p of printed.filter((line) => line.withheld !== undefined))
      expect(p).toMatchObject({
        channel: 'email',
        withheld: 'no address: the platform has no email address for this user',
      });

    const expected = targetedUsers(users, attempts, { channel: CHANNEL, region: REGION, at, ...AUDIENCE });
    expect(expected.length).toBeGreaterThan(100);
    const ops = printed.filter((p) => p.kind === 'ops-incident-opened');
    expect(ops).toEqual([
      {
        kind: 'ops-incident-opened',
        userId: null,
        channel: 'email',
        locale: 'zh-CN',
        dedupeKey: expect.stringMatching(new RegExp(`^cause:\\d+:ops-incident-opened:email:${OPS_EMAIL}$`)),
        category: 'ops',
        subject: `${CHANNEL}:${REGION}`,
        recipient: OPS_EMAIL,
      },
    ]);
    const userLines = printed.filter((p) => p.kind !== 'ops-incident-opened');
    const want = expected
      .flatMap((u) => [`email ${u.id} ${u.locale}${u.email ? '' : ' withheld'}`, `inapp ${u.id} ${u.locale}`])
      .sort();
    expect(
      userLines
        .map(
          (p) =>
            `${String(p.channel)} ${String(p.userId)} ${String(p.locale)}${p.withheld === undefined ? '' : ' withheld'}`,
        )
        .sort(),
    ).toEqual(want);
    for (const p of userLines) {
      expect(p.kind).toBe('payment-degraded');
      expect(p.dedupeKey).toMatch(
        new RegExp(`^cause:\\d+:payment-degraded:${String(p.channel)}:${String(p.userId)}$`),
      );
      expect(p).toMatchObject({ category: 'service', subject: `${CHANNEL}:${REGION}` });
    }
    expect(duplicates(printed, (p) => String(p.dedupeKey))).toEqual([]);

    // Nothing recorded, queued or sent.
    expect(await forewarnCounts(fresh.pool)).toEqual({
      incidents: 0,
      incident_events: 0,
      detector_state: 0,
      subject_state: 0,
      detector_runs: 0,
    });
    const { rows } = await fresh.pool.query<{ notifications: number; inbox: number; fanouts: number }>(
      `SELECT (SELECT count(*)::int FROM forewarn.notifications) AS notifications,
              (SELECT count(*)::int FROM forewarn.inbox) AS inbox,
              (SELECT count(*)::int FROM forewarn.fanouts) AS fanouts`,
    );
    expect(rows[0]).toEqual({ notifications: 0, inbox: 0, fanouts: 0 });
    expect(await keysUnder(freshRedis.prefix)).toEqual([]);
    expect(dryRunSmtp.messages).toEqual([]);
    expect(dryRunSmtp.connectionsOpened).toBe(0);
  });
});
