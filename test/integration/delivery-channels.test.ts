// Delivery through the channel interface (lib/channels/channel.ts), called the way the delivery
// job calls it, against real PostgreSQL, a real SMTP server and a real HTTP server:
// - a row whose channel has no implementation fails for good with a reason that names it and
//   the channels there are, and the email and in-app rows claimed with it are delivered all the
//   same;
// - a channel delivery has never heard of (a signed webhook, defined here, handed over in the
//   registry) is delivered, retried and failed by the same steps, with no change to delivery;
// - the fan-out's inline delivery (lib/channels/inline.ts) writes in-app drafts with their inbox
//   rows in the caller's transaction and leaves the rest for the delivery jobs.
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SendChannel, SendOutcome } from '../../lib/channels/channel.ts';
import { createEmailSender, messageIdFor, type EmailSender } from '../../lib/channels/email.ts';
import { splitInline } from '../../lib/channels/inline.ts';
import { channelRegistry, channels, registeredChannels } from '../../lib/channels/registry.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { inTransaction } from '../../lib/db/pool.ts';
import { deliverNotifications, type DeliveryContext } from '../../lib/notifications/deliver.ts';
import { insertNotifications, type NotificationDraft } from '../../lib/notifications/store.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { readInbox, readNotifications } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const degraded = templateKinds['payment-degraded'].sample;
const MESSAGE_ID_DOMAIN = 'notify.example.com';

let seq = 0;
function draft(channel: string, overrides: Partial<NotificationDraft> = {}): NotificationDraft {
  seq += 1;
  const userId = `u-ch-${String(seq).padStart(3, '0')}`;
  return {
    dedupeKey: `test:channels:payment-degraded:${channel}:${userId}`,
    cause: 'test:channels',
    incidentId: null,
    category: 'service',
    kind: 'payment-degraded',
    channel,
    audience: 'user',
    userId,
    address: `${userId}@example.com`,
    locale: 'en',
    data: { ...degraded },
    ...overrides,
  };
}

let db: TestDatabase;
let smtp: TestSmtpServer;
let dir: string;
let sender: EmailSender;
let config: Config;
let templates: TemplateStore;

beforeAll(async () => {
  [db, smtp, dir] = await Promise.all([
    createTestDatabase(),
    startSmtpServer(),
    mkdtemp(join(tmpdir(), 'forewarn-channels-')),
  ]);
  const base = await loadConfigFile('config/forewarn.yaml');
  config = {
    ...base,
    notifications: {
      ...base.notifications,
      email: { ...base.notifications.email, messageIdDomain: MESSAGE_ID_DOMAIN },
      retry: { ...base.notifications.retry, maxAttempts: 3 },
    },
  };
  templates = await TemplateStore.load();
  sender = createEmailSender({
    smtpUrl: smtp.url,
    outboxDir: join(dir, 'outbox'),
    from: config.notifications.email.from,
    logger: captureLogs('error').logger,
  });
});

afterAll(async () => {
  await sender?.close();
  await smtp?.close();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.notifications, forewarn.inbox CASCADE');
  smtp.messages.length = 0;
});

function context(overrides: Partial<DeliveryContext> = {}): DeliveryContext & {
  logs: ReturnType<typeof captureLogs>;
} {
  const logs = captureLogs('info');
  return {
    db: db.pool,
    config: () => config,
    logger: logs.logger,
    templates,
    channels: { email: () => sender },
    workerId: 'test:channels',
    logs,
    ...overrides,
  };
}

