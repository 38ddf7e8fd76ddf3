// Delivery: claim recorded notifications atomically, render them, send them, record the outcome.
// In-app messages are written to the inbox in the same transaction that marks them sent, so they
// exist exactly once. Emails are marked sent in groups within 50 ms of the server accepting them
// and carry a stable Message-ID, so the only window for a duplicate is a crash in between.
import { DeliveryError, messageIdFor, type EmailMessage, type EmailSender } from '../channels/email.ts';
import type { Config } from '../config/schema.ts';
import { groupCommit, type GroupCommit } from '../db/group-commit.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import type { RenderedMessage, TemplateStore } from '../templates/store.ts';
import { retryDelayMs } from './backoff.ts';
import { reasonOf, renderNotification } from './render.ts';
import {
  claimNotifications,
  insertInboxEntries,
  markFailed,
  markRetry,
  markSent,
  type ClaimedNotification,
  type InboxEntry,
  type NotificationDraft,
} from './store.ts';

export interface DeliveryContext {
  db: Pool;
  config: () => Config;
  logger: Logger;
  templates: TemplateStore;
  email: () => EmailSender;
}

/** Sent emails are recorded at most this many at a time, at most this long after the send. */
const SENT_MARKS = { maxItems: 500, maxWaitMs: 50 };

/**
 * One committer of sent marks per database pool, shared by every delivery job of the process:
 * jobs running side by side fill the same groups, so a statement carries dozens of ids, not a
 * handful per job.
 */
const sentMarksByPool = new WeakMap<Pool, GroupCommit<string>>();

function sentMarksFor(db: Pool): GroupCommit<string> {
  let marks = sentMarksByPool.get(db);
  if (!marks) {
    marks = groupCommit((ids: string[]) => markSent(db, ids), SENT_MARKS);
    sentMarksByPool.set(db, marks);
  }
  return marks;
}

export interface DeliveryOutcome {
  claimed: number;
  sent: number;
  failed: number;
  cancelled: number;
  /** Temporary failures, due again at `retryAt`. */
  retries: Array<{ id: string; retryAt: number }>;
}

export async function deliverNotifications(
  ctx: DeliveryContext,
  ids: readonly string[],
): Promise<DeliveryOutcome> {
  const config = ctx.config().notifications;
  const { claimed, cancelled } = await claimNotifications(ctx.db, ids, config.claimSeconds);
  const outcome: DeliveryOutcome = { claimed: claimed.length, sent: 0, failed: 0, cancelled, retries: [] };
  const log = ctx.logger.child({ component: 'delivery' });

  const inapp = claimed.filter((n) => n.channel === 'inapp');
  const email = claimed.filter((n) => n.channel === 'email');

  if (inapp.length > 0) {
    const entries: InboxEntry[] = [];
    const failures: Array<{ id: string; reason: string }> = [];
    for (const n of inapp) {
      try {
        const message = renderNotification(ctx.templates, n);
        entries.push({
          notificationId: n.id,
          userId: n.userId!,
          kind: n.kind,
          title: message.title ?? '',
          body: message.text,
          link: typeof n.data.payUrl === 'string' ? n.data.payUrl : null,
        });
      } catch (error) {
        failures.push({ id: n.id, reason: reasonOf(error) });
      }
    }
    await inTransaction(ctx.db, async (client) => {
      await insertInboxEntries(client, entries);
      await markSent(
        client,
        entries.map((e) => e.notificationId),
      );
    });
    await markFailed(ctx.db, failures);
    outcome.sent += entries.length;
    outcome.failed += failures.length;
    for (const f of failures)
      log.error({ notificationId: f.id, reason: f.reason }, 'in-app notification failed');
  }

  if (email.length > 0) {
    const sender = ctx.email();
    // Accepted sends are marked in groups, not one statement each. A crash before a group is
    // written leaves those rows claimed; once the claim runs out they are sent again with the same
    // Message-ID, the window every email has between the server's "250" and our commit.
    const sentMarks = sentMarksFor(ctx.db);
    const written = new Set<Promise<void>>();
    let sendsFailed = false;
    try {
      // Two sends per pooled connection: one on the wire, one ready behind it. More would only
      // wait, rendered, in the sender's queue (other jobs' sends share the same connections).
      await forEachLimited(email, Math.max(1, config.email.maxConnections * 2), async (n) => {
        const result = await sendEmail(ctx, sender, n);
        if (result.status === 'sent') {
          written.add(sentMarks.add(n.id));
          outcome.sent++;
        } else if (result.status === 'failed') outcome.failed++;
        else outcome.retries.push({ id: n.id, retryAt: result.retryAt });
      });
    } catch (error) {
      sendsFailed = true;
      throw error;
    } finally {
      // Even when a send threw: what was accepted is recorded before the job ends either way.
      // A failed write fails the job, unless it is failing already (that error is the one to see).
      const writes = await Promise.allSettled(written);
      const failedWrite = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
      if (failedWrite && !sendsFailed) throw failedWrite.reason;
    }
  }
  return outcome;
}

async function sendEmail(
  ctx: DeliveryContext,
  sender: EmailSender,
  n: ClaimedNotification,
): Promise<{ status: 'sent' } | { status: 'failed' } | { status: 'retry'; retryAt: number }> {
  const config = ctx.config().notifications;
  // Made only when something goes wrong: a child logger per sent email costs more than the send.
  const log = () =>
    ctx.logger.child({ component: 'delivery', notificationId: n.id, kind: n.kind, to: n.address ?? '' });
  let message;
  try {
    message = renderNotification(ctx.templates, n);
  } catch (error) {
    await markFailed(ctx.db, [{ id: n.id, reason: reasonOf(error) }]);
    log().error({ reason: reasonOf(error) }, 'email not sent: the template failed');
    return { status: 'failed' };
  }
  try {
    await sender.send(emailMessageFor(n, message, config.email.messageIdDomain));
  } catch (error) {
    const retryable = !(error instanceof DeliveryError) || error.retryable;
    const reason = reasonOf(error);
    const attempt = n.attempts + 1;
    if (retryable && attempt < config.retry.maxAttempts) {
      const delayMs = retryDelayMs(config.retry, attempt);
      await markRetry(ctx.db, n.id, reason, delayMs);
      const retryAt = Date.now() + delayMs;
      log().warn({ attempt, retryAt: new Date(retryAt).toISOString(), reason }, 'email failed; will retry');
      return { status: 'retry', retryAt };
    }
    const final = retryable ? `gave up after ${attempt} attempts: ${reason}` : reason;
    await markFailed(ctx.db, [{ id: n.id, reason: final }]);
    log().error({ attempt, reason: final }, 'email failed');
    return { status: 'failed' };
  }
  return { status: 'sent' };
}

/** The email a rendered notification becomes: its Message-ID and unsubscribe link included. */
export function emailMessageFor(
  n: NotificationDraft,
  message: RenderedMessage,
  messageIdDomain: string,
): EmailMessage {
  const preferences = typeof n.data.preferencesUrl === 'string' ? n.data.preferencesUrl : null;
  return {
    to: n.address!,
    subject: message.subject ?? '',
    text: message.text,
    html: message.html ?? '',
    messageId: messageIdFor(n.dedupeKey, messageIdDomain),
    ...(preferences ? { headers: { 'List-Unsubscribe': `<${preferences}>` } } : {}),
  };
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await work(item);
    }
  });
  await Promise.all(runners);
}
