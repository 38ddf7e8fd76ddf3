// One-click unsubscribe end to end, on real PostgreSQL, a real SMTP server (smtp-server) and the
// HTTP role over real HTTP: a payment warning (category service) fanned out by email arrives
// with List-Unsubscribe (https) and List-Unsubscribe-Post, and the same link in its text and
// HTML; a mail provider's one-click POST to that URL records the opt-out; GET confirms in the
// user's language; a tampered, expired or wrong-purpose token changes nothing; after a rotation
// the old secret's links still work while it is listed in FOREWARN_LINK_SECRETS_OLD, and not
// once it is removed; a security check-up and an ops alert carry no List-Unsubscribe at all.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { linkKeyring, signLinkToken, type LinkClaims, type LinkKeyring } from '../../lib/links.ts';
import { withUnsubscribeLink } from '../../lib/messages/unsubscribe.ts';
import { fanOutCauseEvent } from '../../lib/notifications/fanout.ts';
import type { NotificationDraft } from '../../lib/notifications/store.ts';
import { renderNotification } from '../../lib/notifications/render.ts';
import { emailMessageFor } from '../../lib/channels/email-channel.ts';
import { readEnv } from '../../lib/env.ts';
import { referencePlatform } from '../../sim/platform.ts';
import { seedPlatform } from '../../sim/load.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { templateKinds } from '../../templates/kinds.ts';
import {
  attempt,
  insertAttempts,
  LINK_KEYS,
  LINK_SECRET,
  OPS_EMAIL,
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
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type ReceivedMessage, type TestSmtpServer } from '../support/smtp.ts';

const PUBLIC_URL = 'https://notify.example.com/fw';
const NEW_SECRET = 'the-rotated-link-secret-0123456789abcdefghij';
const ZH = user('u-unsub-zh', { locale: 'zh-CN' });
const EN = user('u-unsub-en', { locale: 'en-US' });
const CHECKUP_TO = 'checkup@example.com';

let dir: string;
let db: TestDatabase;
let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let smtp: TestSmtpServer;
let pipeline: InProcessPipeline;
const servers: RunningHttpServer[] = [];
const logs = captureLogs('info');
/** The payment warning each user received, by user id. */
const received = new Map<string, ReceivedMessage>();
let checkup: ReceivedMessage;
let opsAlert: ReceivedMessage;

/** The HTTP role with a keyring, as FOREWARN_LINK_SECRET and FOREWARN_LINK_SECRETS_OLD build it. */
async function httpRole(keys: LinkKeyring, nowMs = Date.now()): Promise<RunningHttpServer> {
  const server = await startHttpServer(
    {
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      linkKeys: keys,
      logger: logs.logger,
      now: () => nowMs,
    },
    { host: '127.0.0.1', port: 0 },
  );
  servers.push(server);
  return server;
}

/** The link's path and query, on a local HTTP role (the public URL is a proxy in front of it). */
function onRole(server: RunningHttpServer, link: string): URL {
  const url = new URL(link);
  expect(url.pathname).toBe('/fw/unsubscribe');
  return new URL(`/unsubscribe${url.search}`, server.address);
}

const oneClick = (url: URL, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: 'List-Unsubscribe=One-Click',
  });

async function preferences(): Promise<
  Array<{ user_id: string; category: string; channel: string; opted_out: boolean; source: string }>
> {
  const { rows } = await db.pool.query(
    'SELECT user_id, category, channel, opted_out, source FROM forewarn.preferences ORDER BY user_id, category, channel',
  );
  return rows;
}