describe('a row whose channel has no implementation', () => {
  it('fails with a reason naming the channel, and the rows claimed with it are delivered', async () => {
    const emails = [draft('email'), draft('email'), draft('email')];
    const inapp = [draft('inapp', { address: null }), draft('inapp', { address: null })];
    const sms = [draft('sms'), draft('carrier-pigeon', { address: null })];
    // Unknown channels first and in between: claimed in the same chunks as the others.
    const ids = await insertNotifications(db.pool, [
      sms[0]!,
      emails[0]!,
      inapp[0]!,
      sms[1]!,
      emails[1]!,
      inapp[1]!,
      emails[2]!,
    ]);
    const ctx = context();

    const outcome = await deliverNotifications(ctx, ids);

    expect(outcome).toMatchObject({ claimed: 7, sent: 5, failed: 2, cancelled: 0, lost: 0, retries: [] });
    const rows = await readNotifications(db.pool);
    const byKey = new Map(rows.map((r) => [r.dedupe_key, r]));
    for (const d of [...emails, ...inapp]) {
      expect(byKey.get(d.dedupeKey)).toMatchObject({ status: 'sent', attempts: 1, last_error: null });
    }
    for (const d of sms) {
      const row = byKey.get(d.dedupeKey)!;
      expect(row.status).toBe('failed');
      expect(row.attempts).toBe(1);
      expect(row.last_error).toBe(
        `unknown channel ${JSON.stringify(d.channel)}: no channel implementation has that id (expected one of email, inapp, webhook, push; see lib/channels/registry.ts)`,
      );
    }
    // The emails went out, each once, with the Message-ID of its dedupe key.
    expect(smtp.messages.map((m) => m.envelope.to[0]).sort()).toEqual(emails.map((d) => d.address).sort());
    expect(smtp.messages.map((m) => m.headers.get('message-id')).sort()).toEqual(
      emails.map((d) => messageIdFor(d.dedupeKey, MESSAGE_ID_DOMAIN)).sort(),
    );
    // The in-app messages are in the inbox, once each; nothing else is.
    const inbox = await readInbox(db.pool);
    expect(inbox.map((e) => e.user_id).sort()).toEqual(inapp.map((d) => d.userId).sort());
    // Each failure is logged with its channel and reason, as an error.
    const failures = ctx.logs.lines().filter((l) => l.msg === 'not delivered: its channel cannot take it');
    expect(failures.map((l) => [l.channel, l.level])).toEqual([
      ['sms', 'error'],
      ['carrier-pigeon', 'error'],
    ]);
  });

  it('fails a row whose recipient lacks what its channel needs, with the reason', async () => {
    // The schema keeps an email row from lacking an address, and a user's row from lacking a
    // user; an in-app row for ops may be recorded without one.
    const [id] = await insertNotifications(db.pool, [
      draft('inapp', { audience: 'ops', category: 'ops', userId: null, address: null }),
    ]);
    const outcome = await deliverNotifications(context(), [id!]);
    expect(outcome).toMatchObject({ claimed: 1, sent: 0, failed: 1 });
    const [row] = await readNotifications(db.pool);
    expect(row!.status).toBe('failed');
    expect(row!.last_error).toMatch(
      /^channel "inapp" needs a user and notification \d+ \(test:channels:.*\) has none$/,
    );
    expect(await readInbox(db.pool)).toEqual([]);
  });
});

/**
 * A channel delivery has never heard of (the shipped webhook channel has its own tests,
 * test/integration/webhook-channel.test.ts): each message POSTed as JSON, signed with HMAC-SHA256
 * over the body, its dedupe key as the idempotency key; a 2xx is sent, 429 and 5xx are retried
 * (a Retry-After is honoured), any other status fails.
 */
function webhookChannel(url: string, secret: string): SendChannel {
  return {
    id: 'test-hook',
    kind: 'send',
    needs: 'user',
    // It carries the in-app copy: no templates of its own.
    template: 'inapp',
    limits: () => ({ inFlight: 3, perCall: 1 }),
    send: (messages) =>
      Promise.all(
        messages.map(async ({ notification: n, rendered, link }): Promise<SendOutcome> => {
          const body = JSON.stringify({ kind: n.kind, userId: n.userId, text: rendered.text, link });
          let response: Response;
          try {
            response = await fetch(url, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                'idempotency-key': n.dedupeKey,
                'x-forewarn-signature': createHmac('sha256', secret).update(body).digest('hex'),
              },
              body,
              signal: AbortSignal.timeout(5_000),
            });
            await response.arrayBuffer();
          } catch (error) {
            return { status: 'retry', reason: `webhook unreachable: ${(error as Error).message}` };
          }
          if (response.ok) return { status: 'sent' };
          const reason = `webhook answered ${response.status}`;
          if (response.status === 429 || response.status >= 500) {
            const after = Number(response.headers.get('retry-after'));
            return { status: 'retry', reason, ...(after > 0 ? { afterMs: after * 1000 } : {}) };
          }
          return { status: 'failed', reason };
        }),
      ),
  };
}

