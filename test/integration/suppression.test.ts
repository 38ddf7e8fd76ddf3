// A permanent failure that says the address itself is bad puts the address on the channel's
// suppression list (forewarn.suppressions), in the transaction that records the failed outcome;
// delivery is called the way the delivery job calls it, against real PostgreSQL and a real SMTP
// server that rejects chosen recipients. A temporary failure, and a permanent one about the
// message rather than the mailbox, suppress nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SendChannel } from '../../lib/channels/channel.ts';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { channelRegistry, registeredChannels } from '../../lib/channels/registry.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { deliverNotifications, type DeliveryContext } from '../../lib/notifications/deliver.ts';
import { insertNotifications, type NotificationDraft } from '../../lib/notifications/store.ts';
import { readSuppressed } from '../../lib/policy/preferences.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { readNotifications } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';
import { accept, reject, startSmtpServer, type SmtpBehaviour, type TestSmtpServer } from '../support/smtp.ts';

const degraded = templateKinds['payment-degraded'].sample;

let seq = 0;
function draft(address: string | null, channel = 'email'): NotificationDraft {
  seq += 1;
  const userId = `u-sup-${String(seq).padStart(3, '0')}`;
  return {
    dedupeKey: `test:suppression:payment-degraded:${channel}:${userId}`,
    cause: 'test:suppression',
    incidentId: null,
    category: 'service',
    kind: 'payment-degraded',
    channel,
    audience: 'user',
    userId,
    address,
    locale: 'en',
    data: { ...degraded },
  };
}

interface SuppressionRow {
  channel: string;
  address: string;
  reason: string;
  notification_id: string | null;
}

async function suppressions(): Promise<SuppressionRow[]> {
  const { rows } = await db.pool.query<SuppressionRow>(
    'SELECT channel, address, reason, notification_id FROM forewarn.suppressions ORDER BY address',
  );
  return rows;
}

let db: TestDatabase;
let smtp: TestSmtpServer;
let dir: string;
let sender: EmailSender;
let config: Config;
let templates: TemplateStore;
/** What the SMTP server answers each recipient, by address (lower-cased); others are accepted. */
const answers = new Map<string, SmtpBehaviour>();

