// Delivery: claim recorded notifications a few at a time, just before sending them, render,
// send, record the outcome. Claims are renewed while the job works and every outcome is written
// under the claim's token (lib/notifications/lease.ts), so a slow relay cannot let a claim run
// out under a live job, and a job whose claim was taken over all the same writes nothing.
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
import { startLease, type ClaimLease } from './lease.ts';
import { reasonOf, renderNotification } from './render.ts';
import {
  claimNotifications,
  insertInboxEntries,
  markFailed,
  markRetry,
  markSent,
  type ClaimedNotification,
  type ClaimRef,
  type InboxEntry,
  type NotificationDraft,
  type StaleRules,
} from './store.ts';

export interface DeliveryContext {
  db: Pool;
  config: () => Config;
  logger: Logger;
  templates: TemplateStore;
  email: () => EmailSender;
  /** Recorded with each claim (claimed_by). */
  workerId: string;
  /** The message kinds' stale rules, applied as messages are claimed. */
  stale?: StaleRules;
}

/** Sent emails are recorded at most this many at a time, at most this long after the send. */
const SENT_MARKS = { maxItems: 500, maxWaitMs: 50 };

/**
 * One committer of sent marks per database pool, shared by every delivery job of the process:
 * jobs running side by side fill the same groups, so a statement carries dozens of ids, not a
 * handful per job.
 */
const sentMarksByPool = new WeakMap<Pool, GroupCommit<ClaimRef>>();

function sentMarksFor(db: Pool, logger: Logger): GroupCommit<ClaimRef> {
  let marks = sentMarksByPool.get(db);
  if (!marks) {
    marks = groupCommit(async (refs: ClaimRef[]) => {
      const marked = new Set(await markSent(db, refs));
      const taken = refs.filter((r) => !marked.has(r.id)).map((r) => r.id);
      if (taken.length > 0)
        logger.warn(
          { component: 'delivery', code: 'FW_DELIVERY_CLAIM_LOST', notificationIds: taken },
          `${taken.length} emails were sent after their claim had been taken over; they may arrive twice (with the same Message-ID)`,
        );
    }, SENT_MARKS);
    sentMarksByPool.set(db, marks);
  }
  return marks;
}

export interface DeliveryOutcome {
  claimed: number;
  sent: number;
  failed: number;
  cancelled: number;
  /** Taken over by another worker while this job held them, and left to it. */
  lost: number;
  /** Temporary failures, due again at `retryAt`. */
  retries: Array<{ id: string; retryAt: number }>;
}

export async function deliverNotifications(
  ctx: DeliveryContext,
  ids: readonly string[],
): Promise<DeliveryOutcome> {
  const config = ctx.config().notifications;
  const log = ctx.logger.child({ component: 'delivery' });
  const outcome: DeliveryOutcome = { claimed: 0, sent: 0, failed: 0, cancelled: 0, lost: 0, retries: [] };
  // Two sends per pooled connection: one on the wire, one ready behind it. More would only
  // wait, rendered, in the sender's queue (other jobs' sends share the same connections). Rows
  // are claimed as many at a time, when the last claimed ones have been taken up.
  const inFlight = Math.max(1, config.email.maxConnections * 2);
  const lease = startLease(ctx.db, config.claimSeconds, log);
  const sentMarks = sentMarksFor(ctx.db, ctx.logger);
  // Accepted sends are marked in groups, not one statement each. A crash before a group is
  // written leaves those rows claimed; once the claim runs out they are sent again with the same
  // Message-ID, the window every email has between the server's "250" and our commit.
  const written = new Set<Promise<void>>();
  let sendsFailed = false;
  try {
    const next = claimInChunks(ids, inFlight, async (chunk) => {
      const claim = await claimNotifications(ctx.db, chunk, {
        token: lease.token,
        worker: ctx.workerId,
        claimSeconds: config.claimSeconds,
        maxAttempts: config.retry.maxAttempts,
        ...(ctx.stale ? { stale: ctx.stale } : {}),
      });
      lease.hold(claim.claimed.map((n) => n.id));
      outcome.claimed += claim.claimed.length;
      outcome.cancelled += claim.cancelled;
      outcome.failed += claim.exhausted.length;
      for (const f of claim.exhausted)
        log.error({ notificationId: f.id, reason: f.reason }, 'delivery failed: no attempts left');
      const inapp = claim.claimed.filter((n) => n.channel === 'inapp');
      if (inapp.length > 0) await deliverInApp(ctx, lease, inapp, outcome, log);
      return claim.claimed.filter((n) => n.channel === 'email');
    });
    let sender: EmailSender | undefined;
    const runners = Array.from({ length: inFlight }, async () => {
      for (let n = await next(); n; n = await next()) {
        if (lease.lost(n.id)) {
          outcome.lost++;
          continue;
        }
        const result = await sendEmail(ctx, (sender ??= ctx.email()), lease, n);
        if (result.status === 'retry') outcome.retries.push({ id: n.id, retryAt: result.retryAt });
        else if (result.status === 'sent') {
          written.add(sentMarks.add({ id: n.id, token: n.token }));
          outcome.sent++;
        } else outcome[result.status]++;
      }
    });
    await Promise.all(runners);
  } catch (error) {
    sendsFailed = true;
    throw error;
  } finally {
    // Even when a send threw: what was accepted is recorded before the job ends either way.
    // A failed write fails the job, unless it is failing already (that error is the one to see).
    const writes = await Promise.allSettled(written);
    lease.stop();
    const failedWrite = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failedWrite && !sendsFailed) throw failedWrite.reason;
  }
  return outcome;
}