function headerLink(message: ReceivedMessage): string {
  const header = message.headers.get('list-unsubscribe');
  const match = /^<(https:\/\/[^>]+)>$/.exec(header ?? '');
  if (!match) throw new Error(`expected List-Unsubscribe: <https://…>, got ${String(header)}`);
  return match[1]!;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-unsubscribe-'));
  db = await createTestDatabase();
  redis = await createTestRedisPrefix();
  smtp = await startSmtpServer();
  const client = await db.pool.connect();
  try {
    await createPlatformSchema(client, 'platform');
    await seedPlatform(client, 'platform', referencePlatform(), [ZH, EN]);
  } finally {
    client.release();
  }
  const openedAt = Date.now() - 60_000;
  await insertAttempts(db.pool, [
    attempt(1, ZH.id, 'wechat_pay', 'succeeded', openedAt - 86_400_000),
    attempt(2, EN.id, 'wechat_pay', 'succeeded', openedAt - 86_400_000),
  ]);
  const configPath = await writeConfigWith(join(dir, 'forewarn.yaml'), {
    notifications: { userChannels: ['email'], ops: { groupWaitSeconds: 0 } },
  });
  pipeline = await startInProcess({
    databaseUrl: db.url,
    prefix: redis.prefix,
    configPath,
    smtpUrl: smtp.url,
    publicUrl: PUBLIC_URL,
  });
  const ctx = pipeline.ctx;
  // A payment warning, fanned out as the fan-out job does it.
  const opened = await recordCauseChange(db.pool, {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel: 'wechat_pay', region: 'CN-GD' },
    subjectKey: 'wechat_pay:CN-GD',
    kind: 'failures',
    at: openedAt,
    evidence: templateKinds['ops-incident-opened'].sample.evidence,
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1]);
  await fanOutCauseEvent(ctx, opened.eventId, (ids, key) => enqueueDeliveries(ctx, ids, `fanout@${key}`));
  await waitForPipelineIdle(db.pool, 0, 30_000);
  // A security check-up (its stale rule needs an inactivity period: it is rendered and sent as
  // delivery does it, its data through the same step the fan-out puts every message's through).
  const draft: NotificationDraft = {
    dedupeKey: 'test:unsubscribe:security-checkup',
    cause: 'test:unsubscribe',
    incidentId: null,
    category: 'security',
    kind: 'security-checkup',
    channel: 'email',
    audience: 'user',
    userId: ZH.id,
    address: CHECKUP_TO,
    locale: 'zh-CN',
    data: withUnsubscribeLink(
      ctx,
      { category: 'security', channel: 'email', userId: ZH.id },
      { ...(templateKinds['security-checkup'].sample as Record<string, unknown>) },
      Date.now(),
    ),
  };
  const rendered = renderNotification(await ctx.templates(), draft);
  await ctx.email().send(emailMessageFor(draft, rendered, 'notify.example.com'));
  const messages = await smtp.waitForMessages(4, 30_000);
  for (const m of messages) {
    const to = m.envelope.to[0];
    if (to === CHECKUP_TO) checkup = m;
    if (to === OPS_EMAIL) opsAlert = m;
    if (to === ZH.email) received.set(ZH.id, m);
    if (to === EN.email) received.set(EN.id, m);
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await pipeline?.close();
  await smtp?.close();
  await redis?.cleanup();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.preferences');
});

