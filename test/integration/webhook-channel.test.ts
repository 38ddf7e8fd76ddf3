// The webhook channel (lib/channels/webhook-channel.ts) against real PostgreSQL and local HTTP
// receivers (node:http on port 0) that check what each service expects:
// - json: the receiver verifies X-Forewarn-Signature as README "Webhooks" tells receivers to,
//   over the raw body, and rejects a replay; the idempotency key is the dedupe key;
// - a 500 is retried and then delivered (the same key both times), a 400 fails at once with the
//   reason, a receiver that does not answer in time is retried, a robot's busy errcode is
//   retried and any other errcode fails;
// - wecom, dingtalk (its signed URL recomputed by the receiver) and slack bodies;
// - an ops alert recorded for the ops addresses and targets reaches both the SMTP sink and the
//   webhook through the ops-alerts workers.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enqueueDeliveries } from '../../jobs/deliver-notifications.ts';
import type { ChannelEnvironment } from '../../lib/channels/channel.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import type { WebhookTarget } from '../../lib/config/webhooks.ts';
import { deliverNotifications, type DeliveryContext } from '../../lib/notifications/deliver.ts';
import type { CauseEvent } from '../../lib/messages/kind.ts';
import { findMessageKind } from '../../lib/messages/registry.ts';
import { kindBatches } from '../../lib/notifications/fanout.ts';
import { feedAlertDrafts } from '../../lib/notifications/feed-alerts.ts';
import { insertNotifications, type NotificationDraft } from '../../lib/notifications/store.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { OPS_EMAIL, readNotifications, startInProcess, writeConfigWith } from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  waitFor,
  type TestDatabase,
} from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const JSON_SECRET = 'json-secret-0123456789abcdef';
const DINGTALK_SECRET = 'SEC0123456789abcdef0123456789abcdef';
const SECRETS: Record<string, string> = {
  FW_TEST_JSON_SECRET: JSON_SECRET,
  FW_TEST_DINGTALK_SECRET: DINGTALK_SECRET,
};
const environment: ChannelEnvironment = { secret: (v) => SECRETS[v], production: false };

/** One request as the receiver got it. */
interface Received {
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  raw: string;
}

/** What the receiver answers: a status and body, after a delay. */
interface Answer {
  status: number;
  body?: string;
  delayMs?: number;
}