/**
 * Hands out claimed emails one at a time, claiming the next `size` ids whenever the last claimed
 * ones are taken: a row is claimed just before its turn, not for the whole job.
 */
function claimInChunks(
  ids: readonly string[],
  size: number,
  claim: (chunk: readonly string[]) => Promise<ClaimedNotification[]>,
): () => Promise<ClaimedNotification | undefined> {
  let offset = 0;
  const ready: ClaimedNotification[] = [];
  let claiming: Promise<void> | undefined;
  return async () => {
    for (;;) {
      const n = ready.shift();
      if (n) return n;
      if (!claiming) {
        if (offset >= ids.length) return undefined;
        const chunk = ids.slice(offset, (offset += size));
        claiming = claim(chunk)
          .then((claimed) => void ready.push(...claimed))
          .finally(() => (claiming = undefined));
      }
      await claiming;
    }
  };
}

async function deliverInApp(
  ctx: DeliveryContext,
  lease: ClaimLease,
  inapp: readonly ClaimedNotification[],
  outcome: DeliveryOutcome,
  log: Logger,
): Promise<void> {
  const entries: InboxEntry[] = [];
  const failures: Array<ClaimRef & { reason: string }> = [];
  for (const n of inapp) {
    lease.release(n.id);
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
      failures.push({ id: n.id, token: n.token, reason: reasonOf(error) });
    }
  }
  const sent = await inTransaction(ctx.db, async (client) => {
    // Marked first: only what is still this job's gets an inbox row.
    const marked = new Set(
      await markSent(
        client,
        entries.map((e) => ({ id: e.notificationId, token: lease.token })),
      ),
    );
    await insertInboxEntries(
      client,
      entries.filter((e) => marked.has(e.notificationId)),
    );
    return marked.size;
  });
  const failed = await markFailed(ctx.db, failures);
  outcome.sent += sent;
  outcome.failed += failed.length;
  outcome.lost += entries.length - sent + failures.length - failed.length;
  for (const f of failures)
    log.error({ notificationId: f.id, reason: f.reason }, 'in-app notification failed');
}

type SendResult = { status: 'sent' | 'failed' | 'lost' } | { status: 'retry'; retryAt: number };

async function sendEmail(
  ctx: DeliveryContext,
  sender: EmailSender,
  lease: ClaimLease,
  n: ClaimedNotification,
): Promise<SendResult> {
  const config = ctx.config().notifications;
  // Made only when something goes wrong: a child logger per sent email costs more than the send.
  const log = () =>
    ctx.logger.child({ component: 'delivery', notificationId: n.id, kind: n.kind, to: n.address ?? '' });
  const ref = { id: n.id, token: n.token };
  let message;
  try {
    message = renderNotification(ctx.templates, n);
  } catch (error) {
    lease.release(n.id);
    const [failed] = await markFailed(ctx.db, [{ ...ref, reason: reasonOf(error) }]);
    if (!failed) return { status: 'lost' };
    log().error({ reason: reasonOf(error) }, 'email not sent: the template failed');
    return { status: 'failed' };
  }
  try {
    await sender.send(emailMessageFor(n, message, config.email.messageIdDomain));
  } catch (error) {
    lease.release(n.id);
    const retryable = !(error instanceof DeliveryError) || error.retryable;
    const reason = reasonOf(error);
    // The claim that carried this send was the attempt.
    const attempt = n.attempts;
    if (retryable && attempt < config.retry.maxAttempts) {
      const delayMs = retryDelayMs(config.retry, attempt);
      const retryAt = await markRetry(ctx.db, ref, reason, delayMs);
      if (retryAt === null) return { status: 'lost' };
      log().warn({ attempt, retryAt: new Date(retryAt).toISOString(), reason }, 'email failed; will retry');
      return { status: 'retry', retryAt };
    }
    const final = retryable ? `gave up after ${attempt} attempts: ${reason}` : reason;
    const [failed] = await markFailed(ctx.db, [{ ...ref, reason: final }]);
    if (!failed) return { status: 'lost' };
    log().error({ attempt, reason: final }, 'email failed');
    return { status: 'failed' };
  }
  lease.release(n.id);
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