describe('a channel delivery has never heard of', () => {
  const secret = 'test-webhook-secret';
  let server: Server;
  let url: string;
  const received: Array<{
    key: string;
    signed: boolean;
    body: { userId: string; text: string; link: string };
  }> = [];
  /** Status to answer per user id (200 otherwise). */
  const answers = new Map<string, { status: number; retryAfter?: number }>();

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = JSON.parse(raw) as { userId: string; text: string; link: string };
        const expected = createHmac('sha256', secret).update(raw).digest('hex');
        received.push({
          key: String(req.headers['idempotency-key']),
          signed: req.headers['x-forewarn-signature'] === expected,
          body,
        });
        const answer = answers.get(body.userId) ?? { status: 200 };
        res.writeHead(answer.status, answer.retryAfter ? { 'retry-after': String(answer.retryAfter) } : {});
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('is delivered, retried and failed by the same steps, next to the registered channels', async () => {
    const registry = channelRegistry([...registeredChannels, webhookChannel(url, secret)]);
    const ok = [draft('test-hook'), draft('test-hook'), draft('test-hook'), draft('test-hook')];
    const busy = draft('test-hook');
    const gone = draft('test-hook');
    answers.set(busy.userId!, { status: 503, retryAfter: 30 });
    answers.set(gone.userId!, { status: 410 });
    const email = draft('email');
    const ids = await insertNotifications(db.pool, [...ok, busy, email, gone]);
    const ctx = context({ registry });

    const before = Date.now();
    const outcome = await deliverNotifications(ctx, ids);

    expect(outcome).toMatchObject({ claimed: 7, sent: 5, failed: 1, lost: 0 });
    expect(outcome.retries).toHaveLength(1);
    // The Retry-After (30 s) is longer than the first backoff, so it is what the retry waits.
    expect(outcome.retries[0]!.retryAt).toBeGreaterThanOrEqual(before + 29_000);
    const byKey = new Map((await readNotifications(db.pool)).map((r) => [r.dedupe_key, r]));
    for (const d of [...ok, email]) expect(byKey.get(d.dedupeKey)!.status).toBe('sent');
    expect(byKey.get(busy.dedupeKey)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'webhook answered 503',
    });
    expect(byKey.get(gone.dedupeKey)).toMatchObject({ status: 'failed', last_error: 'webhook answered 410' });
    // Each webhook message arrived once, signed, keyed by its dedupe key, rendered, with its link.
    expect(received.map((r) => r.key).sort()).toEqual([...ok, busy, gone].map((d) => d.dedupeKey).sort());
    expect(received.every((r) => r.signed)).toBe(true);
    expect(received[0]!.body.text).toContain(String(degraded.channelName));
    expect(received[0]!.body.link).toBe(degraded.payUrl);
    expect(smtp.messages.map((m) => m.envelope.to[0])).toEqual([email.address]);
    // The failures are logged with the channel's id.
    expect(
      ctx.logs
        .lines()
        .filter((l) => l.channel === 'test-hook')
        .map((l) => l.msg),
    ).toEqual(expect.arrayContaining(['delivery failed; will retry', 'delivery failed']));

    // Its turn again with the attempts used up: the retry becomes a failure with the reason.
    await db.pool.query(
      'UPDATE forewarn.notifications SET next_attempt_at = now(), attempts = $2 WHERE dedupe_key = $1',
      [busy.dedupeKey, config.notifications.retry.maxAttempts - 1],
    );
    const again = await deliverNotifications(ctx, [ids[ok.length]!]);
    expect(again).toMatchObject({ claimed: 1, sent: 0, failed: 1, retries: [] });
    const [row] = (await readNotifications(db.pool)).filter((r) => r.dedupe_key === busy.dedupeKey);
    expect(row).toMatchObject({
      status: 'failed',
      last_error: 'gave up after 3 attempts: webhook answered 503',
    });
  });

  it('is retried when it throws instead of reporting an outcome, and delivery goes on', async () => {
    const throwing: SendChannel = {
      ...webhookChannel(url, secret),
      send: async () => {
        throw new Error('socket exploded');
      },
    };
    const registry = channelRegistry([...registeredChannels, throwing]);
    const [hook, email] = [draft('test-hook'), draft('email')];
    const ids = await insertNotifications(db.pool, [hook, email]);
    const outcome = await deliverNotifications(context({ registry }), ids);
    expect(outcome).toMatchObject({ claimed: 2, sent: 1, failed: 0 });
    expect(outcome.retries).toHaveLength(1);
    const rows = await readNotifications(db.pool);
    expect(rows.find((r) => r.dedupe_key === hook.dedupeKey)).toMatchObject({
      status: 'pending',
      last_error: 'channel "test-hook" threw: socket exploded',
    });
    expect(rows.find((r) => r.dedupe_key === email.dedupeKey)!.status).toBe('sent');
  });
});