/** A local receiver: records every request; answers from a queue per path, then 200. */
class Receiver {
  readonly received: Received[] = [];
  private readonly answers = new Map<string, Answer[]>();
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://localhost');
        this.received.push({
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        const answer = this.answers.get(url.pathname)?.shift() ?? { status: 200 };
        const reply = () => {
          if (res.destroyed) return;
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(answer.body ?? '');
        };
        if (answer.delayMs) setTimeout(reply, answer.delayMs);
        else reply();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  answer(path: string, ...answers: Answer[]): void {
    this.answers.set(path, answers);
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  reset(): void {
    this.received.length = 0;
    this.answers.clear();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * A receiver's check of the json format, as README "Webhooks" documents it: HMAC-SHA256 of
 * "<t>.<raw body>" with the shared secret, compared in constant time, and `t` at most five
 * minutes from the receiver's clock (an older one is a replay).
 */
function verifyForewarnSignature(
  raw: string,
  header: string | undefined,
  secret: string,
  nowSeconds: number,
): { ok: true; t: number } | { ok: false; why: string } {
  const parts = Object.fromEntries((header ?? '').split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return { ok: false, why: 'malformed' };
  if (Math.abs(nowSeconds - t) > 300) return { ok: false, why: 'replay' };
  const expected = createHmac('sha256', secret).update(`${t}.${raw}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, why: 'forged' };
  return { ok: true, t };
}

const opened = templateKinds['ops-incident-opened'].sample;
let seq = 0;
function opsDraft(target: string, overrides: Partial<NotificationDraft> = {}): NotificationDraft {
  seq += 1;
  const incidentId = String(7_000 + seq);
  return {
    dedupeKey: `cause:${incidentId}:ops-incident-opened:webhook:${target}`,
    cause: `cause:${incidentId}`,
    incidentId,
    kind: 'ops-incident-opened',
    channel: 'webhook',
    audience: 'ops',
    userId: null,
    address: target,
    locale: 'en',
    category: 'ops',
    data: { ...opened, incidentId },
    ...overrides,
  };
}

/** The draft rendered as its email: the copy the webhook carries. */
const emailOf = (d: NotificationDraft) =>
  templates.render({ kind: 'ops-incident-opened', channel: 'email', locale: 'en', data: d.data as never });

let db: TestDatabase;
let receiver: Receiver;
let templates: TemplateStore;
let base: Config;

const target = (t: Partial<WebhookTarget> & Pick<WebhookTarget, 'id' | 'format'>): WebhookTarget => ({
  timeoutMs: 2_000,
  blocks: false,
  ...t,
});

function configWith(targets: WebhookTarget[]): Config {
  return {
    ...base,
    notifications: {
      ...base.notifications,
      retry: { ...base.notifications.retry, maxAttempts: 3 },
      webhooks: { targets },
    },
  };
}

function context(config: Config): DeliveryContext & { logs: ReturnType<typeof captureLogs> } {
  const logs = captureLogs('info');
  return {
    db: db.pool,
    config: () => config,
    logger: logs.logger,
    templates,
    channels: {
      email: () => {
        throw new Error('no email in these tests');
      },
      environment,
    },
    workerId: 'test:webhook',
    logs,
  };
}

async function deliver(config: Config, drafts: NotificationDraft[]) {
  const ids = await insertNotifications(db.pool, drafts);
  const ctx = context(config);
  return { ids, ctx, outcome: await deliverNotifications(ctx, ids) };
}

async function row(dedupeKey: string) {
  return (await readNotifications(db.pool)).find((r) => r.dedupe_key === dedupeKey)!;
}

/** Makes a retried row due now, as its retry job would find it. */
async function dueNow(dedupeKey: string): Promise<void> {
  await db.pool.query('UPDATE forewarn.notifications SET next_attempt_at = now() WHERE dedupe_key = $1', [
    dedupeKey,
  ]);
}

beforeAll(async () => {
  receiver = new Receiver();
  [db, , templates, base] = await Promise.all([
    createTestDatabase(),
    receiver.start(),
    TemplateStore.load(),
    loadConfigFile('config/forewarn.yaml'),
  ]);
});

afterAll(async () => {
  await receiver?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.notifications CASCADE');
  receiver.reset();
});

describe('the json format', () => {
  const json = () =>
    target({ id: 'gateway', url: `${receiver.base}/json`, format: 'json', secretEnv: 'FW_TEST_JSON_SECRET' });

  it('is signed so that the receiver verifies it, and carries the email copy and a stable id', async () => {
    const d = opsDraft('gateway');
    const before = Math.floor(Date.now() / 1000);
    const { outcome } = await deliver(configWith([json()]), [d]);

    expect(outcome).toMatchObject({ claimed: 1, sent: 1, failed: 0, retries: [] });
    expect((await row(d.dedupeKey)).status).toBe('sent');
    const [request] = receiver.at('/json');
    const header = request!.headers['x-forewarn-signature'] as string;
    const verified = verifyForewarnSignature(
      request!.raw,
      header,
      JSON_SECRET,
      Math.floor(Date.now() / 1000),
    );
    expect(verified).toMatchObject({ ok: true });
    expect(Number(request!.headers['x-forewarn-timestamp'])).toBe((verified as { t: number }).t);
    expect((verified as { t: number }).t).toBeGreaterThanOrEqual(before);
    // The same check refuses what the signature does not cover: another body, another secret, an old t.
    expect(
      verifyForewarnSignature(request!.raw.replace('OPENED', 'CLOSED'), header, JSON_SECRET, before),
    ).toEqual({
      ok: false,
      why: 'forged',
    });
    expect(verifyForewarnSignature(request!.raw, header, 'another-secret', before)).toMatchObject({
      ok: false,
    });
    expect(
      verifyForewarnSignature(request!.raw, header, JSON_SECRET, (verified as { t: number }).t + 301),
    ).toEqual({
      ok: false,
      why: 'replay',
    });
    expect(request!.headers['idempotency-key']).toBe(d.dedupeKey);
    expect(request!.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(request!.raw) as Record<string, unknown>;
    const email = emailOf(d);
    expect(body).toMatchObject({
      id: d.dedupeKey,
      kind: 'ops-incident-opened',
      category: 'ops',
      audience: 'ops',
      userId: null,
      locale: 'en',
      subject: email.subject,
      text: email.text,
    });
    // The secret itself is nowhere in what was sent.
    expect(JSON.stringify(request)).not.toContain(JSON_SECRET);
  });

  it('retries a 500 and then delivers it, with the same idempotency key both times', async () => {
    receiver.answer('/json', { status: 500, body: '{"error":"database down"}' });
    const d = opsDraft('gateway');
    const config = configWith([json()]);
    const first = await deliver(config, [d]);

    expect(first.outcome).toMatchObject({ sent: 0, failed: 0 });
    expect(first.outcome.retries).toHaveLength(1);
    expect(await row(d.dedupeKey)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'webhook "gateway" answered 500: {"error":"database down"}',
    });
    expect(
      first.ctx.logs
        .lines()
        .filter((l) => l.channel === 'webhook')
        .map((l) => [l.level, l.msg]),
    ).toEqual([['warn', 'delivery failed; will retry']]);

    await dueNow(d.dedupeKey);
    const again = await deliverNotifications(first.ctx, first.ids);
    expect(again).toMatchObject({ claimed: 1, sent: 1, retries: [] });
    expect(await row(d.dedupeKey)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(receiver.at('/json').map((r) => r.headers['idempotency-key'])).toEqual([d.dedupeKey, d.dedupeKey]);
  });

  it('fails a 400 at once with the reason, and never tries it again', async () => {
    receiver.answer('/json', { status: 400, body: 'unknown field "kind"' });
    const d = opsDraft('gateway');
    const { outcome } = await deliver(configWith([json()]), [d]);

    expect(outcome).toMatchObject({ claimed: 1, sent: 0, failed: 1, retries: [] });
    expect(await row(d.dedupeKey)).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: 'webhook "gateway" answered 400: unknown field "kind"',
    });
    expect(receiver.at('/json')).toHaveLength(1);
  });

  it('retries a receiver that does not answer within the timeout, then delivers it', async () => {
    receiver.answer('/json', { status: 200, delayMs: 1_500 });
    const d = opsDraft('gateway');
    const config = configWith([{ ...json(), timeoutMs: 300 }]);
    const started = Date.now();
    const first = await deliver(config, [d]);

    expect(Date.now() - started).toBeLessThan(1_400);
    expect(first.outcome.retries).toHaveLength(1);
    expect(await row(d.dedupeKey)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'webhook "gateway" did not answer within 300 ms',
    });
    await dueNow(d.dedupeKey);
    expect(await deliverNotifications(first.ctx, first.ids)).toMatchObject({ sent: 1 });
  });

  it('fails a message whose target is not configured, or whose secret variable is unset, naming it', async () => {
    const lost = opsDraft('nowhere');
    const unsigned = opsDraft('gateway');
    const config = configWith([{ ...json(), secretEnv: 'FW_TEST_UNSET_SECRET' }]);
    const { outcome } = await deliver(config, [lost, unsigned]);

    expect(outcome).toMatchObject({ sent: 0, failed: 2 });
    expect((await row(lost.dedupeKey)).last_error).toBe(
      'no webhook target "nowhere" in notifications.webhooks.targets',
    );
    expect((await row(unsigned.dedupeKey)).last_error).toBe(
      'webhook "gateway": environment variable FW_TEST_UNSET_SECRET is not set (its json signing secret)',
    );
    expect(receiver.received).toEqual([]);
  });
});

describe('the chat robots', () => {
  it('wecom: the markdown body its group robot takes, to the URL with its key', async () => {
    receiver.answer('/cgi-bin/webhook/send', { status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
    const d = opsDraft('ops-wecom');
    const url = `${receiver.base}/cgi-bin/webhook/send?key=robot-key-1`;
    const { outcome } = await deliver(configWith([target({ id: 'ops-wecom', url, format: 'wecom' })]), [d]);

    expect(outcome).toMatchObject({ sent: 1 });
    const [request] = receiver.at('/cgi-bin/webhook/send');
    expect(request!.query.get('key')).toBe('robot-key-1');
    const body = JSON.parse(request!.raw) as { msgtype: string; markdown: { content: string } };
    expect(Object.keys(body).sort()).toEqual(['markdown', 'msgtype']);
    expect(body.msgtype).toBe('markdown');
    expect(Object.keys(body.markdown)).toEqual(['content']);
    const email = emailOf(d);
    expect(body.markdown.content.startsWith(`**${email.subject}**\n\n`)).toBe(true);
    expect(body.markdown.content).toContain(email.text);
    expect(Buffer.byteLength(body.markdown.content, 'utf8')).toBeLessThanOrEqual(4096);
  });

  it('wecom: a busy errcode is retried, any other errcode fails with it', async () => {
    receiver.answer(
      '/cgi-bin/webhook/send',
      { status: 200, body: '{"errcode":45009,"errmsg":"api freq out of limit"}' },
      { status: 200, body: '{"errcode":93000,"errmsg":"invalid webhook url"}' },
    );
    const url = `${receiver.base}/cgi-bin/webhook/send?key=k`;
    const config = configWith([target({ id: 'ops-wecom', url, format: 'wecom' })]);
    const busy = opsDraft('ops-wecom');
    const bad = opsDraft('ops-wecom');
    const first = await deliver(config, [busy]);
    expect(first.outcome.retries).toHaveLength(1);
    expect((await row(busy.dedupeKey)).last_error).toBe(
      'webhook "ops-wecom" refused it with errcode 45009: {"errcode":45009,"errmsg":"api freq out of limit"}',
    );
    const second = await deliver(config, [bad]);
    expect(second.outcome).toMatchObject({ failed: 1, retries: [] });
    expect(await row(bad.dedupeKey)).toMatchObject({
      status: 'failed',
      last_error:
        'webhook "ops-wecom" refused it with errcode 93000: {"errcode":93000,"errmsg":"invalid webhook url"}',
    });
  });

  it('dingtalk: the signed URL the robot recomputes (timestamp in ms, sign), and its markdown body', async () => {
    // DingTalk's check: sign = urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret))),
    // timestamp within an hour; the receiver answers as DingTalk does.
    const d = opsDraft('ops-dingtalk');
    const url = `${receiver.base}/robot/send?access_token=token-1`;
    const config = configWith([
      target({ id: 'ops-dingtalk', url, format: 'dingtalk', secretEnv: 'FW_TEST_DINGTALK_SECRET' }),
    ]);
    receiver.answer('/robot/send', { status: 200, body: '{"errcode":0,"errmsg":"ok"}' });
    const before = Date.now();
    const { outcome } = await deliver(config, [d]);

    expect(outcome).toMatchObject({ sent: 1 });
    const [request] = receiver.at('/robot/send');
    expect(request!.query.get('access_token')).toBe('token-1');
    const timestamp = request!.query.get('timestamp')!;
    expect(Number(timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(timestamp)).toBeLessThanOrEqual(Date.now());
    const expected = createHmac('sha256', DINGTALK_SECRET)
      .update(`${timestamp}\n${DINGTALK_SECRET}`)
      .digest('base64');
    // URLSearchParams decodes the query: what arrives decoded is the base64 itself.
    expect(request!.query.get('sign')).toBe(expected);
    expect(new URL(`http://x${request!.path}?${request!.query.toString()}`).search).toContain(
      `sign=${encodeURIComponent(expected)}`,
    );
    const body = JSON.parse(request!.raw) as { msgtype: string; markdown: { title: string; text: string } };
    const email = emailOf(d);
    expect(body.msgtype).toBe('markdown');
    expect(body.markdown.title).toBe(email.subject);
    expect(body.markdown.text).toContain(email.text);
  });

  it('slack: {"text"} escaped as Slack asks, and Block Kit blocks when the target wants them', async () => {
    const d = opsDraft('ops-slack', { data: { ...opened, channelName: 'A<B & C>' } });
    const plain = target({ id: 'ops-slack', url: `${receiver.base}/services/T1/B1/x`, format: 'slack' });
    const withBlocks = target({
      id: 'ops-slack-blocks',
      url: `${receiver.base}/services/T2/B2/y`,
      format: 'slack',
      blocks: true,
    });
    receiver.answer('/services/T1/B1/x', { status: 200, body: 'ok' });
    const e = opsDraft('ops-slack-blocks');
    const { outcome } = await deliver(configWith([plain, withBlocks]), [d, e]);

    expect(outcome).toMatchObject({ sent: 2 });
    const [first] = receiver.at('/services/T1/B1/x');
    const body = JSON.parse(first!.raw) as { text: string; blocks?: unknown };
    expect(Object.keys(body)).toEqual(['text']);
    expect(body.text).toContain('A&lt;B &amp; C&gt;');
    expect(body.text).not.toContain('A<B');
    const [second] = receiver.at('/services/T2/B2/y');
    const rich = JSON.parse(second!.raw) as {
      text: string;
      blocks: Array<{ type: string; text: { type: string; text: string } }>;
    };
    const email = emailOf(e);
    expect(rich.text).toContain(
      email.subject!.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'),
    );
    expect(rich.blocks.map((b) => [b.type, b.text.type])).toEqual([
      ['header', 'plain_text'],
      ['section', 'mrkdwn'],
    ]);
    expect(rich.blocks[0]!.text.text).toBe(email.subject!.slice(0, 150));
  });
});

describe('an ops alert', () => {
  let smtp: TestSmtpServer;
  let dir: string;

  /** The pipeline with the ops address and the ops webhook "ops-hook", groups sent when due. */
  async function opsPipeline() {
    process.env.FW_TEST_JSON_SECRET = JSON_SECRET;
    const redis = await createTestRedisPrefix();
    const configPath = await writeConfigWith(join(dir, `forewarn-${++seq}.yaml`), {
      notifications: {
        ops: { emails: [OPS_EMAIL], webhooks: ['ops-hook'], groupWaitSeconds: 0 },
        webhooks: {
          targets: [
            { id: 'ops-hook', url: `${receiver.base}/ops`, format: 'json', secretEnv: 'FW_TEST_JSON_SECRET' },
          ],
        },
      },
    });
    const pipeline = await startInProcess({
      databaseUrl: db.url,
      prefix: redis.prefix,
      configPath,
      smtpUrl: smtp.url,
    });
    return {
      pipeline,
      async close() {
        await pipeline.close();
        await redis.cleanup();
        delete process.env.FW_TEST_JSON_SECRET;
      },
    };
  }

  it('is fanned out to the ops address on email and to the ops target on the webhook, each on its own', async () => {
    const { pipeline, close } = await opsPipeline();
    try {
      const event: CauseEvent = {
        eventId: '77',
        causeId: '12',
        type: 'opened',
        seq: 0,
        payload: {
          incidentId: '12',
          detector: 'inventory',
          subjectKey: 'steam-100',
          subject: { productId: 'steam-100' },
          kind: 'low-stock',
          type: 'opened',
          at: Date.now(),
          evidence: {},
          productId: 'steam-100',
          productName: 'Steam 充值卡 100 元',
          stock: 8,
          threshold: 10,
          salesPerDay: 2.5,
          daysOfCover: 3.2,
          pendingOrders: 4,
          pendingUnits: 6,
          reason: 'threshold',
        } as never,
      };
      const drafts = [];
      for await (const batch of kindBatches(pipeline.ctx, event, findMessageKind('ops-stock-low')!, null, 0))
        drafts.push(...batch.drafts);
      expect(drafts.map((d) => [d.dedupeKey, d.channel, d.address, d.audience])).toEqual([
        [`cause:12:ops-stock-low:email:${OPS_EMAIL}`, 'email', OPS_EMAIL, 'ops'],
        ['cause:12:ops-stock-low:webhook:ops-hook', 'webhook', 'ops-hook', 'ops'],
      ]);
      const ids = await insertNotifications(db.pool, drafts);
      await enqueueDeliveries(pipeline.ctx, ids, `test-webhook-fanout-${Date.now()}`);
      await waitFor('both ops alerts sent', async () => {
        const rows = await readNotifications(db.pool);
        return rows.length === 2 && rows.every((r) => r.status === 'sent');
      });
      expect(smtp.messages.map((m) => m.envelope.to)).toEqual([[OPS_EMAIL]]);
      const [request] = receiver.at('/ops');
      expect(receiver.at('/ops')).toHaveLength(1);
      expect((JSON.parse(request!.raw) as { subject: string }).subject).toBe(smtp.messages[0]!.subject);
    } finally {
      await close();
    }
  });

  beforeAll(async () => {
    [smtp, dir] = await Promise.all([startSmtpServer(), mkdtemp(join(tmpdir(), 'forewarn-webhook-'))]);
  });

  beforeEach(() => {
    smtp.messages.length = 0;
  });

  afterAll(async () => {
    await smtp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reaches the ops address by email and the ops webhook, through the ops-alerts workers', async () => {
    const { pipeline, close } = await opsPipeline();
    try {
      const now = Date.now();
      const drafts = feedAlertDrafts(
        pipeline.ctx.config().notifications,
        pipeline.ctx.config().timezone,
        'test-detector',
        { silent: true, started: true, ended: false, since: now - 600_000, silentPairs: 5, seenPairs: 6 },
        now,
        0,
      );
      expect(drafts.map((d) => [d.channel, d.address])).toEqual([
        ['email', OPS_EMAIL],
        ['webhook', 'ops-hook'],
      ]);
      const ids = await insertNotifications(db.pool, drafts);
      await enqueueDeliveries(pipeline.ctx, ids, `test-webhook-${now}`);

      await waitFor('both ops alerts sent', async () => {
        const rows = await readNotifications(db.pool);
        return rows.length === 2 && rows.every((r) => r.status === 'sent');
      });
      expect(smtp.messages.map((m) => m.envelope.to)).toEqual([[OPS_EMAIL]]);
      const [request] = receiver.at('/ops');
      expect(receiver.at('/ops')).toHaveLength(1);
      expect(
        verifyForewarnSignature(
          request!.raw,
          request!.headers['x-forewarn-signature'] as string,
          JSON_SECRET,
          Math.floor(Date.now() / 1000),
        ),
      ).toMatchObject({ ok: true });
      const body = JSON.parse(request!.raw) as { kind: string; subject: string; text: string };
      expect(body.kind).toBe('ops-feed-silent');
      // The webhook carries the ops email's own subject and text.
      expect(body.subject).toBe(smtp.messages[0]!.subject);
      expect(body.text.trim()).toBe(smtp.messages[0]!.text!.trim());
    } finally {
      await close();
    }
  });
});