describe('a payment warning by email', () => {
  it('carries List-Unsubscribe with an https URL and List-Unsubscribe-Post, and the link in its text and HTML', () => {
    expect([...received.keys()].sort()).toEqual([EN.id, ZH.id].sort());
    for (const [, message] of received) {
      const link = headerLink(message);
      expect(link.startsWith(`${PUBLIC_URL}/unsubscribe?token=`)).toBe(true);
      expect(message.headers.get('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
      expect(message.text).toContain(link);
      // In the HTML the link's & would be escaped; a token has none, so it appears as it is.
      expect(message.html).toContain(`href="${link}"`);
    }
    expect(received.get(ZH.id)!.text).toContain('一键退订');
    expect(received.get(EN.id)!.text).toContain('Unsubscribe with one click');
  });

  it('is stopped by a one-click POST to that URL: an opt-out of service email, recorded as from unsubscribe', async () => {
    const role = await httpRole(LINK_KEYS);
    const url = onRole(role, headerLink(received.get(ZH.id)!));
    const response = await oneClick(url);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('您将不再通过邮件收到付款和库存提醒。');
    expect(await preferences()).toEqual([
      { user_id: ZH.id, category: 'service', channel: 'email', opted_out: true, source: 'unsubscribe' },
    ]);
    // Again: the same answer, the same single row.
    const again = await oneClick(url, { accept: 'application/json' });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({
      status: 'done',
      purpose: 'unsubscribe',
      category: 'service',
      channel: 'email',
    });
    expect(await preferences()).toHaveLength(1);
  });

  it("GET shows a confirmation in the user's language, with a button that posts, and changes nothing", async () => {
    const role = await httpRole(LINK_KEYS);
    const zh = await fetch(onRole(role, headerLink(received.get(ZH.id)!)));
    expect(zh.status).toBe(200);
    const zhPage = await zh.text();
    expect(zhPage).toContain('<html lang="zh-CN">');
    expect(zhPage).toContain('不再通过邮件接收付款和库存提醒吗？');
    expect(zhPage).toMatch(
      /<form method="post" action="unsubscribe">[\s\S]*<button type="submit">确认退订<\/button>/,
    );
    const en = await fetch(onRole(role, headerLink(received.get(EN.id)!)));
    const enPage = await en.text();
    expect(enPage).toContain('<html lang="en">');
    expect(enPage).toContain('Stop payment and stock warnings by email?');
    expect(enPage).toContain('<button type="submit">Unsubscribe</button>');
    expect(await preferences()).toEqual([]);
    // The page's button: the token in the form, not in the URL.
    const token = new URL(headerLink(received.get(EN.id)!)).searchParams.get('token')!;
    const button = await fetch(new URL('/unsubscribe', role.address), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(button.status).toBe(200);
    expect(await button.text()).toContain('You will no longer get payment and stock warnings by email.');
    expect(await preferences()).toEqual([
      { user_id: EN.id, category: 'service', channel: 'email', opted_out: true, source: 'unsubscribe' },
    ]);
  });

  it('takes the one-click POST as multipart/form-data too (RFC 8058 prefers it)', async () => {
    const role = await httpRole(LINK_KEYS);
    const form = new FormData();
    form.set('List-Unsubscribe', 'One-Click');
    const response = await fetch(onRole(role, headerLink(received.get(ZH.id)!)), {
      method: 'POST',
      body: form,
    });
    expect(response.status).toBe(200);
    expect(await preferences()).toHaveLength(1);
  });
});

describe('a refused unsubscribe link changes nothing', () => {
  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const claims = (): LinkClaims => ({
    userId: ZH.id,
    purpose: 'unsubscribe',
    subject: 'promotional/email',
    expiresAt: nowSeconds() + 3_600,
  });
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  const alter = (token: string, index: number, value: string) =>
    token
      .split('.')
      .map((part, i) => (i === index ? value : part))
      .join('.');

  const cases: Array<[string, () => string, number, string]> = [
    ['malformed', () => 'not-a-token', 400, 'malformed'],
    [
      'tampered (another user)',
      () => alter(signLinkToken(claims(), LINK_KEYS), 2, b64(EN.id)),
      403,
      'forged',
    ],
    [
      'tampered (another category)',
      () => alter(signLinkToken(claims(), LINK_KEYS), 4, b64('service/email')),
      403,
      'forged',
    ],
    [
      'forged (another secret)',
      () => signLinkToken(claims(), linkKeyring(`${LINK_SECRET}-other`)),
      403,
      'forged',
    ],
    [
      'wrong purpose (a restock stop link)',
      () => signLinkToken({ ...claims(), purpose: 'restock-stop', subject: 'p1' }, LINK_KEYS),
      403,
      'wrong-purpose',
    ],
    [
      'expired',
      () => signLinkToken({ ...claims(), expiresAt: nowSeconds() - 3_600 }, LINK_KEYS),
      410,
      'expired',
    ],
    [
      'security in-app (never unsubscribable)',
      () => signLinkToken({ ...claims(), subject: 'security/inapp' }, LINK_KEYS),
      400,
      'malformed',
    ],
    [
      'an unknown category',
      () => signLinkToken({ ...claims(), subject: 'everything/email' }, LINK_KEYS),
      400,
      'malformed',
    ],
  ];

  it.each(cases)(
    '%s: GET and one-click POST answer %i (%s), as a page or as JSON',
    async (_name, token, status, reason) => {
      const role = await httpRole(LINK_KEYS);
      const url = new URL('/unsubscribe', role.address);
      url.searchParams.set('token', token());
      const get = await fetch(url);
      expect(get.status).toBe(status);
      expect(get.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const post = await oneClick(url, { accept: 'application/json' });
      expect(post.status).toBe(status);
      expect(await post.json()).toMatchObject({ error: 'FW_LINK_INVALID', reason });
      expect(await preferences()).toEqual([]);
    },
  );
});

describe('rotating the link secret', () => {
  it('an email signed with the old secret still unsubscribes while FOREWARN_LINK_SECRETS_OLD lists it', async () => {
    const env = readEnv({ FOREWARN_LINK_SECRET: NEW_SECRET, FOREWARN_LINK_SECRETS_OLD: LINK_SECRET });
    const role = await httpRole(linkKeyring(env.linkSecret!, env.oldLinkSecrets));
    const response = await oneClick(onRole(role, headerLink(received.get(EN.id)!)), {
      accept: 'application/json',
    });
    expect(response.status).toBe(200);
    expect(await preferences()).toEqual([
      { user_id: EN.id, category: 'service', channel: 'email', opted_out: true, source: 'unsubscribe' },
    ]);
  });

  it('and is refused, changing nothing, once the old secret is removed', async () => {
    const env = readEnv({ FOREWARN_LINK_SECRET: NEW_SECRET });
    const role = await httpRole(linkKeyring(env.linkSecret!, env.oldLinkSecrets));
    const response = await oneClick(onRole(role, headerLink(received.get(EN.id)!)), {
      accept: 'application/json',
    });
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ reason: 'forged' });
    expect(await preferences()).toEqual([]);
  });
});

describe('security and ops emails', () => {
  it('carry no List-Unsubscribe and no unsubscribe link', () => {
    for (const message of [checkup, opsAlert]) {
      expect(message).toBeDefined();
      expect(message.headers.has('list-unsubscribe')).toBe(false);
      expect(message.headers.has('list-unsubscribe-post')).toBe(false);
      expect(message.text).not.toContain('/unsubscribe');
    }
  });
});