describe('inline delivery, as the fan-out uses it', () => {
  it("writes in-app drafts with their inbox rows in the caller's transaction and queues the rest", async () => {
    const inapp = [draft('inapp', { address: null }), draft('inapp', { address: null })];
    const broken = draft('inapp', { address: null, data: { ...degraded, channelName: 42 } });
    const email = draft('email');
    const sms = draft('sms');
    const batch = splitInline(templates, [inapp[0]!, email, broken, sms, inapp[1]!], {
      linkOf: (n) => `https://example.com/inbox/${n.userId}`,
    });
    expect(batch.queued).toEqual([email, sms]);
    expect(batch.inline.size).toBe(3);

    // Rolled back with its transaction: nothing is written.
    await expect(
      inTransaction(db.pool, async (client) => {
        await batch.inline.record(client);
        throw new Error('the batch failed');
      }),
    ).rejects.toThrow('the batch failed');
    expect(await readNotifications(db.pool)).toEqual([]);
    expect(await readInbox(db.pool)).toEqual([]);

    const counts = await inTransaction(db.pool, (client) => batch.inline.record(client));
    expect(counts).toEqual({ delivered: 2, failed: 1 });
    // Again (a fan-out batch redone): the dedupe keys are recorded, so nothing is written twice.
    expect(await inTransaction(db.pool, (client) => batch.inline.record(client))).toEqual({
      delivered: 0,
      failed: 0,
    });
    const rows = await readNotifications(db.pool);
    expect(rows.map((r) => [r.dedupe_key, r.status]).sort()).toEqual(
      [...inapp.map((d) => [d.dedupeKey, 'sent']), [broken.dedupeKey, 'failed']].sort(),
    );
    expect(rows.find((r) => r.status === 'failed')!.last_error).toMatch(/FW_TEMPLATE_RENDER.*channelName/);
    const inbox = await readInbox(db.pool);
    expect(inbox.map((e) => [e.user_id, e.link]).sort()).toEqual(
      inapp.map((d) => [d.userId, `https://example.com/inbox/${d.userId}`]).sort(),
    );
  });

  it('knows the shipped channels by id, and refuses a registry with a duplicate or malformed id', () => {
    expect(channels.all.map((c) => c.id)).toEqual(['email', 'inapp', 'webhook', 'push']);
    expect(channels.get('webhook')?.needs).toBe('address');
    expect(channels.get('push')?.needs).toBe('user');
    expect(channels.get('email')?.needs).toBe('address');
    expect(channels.get('inapp')?.needs).toBe('user');
    expect(channels.get('sms')).toBeUndefined();
    expect(() => channelRegistry([...registeredChannels, registeredChannels[0]!])).toThrow(
      'channel "email" is registered twice',
    );
    expect(() => channelRegistry([{ ...registeredChannels[0]!, id: 'E-mail' }])).toThrow(
      /channel id "E-mail": expected lowercase letters/,
    );
  });
});
