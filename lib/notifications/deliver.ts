// Delivery: claim recorded notifications a few at a time, just before their turn, render them,
// hand each channel its own (lib/channels/registry.ts), record the outcomes. Delivery knows no
// channel by name: it knows the two kinds a channel can be (lib/channels/channel.ts).
// - A `send` channel (email, webhook) delivers to another system. Its accepted messages
//   are marked sent in groups within 50 ms, and it gives the receiver a stable id, so the only
//   window for a duplicate is a crash in between.
// - A `write` channel (in-app) writes its messages in the same transaction that marks them sent,
//   so they exist exactly once.
// Claims are renewed while the job works and every outcome is written under the claim's token
// (lib/notifications/lease.ts), so a slow receiver cannot let a claim run out under a live job,
// and a job whose claim was taken over all the same writes nothing. A row whose channel has no
// implementation, or whose recipient lacks what its channel needs, fails with the reason. A
// permanent failure that says the address itself is bad also suppresses the address (README
// "Suppressed addresses"), in the transaction that records the failure.
import {
  linkFromData,
  missingRecipient,
  type Channel,
  type ChannelContext,
  type ChannelResources,
  type LinkOf,
  type OutgoingMessage,
  type SendChannel,
  type SendOutcome,
  type WriteChannel,
} from '../channels/channel.ts';
import {
  channels as registeredChannels,
  unknownChannelReason,
  type ChannelRegistry,
} from '../channels/registry.ts';
import type { Config } from '../config/schema.ts';
import { groupCommit, type GroupCommit } from '../db/group-commit.ts';
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import type { Logger } from '../logger.ts';
import { suppressAddress } from '../policy/preferences.ts';
import type { TemplateStore } from '../templates/store.ts';
import { retryDelayMs } from './backoff.ts';
import { startLease } from './lease.ts';
import type { SendingRates, TakeResult } from './rates.ts';
import { reasonOf, renderNotification } from './render.ts';
import {
  claimNotifications,
  markFailed,
  markRetry,
  markSent,
  type ClaimedNotification,
  type ClaimRef,
  type HoldRule,
  type StaleRules,
} from './store.ts';

export interface DeliveryContext {
  db: Pool;
  config: () => Config;
  logger: Logger;
  templates: TemplateStore;
  /** What the channels deliver with (the pooled email sender...), shared by the process's jobs. */
  channels: ChannelResources;
  /** The channels by id: the registered ones (lib/channels/registry.ts) unless given. */
  registry?: ChannelRegistry;
  /** Where a message leads (its kind's `link`); by default its data's payUrl. */
  linkOf?: LinkOf;
  /** Recorded with each claim (claimed_by). */
  workerId: string;
  /** The message kinds' stale rules, applied as messages are claimed. */
  stale?: StaleRules;
  /** The delivery policy's hold (quiet hours), applied as messages are claimed. */
  hold?: HoldRule;
  /** The channels' sending rates, shared by every replica (absent: not limited). */
  rates?: SendingRates;
}

/** Messages of `send` channels are marked sent at most this many at a time, at most this long after the send. */
const SENT_MARKS = { maxItems: 500, maxWaitMs: 50 };

/** Rows claimed at a time when no `send` channel sets the pace (only `write` channels are registered). */
const WRITE_ONLY_CLAIM = 100;

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
          `${taken.length} messages were delivered after their claim had been taken over; they may arrive twice (with the same id for the receiver)`,
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
  /** Messages not due yet (held by the delivery policy), due at `dueAt`. */
  later: Array<{ id: string; dueAt: number }>;
}

/** A channel's claimed messages waiting for their turn, and how many calls it runs at once. */
interface Lane {
  channel: Channel;
  queue: ClaimedNotification[];
  runners: number;
  perCall: number;
}

interface Failure {
  n: ClaimedNotification;
  reason: string;
  /** The log line's message. */
  message: string;
  /** The channel said the address itself is bad: it goes on the suppression list. */
  suppress?: boolean;
}

