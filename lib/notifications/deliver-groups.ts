// Delivery of grouped ops alerts (lib/notifications/ops-groups.ts): for each group, under the
// group's lock, either hold its live members until the group is due (the wait is written into
// the rows; the caller queues a job for that time) or claim them all under one token. A claimed
// group of one goes out as its own alert; a larger one as one `ops-alert-group` email listing
// each member with its own kind's subject and text. Every outcome is written under the claim's
// token, as in lib/notifications/deliver.ts: a job whose claim was taken over writes nothing.
import { emailMessageFor } from '../channels/email-channel.ts';
import { DeliveryError, messageIdFor, type EmailMessage } from '../channels/email.ts';
import { inTransaction } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import type { TemplateInput } from '../../templates/kinds.ts';
import type { RenderedMessage, TemplateStore } from '../templates/store.ts';
import { retryDelayMs } from './backoff.ts';
import type { DeliveryContext } from './deliver.ts';
import { startLease, type ClaimLease } from './lease.ts';
import { claimGroup, holdGroup, lockGroup, readGroupState, type OpsGroup } from './ops-groups.ts';
import { reasonOf, renderNotification } from './render.ts';
import {
  markFailed,
  markRetry,
  markSent,
  withholdDue,
  type ClaimedNotification,
  type ClaimRef,
} from './store.ts';

export interface GroupDeliveryOutcome {
  /** Alerts claimed (members of the groups that were due). */
  claimed: number;
  /** Alerts marked sent, and the emails they went out in. */
  sent: number;
  emails: number;
  failed: number;
  /** Taken over by another worker while this job held them, and left to it. */
  lost: number;
  /** Withheld by the delivery policy (the group's address was suppressed), cancelled with the reason. */
  withheld: number;
  /** Groups not due yet: their pending members, held until `dueAt` (epoch ms, database clock). */
  held: Array<{ ids: string[]; dueAt: number; now: number }>;
  /** Groups whose email failed for now: their members, due again at `retryAt`. */
  retries: Array<{ ids: string[]; retryAt: number }>;
}

export async function deliverOpsGroups(
  ctx: DeliveryContext,
  groups: readonly OpsGroup[],
): Promise<GroupDeliveryOutcome> {
  const config = ctx.config().notifications;
  const log = ctx.logger.child({ component: 'delivery' });
  const outcome: GroupDeliveryOutcome = {
    claimed: 0,
    sent: 0,
    emails: 0,
    failed: 0,
    lost: 0,
    withheld: 0,
    held: [],
    retries: [],
  };
  if (groups.length === 0) return outcome;
  const lease = startLease(ctx.db, config.claimSeconds, log);
  try {
    for (const group of groups) {
      const decision = await inTransaction(ctx.db, async (client) => {
        await lockGroup(client, group);
        const state = await readGroupState(client, group, config.ops.groupWaitSeconds);
        if (!state) return null;
        if (!state.due) {
          const ids = await holdGroup(client, state.ids, state.dueAt);
          return { kind: 'held' as const, held: { ids, dueAt: state.dueAt, now: state.now } };
        }
        // The policy, as it stands now: a suppressed address is not tried (cancelled with the reason).
        const withhold = ctx.hold?.withhold;
        if (withhold)
          outcome.withheld += (await withholdDue(client, state.ids, withhold, { dueOnly: false })).length;
        const claim = await claimGroup(client, state.ids, {
          token: lease.token,
          worker: ctx.workerId,
          claimSeconds: config.claimSeconds,
          maxAttempts: config.retry.maxAttempts,
        });
        return { kind: 'claimed' as const, claim };
      });
      if (!decision) continue;
      if (decision.kind === 'held') {
        if (decision.held.ids.length > 0) outcome.held.push(decision.held);
        continue;
      }
      const { claimed, exhausted } = decision.claim;
      lease.hold(claimed.map((n) => n.id));
      outcome.claimed += claimed.length;
      outcome.failed += exhausted.length;
      for (const f of exhausted)
        log.error({ notificationId: f.id, reason: f.reason }, 'ops alert failed: no attempts left');
      if (claimed.length > 0) await sendGroup(ctx, lease, group, claimed, outcome, log);
    }
  } finally {
    lease.stop();
  }
  return outcome;
}