beforeAll(async () => {
  [db, smtp, dir] = await Promise.all([
    createTestDatabase(),
    startSmtpServer(),
    mkdtemp(join(tmpdir(), 'forewarn-suppression-')),
  ]);
  smtp.behave(({ to }) => answers.get(to.toLowerCase()) ?? accept());
  const base = await loadConfigFile('config/forewarn.yaml');
  config = {
    ...base,
    notifications: { ...base.notifications, retry: { ...base.notifications.retry, maxAttempts: 3 } },
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
  await db.pool.query('TRUNCATE forewarn.notifications, forewarn.suppressions CASCADE');
  smtp.messages.length = 0;
  answers.clear();
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
    workerId: 'test:suppression',
    logs,
    ...overrides,
  };
}

describe('a permanent failure about the address', () => {
  it('550 5.1.1 at RCPT TO: the row fails and the lower-cased address is suppressed with the reason and notification id', async () => {
    answers.set('no.such.user@example.com', reject(550, 'rcpt', '5.1.1 no such user'));
    const bounced = draft('No.Such.User@Example.COM');
    const fine = draft('still.here@example.com');
    const [bouncedId, fineId] = await insertNotifications(db.pool, [bounced, fine]);
    const ctx = context();

    const outcome = await deliverNotifications(ctx, [bouncedId!, fineId!]);

    expect(outcome).toMatchObject({ claimed: 2, sent: 1, failed: 1, lost: 0, retries: [] });
    const rows = new Map((await readNotifications(db.pool)).map((r) => [r.id, r]));
    expect(rows.get(bouncedId!)).toMatchObject({ status: 'failed' });
    expect(rows.get(bouncedId!)!.last_error).toBe('FW_DELIVERY_PERMANENT: smtp 550 at RCPT TO');
    expect(rows.get(fineId!)).toMatchObject({ status: 'sent' });
    expect(await suppressions()).toEqual([
      {
        channel: 'email',
        address: 'no.such.user@example.com',
        reason: 'FW_DELIVERY_PERMANENT: smtp 550 at RCPT TO',
        notification_id: bouncedId,
      },
    ]);
    expect(
      await readSuppressed(db.pool, 'email', ['NO.SUCH.USER@example.com', 'still.here@example.com']),
    ).toEqual(new Set(['no.such.user@example.com']));

    // Logged with the address masked, never in full.
    const line = ctx.logs.lines().find((l) => l.msg === 'delivery failed; address suppressed');
    expect(line).toMatchObject({
      notificationId: bouncedId,
      suppressed: true,
      reason: 'FW_DELIVERY_PERMANENT: smtp 550 at RCPT TO',
    });
    expect(line!.to).toBe('N***@Example.COM');
    expect(JSON.stringify(ctx.logs.lines()).toLowerCase()).not.toContain('no.such.user@');
  });

  it('a malformed address fails without being sent and is suppressed', async () => {
    const [id] = await insertNotifications(db.pool, [draft('not an address@example.com')]);
    const outcome = await deliverNotifications(context(), [id!]);
    expect(outcome).toMatchObject({ failed: 1, sent: 0 });
    expect(smtp.messages).toHaveLength(0);
    expect(await suppressions()).toEqual([
      expect.objectContaining({
        address: 'not an address@example.com',
        reason: 'FW_DELIVERY_PERMANENT: invalid recipient address',
        notification_id: id,
      }),
    ]);
  });

  it('a second bounce of a suppressed address keeps the first entry', async () => {
    answers.set('gone@example.com', reject(550, 'rcpt', '5.1.1 no such user'));
    const [first] = await insertNotifications(db.pool, [draft('gone@example.com')]);
    await deliverNotifications(context(), [first!]);
    const [second] = await insertNotifications(db.pool, [draft('gone@example.com')]);
    await deliverNotifications(context(), [second!]);
    expect(await suppressions()).toEqual([
      expect.objectContaining({ address: 'gone@example.com', notification_id: first }),
    ]);
  });
});

describe('failures that suppress nothing', () => {
  it('451 at RCPT TO (temporary): retried later, not suppressed', async () => {
    answers.set('busy@example.com', reject(451, 'rcpt', '4.3.0 try again later'));
    const [id] = await insertNotifications(db.pool, [draft('busy@example.com')]);
    const outcome = await deliverNotifications(context(), [id!]);
    expect(outcome.retries.map((r) => r.id)).toEqual([id]);
    expect(outcome.failed).toBe(0);
    expect(await suppressions()).toEqual([]);
  });

  it('554 5.7.1 after DATA (the message refused as spam): failed, the address not suppressed', async () => {
    answers.set('strict@example.com', reject(554, 'data', '5.7.1 message refused as spam'));
    const [id] = await insertNotifications(db.pool, [draft('strict@example.com')]);
    const outcome = await deliverNotifications(context(), [id!]);
    expect(outcome).toMatchObject({ failed: 1 });
    const [row] = await readNotifications(db.pool);
    expect(row).toMatchObject({ status: 'failed', last_error: 'FW_DELIVERY_PERMANENT: smtp 554 at DATA' });
    expect(await suppressions()).toEqual([]);
  });

  it('550 5.7.1 at RCPT TO (relaying or policy, not the mailbox): failed, not suppressed', async () => {
    answers.set('policy@example.com', reject(550, 'rcpt', '5.7.1 relaying denied'));
    const [id] = await insertNotifications(db.pool, [draft('policy@example.com')]);
    await deliverNotifications(context(), [id!]);
    const [row] = await readNotifications(db.pool);
    expect(row).toMatchObject({ status: 'failed', last_error: 'FW_DELIVERY_PERMANENT: smtp 550 at RCPT TO' });
    expect(await suppressions()).toEqual([]);
  });
});

describe('any send channel', () => {
  /** A channel delivery has never heard of, whose receiver says every address is unknown. */
  const pager = (beforeAnswer: (ids: string[]) => Promise<void> = async () => undefined): SendChannel => ({
    id: 'pager',
    kind: 'send',
    needs: 'address',
    template: 'inapp',
    limits: () => ({ inFlight: 1, perCall: 10 }),
    send: async (messages) => {
      await beforeAnswer(messages.map((m) => m.notification.id));
      return messages.map(() => ({
        status: 'failed',
        reason: 'pager 404: no such number',
        addressRejected: true,
      }));
    },
  });

  it('suppresses under its own channel id when its outcome says the address is bad', async () => {
    const registry = channelRegistry([...registeredChannels, pager()]);
    const [id] = await insertNotifications(db.pool, [draft('+8613800138000', 'pager')]);
    const outcome = await deliverNotifications(context({ registry }), [id!]);
    expect(outcome).toMatchObject({ failed: 1 });
    expect(await suppressions()).toEqual([
      {
        channel: 'pager',
        address: '+8613800138000',
        reason: 'pager 404: no such number',
        notification_id: id,
      },
    ]);
    // Another channel's list is its own: the same address is not suppressed for email.
    expect(await readSuppressed(db.pool, 'email', ['+8613800138000'])).toEqual(new Set());
  });

  it('suppresses nothing for a failure recorded by no one: the claim was taken over meanwhile', async () => {
    // Another worker took the claim while the send was out: its outcome is not this job's to write.
    const takeOver = async (ids: string[]) => {
      await db.pool.query(
        'UPDATE forewarn.notifications SET claim_token = gen_random_uuid() WHERE id = ANY ($1::bigint[])',
        [ids],
      );
    };
    const registry = channelRegistry([...registeredChannels, pager(takeOver)]);
    const [id] = await insertNotifications(db.pool, [draft('+8613900139000', 'pager')]);
    const outcome = await deliverNotifications(context({ registry }), [id!]);
    expect(outcome).toMatchObject({ failed: 0, lost: 1 });
    expect(await suppressions()).toEqual([]);
  });
});