/**
 * Marks the failures failed and, in the same transaction, suppresses the addresses of those that
 * say so (only of the rows still this job's): the outcome and the suppression commit together.
 */
async function recordFailures(db: Pool, failures: readonly Failure[]): Promise<string[]> {
  const refs = failures.map((f) => ({ id: f.n.id, token: f.n.token, reason: f.reason }));
  const suppressing = failures.filter((f) => f.suppress && f.n.address);
  if (suppressing.length === 0) return markFailed(db, refs);
  return inTransaction(db, async (client: Queryable) => {
    const marked = await markFailed(client, refs);
    const mine = new Set(marked);
    for (const f of suppressing) {
      if (!mine.has(f.n.id)) continue;
      await suppressAddress(client, {
        channel: f.n.channel,
        address: f.n.address!,
        reason: f.reason,
        notificationId: f.n.id,
      });
    }
    return marked;
  });
}

export async function deliverNotifications(
  ctx: DeliveryContext,
  ids: readonly string[],
): Promise<DeliveryOutcome> {
  const config = ctx.config();
  const settings = config.notifications;
  const registry = ctx.registry ?? registeredChannels;
  const linkOf = ctx.linkOf ?? linkFromData;
  const log = ctx.logger.child({ component: 'delivery' });
  const outcome: DeliveryOutcome = {
    claimed: 0,
    sent: 0,
    failed: 0,
    cancelled: 0,
    lost: 0,
    retries: [],
    later: [],
  };
  const channelCtx: ChannelContext = { config, logger: log, resources: ctx.channels };
  const lanes = new Map<string, Lane>(
    registry.all.map((channel) => {
      const limits = channel.kind === 'send' ? channel.limits(config) : { inFlight: 1, perCall: Infinity };
      const runners = Math.max(1, Math.floor(limits.inFlight));
      const perCall = Math.max(1, Math.floor(limits.perCall));
      return [channel.id, { channel, queue: [], runners, perCall }];
    }),
  );
  // As many rows at a time as the busiest send channel keeps in flight, claimed when the last
  // claimed ones have all been taken up: a row is claimed just before its turn.
  const sendLanes = [...lanes.values()].filter((l) => l.channel.kind === 'send');
  const claimSize =
    sendLanes.length > 0 ? Math.max(...sendLanes.map((l) => l.runners * l.perCall)) : WRITE_ONLY_CLAIM;
  const lease = startLease(ctx.db, settings.claimSeconds, log);
  const sentMarks = sentMarksFor(ctx.db, ctx.logger);
  // Accepted sends are marked in groups, not one statement each. A crash before a group is
  // written leaves those rows claimed; once the claim runs out they are sent again with the same
  // id, the window every send has between the receiver's "accepted" and our commit.
  const written = new Set<Promise<void>>();

  /** A line per failure, with a child logger made only then (one per message costs more than a send). */
  const logFailure = (level: 'warn' | 'error', n: ClaimedNotification, fields: object, message: string) =>
    log
      .child({
        notificationId: n.id,
        kind: n.kind,
        channel: n.channel,
        ...(n.address ? { to: n.address } : {}),
        ...(n.userId ? { userId: n.userId } : {}),
      })
      [level](fields, message);

  async function fail(failures: readonly Failure[]): Promise<void> {
    if (failures.length === 0) return;
    for (const f of failures) lease.release(f.n.id);
    const marked = new Set(await recordFailures(ctx.db, failures));
    for (const f of failures) {
      if (!marked.has(f.n.id)) {
        outcome.lost++;
        continue;
      }
      outcome.failed++;
      // The address is in the line's `to`, masked like every address in the logs.
      const suppressed = f.suppress === true && Boolean(f.n.address);
      logFailure(
        'error',
        f.n,
        { attempt: f.n.attempts, reason: f.reason, ...(suppressed ? { suppressed } : {}) },
        suppressed ? `${f.message}; address suppressed` : f.message,
      );
    }
  }

  // ---- Claiming: the next chunk once every lane's queue is empty.
  let offset = 0;
  let claiming: Promise<void> | undefined;
  let stopped: { error: unknown } | undefined;
  // Settles when the claim under way ends: lanes whose turn comes after other channels' wait on it.
  let claimedSignal = signal();

  async function claimChunk(chunk: readonly string[]): Promise<void> {
    const claim = await claimNotifications(ctx.db, chunk, {
      token: lease.token,
      worker: ctx.workerId,
      claimSeconds: settings.claimSeconds,
      maxAttempts: settings.retry.maxAttempts,
      ...(ctx.stale ? { stale: ctx.stale } : {}),
      ...(ctx.hold ? { hold: ctx.hold } : {}),
    });
    outcome.later.push(...claim.later);
    lease.hold(claim.claimed.map((n) => n.id));
    outcome.claimed += claim.claimed.length;
    outcome.cancelled += claim.cancelled;
    outcome.failed += claim.exhausted.length;
    for (const f of claim.exhausted)
      log.error({ notificationId: f.id, reason: f.reason }, 'delivery failed: no attempts left');
    const refused: Failure[] = [];
    for (const n of claim.claimed) {
      const lane = lanes.get(n.channel);
      const reason = lane ? missingRecipient(lane.channel, n) : unknownChannelReason(n.channel, registry);
      if (reason === null) lane!.queue.push(n);
      else refused.push({ n, reason, message: 'not delivered: its channel cannot take it' });
    }
    await fail(refused);
  }

  function claimNext(): Promise<void> {
    const chunk = ids.slice(offset, (offset += claimSize));
    claiming = claimChunk(chunk)
      .catch((error: unknown) => {
        stopped ??= { error };
        throw error;
      })
      .finally(() => {
        claiming = undefined;
        const done = claimedSignal;
        claimedSignal = signal();
        done.resolve();
      });
    return claiming;
  }

  /** The lane's next messages to deliver, or undefined when it has nothing left to do. */
  async function next(lane: Lane): Promise<ClaimedNotification[] | undefined> {
    for (;;) {
      if (stopped) return undefined;
      if (lane.queue.length > 0) return lane.queue.splice(0, lane.perCall);
      if (claiming) await claiming;
      else if (offset >= ids.length) return undefined;
      else if ([...lanes.values()].every((l) => l.queue.length === 0)) await claimNext();
      // Other channels' messages are ahead: the lane that empties last claims the next chunk.
      else await claimedSignal.promise;
    }
  }

  /** Renders the lane's messages; the ones whose template fails are failed here. */
  async function prepare(
    channel: Channel,
    batch: readonly ClaimedNotification[],
  ): Promise<OutgoingMessage[]> {
    const template = channel.template ?? channel.id;
    const ready: OutgoingMessage[] = [];
    const broken: Failure[] = [];
    for (const n of batch) {
      if (lease.lost(n.id)) {
        outcome.lost++;
        continue;
      }
      try {
        const rendered = renderNotification(
          ctx.templates,
          n.channel === template ? n : { ...n, channel: template },
        );
        ready.push({ notification: n, rendered, link: linkOf(n) });
      } catch (error) {
        broken.push({ n, reason: reasonOf(error), message: 'not delivered: the template failed' });
      }
    }
    await fail(broken);
    return ready;
  }

  /** The channel's sending rate's tokens; a Redis that cannot be reached means "not now". */
  async function takeTokens(channel: string, count: number): Promise<TakeResult> {
    if (!ctx.rates) return { taken: true };
    try {
      return await ctx.rates.take(channel, count);
    } catch (error) {
      return {
        taken: false,
        afterMs: 0,
        reason: `the sending rate of channel "${channel}" could not be checked in Redis: ${reasonOf(error)}`,
      };
    }
  }

  async function send(channel: SendChannel, messages: readonly OutgoingMessage[]): Promise<void> {
    // A token per message, not per job or call: the rate is the receiver's (an SMTP provider's).
    const rate = await takeTokens(channel.id, messages.length);
    let results: SendOutcome[];
    try {
      results = rate.taken
        ? await channel.send(messages, channelCtx)
        : messages.map(() => ({ status: 'retry', reason: rate.reason, afterMs: rate.afterMs }));
      if (results.length !== messages.length)
        throw new Error(`returned ${results.length} outcomes for ${messages.length} messages`);
    } catch (error) {
      // A channel sorts its failures into outcomes; one that throws is retried like a timeout.
      const reason = `channel "${channel.id}" threw: ${reasonOf(error)}`;
      results = messages.map(() => ({ status: 'retry', reason }));
    }
    const failures: Failure[] = [];
    for (const [i, { notification: n }] of messages.entries()) {
      const result = results[i]!;
      lease.release(n.id);
      if (result.status === 'sent') {
        written.add(sentMarks.add({ id: n.id, token: n.token }));
        outcome.sent++;
      } else if (result.status === 'failed') {
        failures.push({
          n,
          reason: result.reason,
          message: 'delivery failed',
          ...(result.addressRejected ? { suppress: true } : {}),
        });
      } else if (n.attempts < settings.retry.maxAttempts) {
        // The claim that carried this send was the attempt.
        const delayMs = Math.max(retryDelayMs(settings.retry, n.attempts), result.afterMs ?? 0);
        const retryAt = await markRetry(ctx.db, n, result.reason, delayMs);
        if (retryAt === null) {
          outcome.lost++;
          continue;
        }
        outcome.retries.push({ id: n.id, retryAt });
        logFailure(
          'warn',
          n,
          { attempt: n.attempts, retryAt: new Date(retryAt).toISOString(), reason: result.reason },
          'delivery failed; will retry',
        );
      } else {
        failures.push({
          n,
          reason: `gave up after ${n.attempts} attempts: ${result.reason}`,
          message: 'delivery failed',
        });
      }
    }
    await fail(failures);
  }

  async function write(channel: WriteChannel, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    for (const m of messages) lease.release(m.notification.id);
    const marked = await inTransaction(ctx.db, async (client) => {
      // Marked first: only what is still this job's is written.
      const marked = new Set(
        await markSent(
          client,
          messages.map((m) => m.notification),
        ),
      );
      await channel.write(
        client,
        messages.filter((m) => marked.has(m.notification.id)),
      );
      return marked.size;
    });
    outcome.sent += marked;
    outcome.lost += messages.length - marked;
  }

  async function run(lane: Lane): Promise<void> {
    for (let batch = await next(lane); batch; batch = await next(lane)) {
      const messages = await prepare(lane.channel, batch);
      if (messages.length === 0) continue;
      if (lane.channel.kind === 'send') await send(lane.channel, messages);
      else await write(lane.channel, messages);
    }
  }

  try {
    const runs = [...lanes.values()].flatMap((lane) => Array.from({ length: lane.runners }, () => run(lane)));
    // Every runner is waited for, a failed one too: what the others sent is recorded below.
    const settled = await Promise.allSettled(
      runs.map((r) =>
        r.catch((error: unknown) => {
          stopped ??= { error };
          throw error;
        }),
      ),
    );
    const failedRun = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failedRun) throw stopped?.error ?? failedRun.reason;
  } finally {
    // Even when a send threw: what was accepted is recorded before the job ends either way.
    // A failed write fails the job, unless it is failing already (that error is the one to see).
    const writes = await Promise.allSettled(written);
    lease.stop();
    const failedWrite = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failedWrite && !stopped) throw failedWrite.reason;
  }
  return outcome;
}

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