async function sendGroup(
  ctx: DeliveryContext,
  lease: ClaimLease,
  group: OpsGroup,
  claimed: readonly ClaimedNotification[],
  outcome: GroupDeliveryOutcome,
  log: Logger,
): Promise<void> {
  const config = ctx.config().notifications;
  // Each member with its own kind's template; one that fails is failed alone, the rest go.
  const members: Array<{ n: ClaimedNotification; message: RenderedMessage }> = [];
  const broken: Array<ClaimRef & { reason: string }> = [];
  for (const n of claimed) {
    if (lease.lost(n.id)) {
      outcome.lost++;
      continue;
    }
    try {
      members.push({ n, message: renderNotification(ctx.templates, n) });
    } catch (error) {
      lease.release(n.id);
      broken.push({ id: n.id, token: n.token, reason: reasonOf(error) });
    }
  }
  const failed = await markFailed(ctx.db, broken);
  outcome.failed += failed.length;
  outcome.lost += broken.length - failed.length;
  for (const f of broken)
    log.error({ notificationId: f.id, reason: f.reason }, 'ops alert not sent: the template failed');
  if (members.length === 0) return;

  const refs = members.map(({ n }) => ({ id: n.id, token: n.token }));
  const releaseAll = () => refs.forEach((r) => lease.release(r.id));
  let email: EmailMessage;
  try {
    email =
      members.length === 1
        ? emailMessageFor(members[0]!.n, members[0]!.message, config.email.messageIdDomain)
        : groupEmail(ctx.templates, group, members, {
            waitSeconds: config.ops.groupWaitSeconds,
            messageIdDomain: config.email.messageIdDomain,
          });
  } catch (error) {
    releaseAll();
    const reason = `the group's email could not be made: ${reasonOf(error)}`;
    const marked = await markFailed(
      ctx.db,
      refs.map((r) => ({ ...r, reason })),
    );
    outcome.failed += marked.length;
    outcome.lost += refs.length - marked.length;
    log.error({ notificationIds: marked, groupKey: group.groupKey, reason }, 'ops alerts not sent');
    return;
  }

  // The group's one email takes its token like any other; an ops alert still goes when the wait
  // runs out (one message past the rate beats ops not hearing of an incident).
  await ctx.rates?.take('email', 1);
  try {
    await ctx.channels.email().send(email);
  } catch (error) {
    releaseAll();
    await recordSendFailure(ctx, members, error, outcome, log);
    return;
  }
  releaseAll();
  const marked = new Set(await markSent(ctx.db, refs));
  outcome.emails++;
  outcome.sent += marked.size;
  const taken = refs.filter((r) => !marked.has(r.id)).map((r) => r.id);
  outcome.lost += taken.length;
  if (taken.length > 0)
    log.warn(
      { code: 'FW_DELIVERY_CLAIM_LOST', notificationIds: taken, groupKey: group.groupKey },
      `${taken.length} ops alerts were sent after their claim had been taken over; they may arrive twice (with the same Message-ID)`,
    );
}

/**
 * The group's email failed: temporary failures come back together (one delay for the group,
 * from its most tried member), except members with no attempts left, which fail.
 */
async function recordSendFailure(
  ctx: DeliveryContext,
  members: ReadonlyArray<{ n: ClaimedNotification }>,
  error: unknown,
  outcome: GroupDeliveryOutcome,
  log: Logger,
): Promise<void> {
  const config = ctx.config().notifications;
  const retryable = !(error instanceof DeliveryError) || error.retryable;
  const reason = reasonOf(error);
  const delayMs = retryDelayMs(config.retry, Math.max(...members.map(({ n }) => n.attempts)));
  const retried: string[] = [];
  let retryAt = 0;
  const failures: Array<ClaimRef & { reason: string }> = [];
  for (const { n } of members) {
    const ref = { id: n.id, token: n.token };
    if (retryable && n.attempts < config.retry.maxAttempts) {
      const at = await markRetry(ctx.db, ref, reason, delayMs);
      if (at === null) outcome.lost++;
      else {
        retried.push(n.id);
        retryAt = Math.max(retryAt, at);
      }
    } else {
      failures.push({
        ...ref,
        reason: retryable ? `gave up after ${n.attempts} attempts: ${reason}` : reason,
      });
    }
  }
  const failed = await markFailed(ctx.db, failures);
  outcome.failed += failed.length;
  outcome.lost += failures.length - failed.length;
  if (retried.length > 0) {
    outcome.retries.push({ ids: retried, retryAt });
    log.warn(
      { notificationIds: retried, retryAt: new Date(retryAt).toISOString(), reason },
      'ops alert email failed; will retry',
    );
  }
  if (failed.length > 0) log.error({ notificationIds: failed, reason }, 'ops alert email failed');
}

/** A group of two or more as one email: `ops-alert-group`, in the first member's locale. */
export function groupEmail(
  templates: TemplateStore,
  group: OpsGroup,
  members: ReadonlyArray<{ n: ClaimedNotification; message: RenderedMessage }>,
  options: { waitSeconds: number; messageIdDomain: string },
): EmailMessage {
  const first = members[0]!.n;
  const message = templates.render({
    kind: 'ops-alert-group',
    channel: 'email',
    locale: first.locale,
    data: groupEmailData(
      group.groupKey,
      members.map((m) => m.message),
      options.waitSeconds,
    ),
  });
  return {
    to: first.address!,
    subject: message.subject ?? '',
    text: message.text,
    html: message.html ?? '',
    // Stable for the same members: a group sent again after a crash is recognisable as the same.
    messageId: messageIdFor(
      `ops-group:${members.map((m) => m.n.dedupeKey).join(' ')}`,
      options.messageIdDomain,
    ),
  };
}

/**
 * The `ops-alert-group` template's data: what the group shares (`region:CN-GD` is by "region",
 * value "CN-GD"; a key without a colon has no `groupBy`), and each member's subject and the
 * paragraphs of its text, line by line, as its own template rendered them.
 */
export function groupEmailData(
  groupKey: string,
  members: ReadonlyArray<Pick<RenderedMessage, 'subject' | 'text'>>,
  waitSeconds: number,
): TemplateInput<'ops-alert-group'> {
  const colon = groupKey.indexOf(':');
  const by = colon > 0 && colon < groupKey.length - 1 ? groupKey.slice(0, colon) : null;
  return {
    groupKey,
    groupBy: by,
    groupValue: by === null ? groupKey : groupKey.slice(colon + 1),
    count: members.length,
    waitSeconds,
    // A rendered text has no blank line at its edges and none twice in a row (html.ts).
    alerts: members.map((m) => ({
      subject: m.subject ?? '',
      paragraphs: m.text
        .split(/\n{2,}/)
        .map((p) => p.split('\n').filter((line) => line.trim() !== ''))
        .filter((p) => p.length > 0),
    })),
  };
}
