// Fan-out: from one cause event to the notifications it causes. The message kinds the event sends
// (lib/messages/registry.ts) are taken one after the other, ops alerts first; each kind's audience
// is read in keyset-paginated batches, and each batch's notifications and the fan-out's cursor
// are committed together, so a fan-out killed anywhere resumes after its last batch and never
// records anyone twice (dedupe keys are unique as well). Delivery is the next step's job: this
// one only records (in-app messages, a write to forewarn's own database, are delivered in the
// batch's transaction). A kind with a `stillTrue` rule re-checks its cause in each batch's own
// transaction, holding the cause's row locked: a payment incident's resolve waits for a warning
// batch being written, and no batch is written after it, so the recovery fan-out (which starts
// after the resolve) reads everyone who was warned.
import { inTransaction, type Pool } from '../db/pool.ts';
import type { CauseEventPayload } from '../incidents/store.ts';
import type { CauseEvent, MessageContext, MessageKind, Recipient } from '../messages/kind.ts';
import { withUnsubscribeLink } from '../messages/unsubscribe.ts';
import { kindsFor } from '../messages/registry.ts';
import { readAhead } from '../read-ahead.ts';
import { splitInline, type InlineBatch } from '../channels/inline.ts';
import { channels } from '../channels/registry.ts';
import { capDrafts, capRule, holdFor, withholdDrafts } from './policy.ts';
import type { TemplateStore } from '../templates/store.ts';
import { maintenanceNoticeDrafts, userWarningsQuiet } from '../ops/quiet.ts';
import { fanoutStopped } from '../ops/store.ts';
import {
  advanceFanout,
  moveFanout,
  finishFanout,
  insertNotifications,
  readIncidentEvent,
  startFanout,
  type NotificationDraft,
} from './store.ts';

export interface FanoutContext extends MessageContext {
  db: Pool;
  templates: () => Promise<TemplateStore>;
}

export interface DraftBatch {
  kind: MessageKind;
  drafts: NotificationDraft[];
  /** Where the next batch of this kind starts; null when its audience is exhausted. */
  cursor: string | null;
  recipients: number;
}

export interface FanoutResult {
  eventId: string;
  recipients: number;
  notifications: number;
  batches: number;
  alreadyDone: boolean;
}

/**
 * Where a fan-out stands, as stored in fanouts.cursor: the kind it is at, the cursor within that
 * kind's audience, and how many recipients it recorded for that kind so far.
 */
interface Position {
  kind: string;
  after: string | null;
  taken: number;
}

function parsePosition(stored: string | null): Position | null {
  if (stored === null) return null;
  try {
    const value = JSON.parse(stored) as Partial<Position>;
    if (typeof value.kind === 'string' && typeof value.taken === 'number')
      return {
        kind: value.kind,
        after: typeof value.after === 'string' ? value.after : null,
        taken: value.taken,
      };
  } catch {
    // An earlier release's cursor: see below.
  }
  return null;
}

/**
 * Fans out one cause event. `deliver` is called after each committed batch with the ids of the
 * notifications it created, to put them on the delivery queue (if that is lost, the sweeper
 * finds them), and a key for the batch made from the event's uid, never its id, so that no
 * recreated or restored database can make the same key for another batch.
 */
export async function fanOutCauseEvent(
  ctx: FanoutContext,
  eventId: string,
  deliver: (ids: string[], batchKey: string) => Promise<void>,
): Promise<FanoutResult> {
  const row = await readIncidentEvent(ctx.db, eventId);
  if (!row) throw new Error(`cause event ${eventId} does not exist`);
  if (row.dispatchedAt) return { eventId, recipients: 0, notifications: 0, batches: 0, alreadyDone: true };
  const event = causeEventOf(row);
  const progress = await startFanout(ctx.db, eventId);
  const log = ctx.logger.child({ component: 'fanout', incidentId: event.causeId, eventId });
  const kinds = kindsFor(event);
  // A position this release cannot read (one an earlier release stored mid-way) starts over:
  // every message already recorded keeps its dedupe key, so nobody is recorded twice.
  const resumeAt = parsePosition(progress.cursor);
  let start = resumeAt ? kinds.findIndex((k) => k.id === resumeAt.kind) : 0;
  if (start < 0) start = kinds.length;
  const templates = await ctx.templates();
  let notifications = 0;
  let withheld = 0;
  let recipients = 0;
  let batches = 0;

  // A maintenance window withholds this cause's user warnings: ops are told once per occurrence.
  const quiet = await userWarningsQuiet(ctx.db, ctx.config(), event.payload, Date.now());
  if (quiet?.maintenance && kinds.some(warnsUsers)) {
    const ids = await insertNotifications(
      ctx.db,
      maintenanceNoticeDrafts(ctx.config(), quiet.maintenance, {
        id: event.causeId,
        detector: event.payload.detector,
        subjectKey: event.payload.subjectKey,
        kind: event.payload.kind,
      }),
    );
    if (ids.length > 0) await deliver(ids, `${row.uid}-maintenance`);
  }

  for (let index = start; index < kinds.length; index++) {
    const kind = kinds[index]!;
    const from = index === start && resumeAt ? resumeAt : { kind: kind.id, after: null, taken: 0 };
    // A warning whose cause resolved before its fan-out ran would arrive stale: nobody gets it.
    const stillTrue = kind.stillTrue;
    if (stillTrue && !(await inTransaction(ctx.db, (client) => stillTrue(client, event)))) {
      log.info({ kind: kind.id }, 'the cause resolved before this kind was fanned out: not sent');
      continue;
    }
    let taken = from.taken;
    let stopped = false;
    // The next batch is read and rendered while this one is written.
    const prepared = readAhead(renderedBatches(templates, kindBatches(ctx, event, kind, from.after, taken)));
    for await (const { batch, inline, toSend } of prepared) {
      taken += batch.recipients;
      const position: Position = { kind: kind.id, after: batch.cursor, taken };
      const ids = await inTransaction(ctx.db, async (client) => {
        if (kind.stillTrue && !(await kind.stillTrue(client, event))) return null;
        // Ops stopped this cause's fan-out (forewarn fanout stop): no more warnings are written.
        if (warnsUsers(kind) && (await fanoutStopped(client, event.causeId))) return null;
        // The frequency caps on what is delivered inline, counted in this transaction under the
        // users' cap locks (as a claim counts): those over the cap are recorded held or cancelled.
        const rule = capRule(ctx.config());
        const over = rule ? await capDrafts(client, inline.drafts, rule) : [];
        const created = await insertNotifications(client, [...toSend, ...over]);
        const inbox = await inline.record(client, new Set(over.map((d) => d.dedupeKey)));
        await advanceFanout(client, eventId, JSON.stringify(position), batch.recipients);
        notifications += created.length + inbox.delivered + inbox.failed;
        withheld += toSend.filter((d) => d.withheldReason != null).length;
        return created;
      });
      if (ids === null) {
        stopped = true;
        break;
      }
      batches++;
      recipients += batch.recipients;
      await deliver(ids, `${row.uid}-${progress.batches + batches}`);
    }
    if (stopped) {
      // Those told so far get what follows (a recovery notice); the rest of the audience hears nothing.
      log.info(
        { kind: kind.id, recipients, notifications, batches },
        'the cause changed or ops stopped its fan-out: the remaining batches of this kind are not written',
      );
    }
    const next = kinds[index + 1];
    if (next) await moveFanout(ctx.db, eventId, JSON.stringify({ kind: next.id, after: null, taken: 0 }));
  }
  await finishFanout(ctx.db, eventId);
  log.info({ recipients, notifications, withheld, batches }, `fan-out of cause ${event.type} event done`);
  return { eventId, recipients, notifications, batches, alreadyDone: false };
}

export function causeEventOf(row: {
  id: string;
  incidentId: string;
  type: string;
  seq: number;
  payload: Record<string, unknown>;
}): CauseEvent {
  return {
    eventId: row.id,
    causeId: row.incidentId,
    type: row.type,
    seq: row.seq,
    payload: row.payload as unknown as CauseEventPayload,
  };
}

interface RenderedBatch {
  batch: DraftBatch;
  /** Messages its channel delivers in the batch's own transaction (in-app), rendered already. */
  inline: InlineBatch;
  /** The rest, recorded for the delivery jobs, which own the claims and retries a send needs. */
  toSend: NotificationDraft[];
}

async function* renderedBatches(
  templates: TemplateStore,
  batches: AsyncIterable<DraftBatch>,
): AsyncGenerator<RenderedBatch> {
  for await (const batch of batches) {
    const { inline, queued } = splitInline(templates, batch.drafts, {
      linkOf: (draft) => batch.kind.link?.(draft.data) ?? null,
    });
    yield { batch, inline, toSend: queued };
  }
}

/**
 * Every kind's notifications for an event, batch by batch: what a dry run prints, with the
 * delivery policy judged at `at` (the dry run's time).
 */
export async function* eventDrafts(
  ctx: MessageContext,
  event: CauseEvent,
  at?: number,
): AsyncGenerator<DraftBatch> {
  for (const kind of kindsFor(event)) yield* kindBatches(ctx, event, kind, null, 0, at);
}

/**
 * One kind's notifications for an event, batch by batch, starting after `after`; the delivery
 * policy (quiet hours) is judged at `at`, by default when each batch is made, and its opt-outs
 * and suppressions as they are recorded now.
 */
export async function* kindBatches(
  ctx: MessageContext,
  event: CauseEvent,
  kind: MessageKind,
  after: string | null,
  taken: number,
  at?: number,
): AsyncGenerator<DraftBatch> {
  const config = ctx.config();
  const limit = config.notifications.batchSize;
  const prepared = await kind.prepare?.(ctx, event);
  const channels = kind.channels(config);
  // A muted subject, or one in a maintenance window, warns no users (recorded as withheld).
  const quiet = warnsUsers(kind)
    ? await userWarningsQuiet(ctx.db, config, event.payload, at ?? Date.now())
    : null;
  let cursor = after;
  for (;;) {
    const page = await kind.audience(ctx, event, { after: cursor, limit, taken }, prepared);
    const drafts: NotificationDraft[] = [];
    const now = at ?? Date.now();
    for (const recipient of page.recipients)
      for (const channel of channels) {
        if (reaches(recipient, channel))
          drafts.push(draftFor(ctx, event, kind, channel, recipient, prepared, now));
        // A user the channel cannot reach for want of an address is recorded, so that `deliveries
        // why` can say why they heard nothing there.
        else if (lacksAddress(recipient, channel))
          drafts.push({
            ...draftFor(ctx, event, kind, channel, recipient, prepared, now),
            withheldReason: `no address: the platform has no ${channel} address for this user`,
            notBefore: null,
            heldReason: null,
          });
      }
    taken += page.recipients.length;
    if (page.recipients.length > 0 || page.cursor !== null)
      yield {
        kind,
        // The policy's opt-outs and suppressions, one query per batch: withheld drafts are
        // recorded with their reason and never sent.
        drafts: quiet ? withholdAll(drafts, quiet.reason) : await withholdDrafts(ctx.db, drafts),
        cursor: page.cursor,
        recipients: page.recipients.length,
      };
    if (page.cursor === null) return;
    cursor = page.cursor;
  }
}

/** A kind that warns users: not an ops alert, and not a notice that answers another (a recovery). */
function warnsUsers(kind: MessageKind): boolean {
  return kind.category !== 'ops' && kind.answers === undefined;
}

/** The drafts, every user's withheld with `reason` (ops recipients' drafts as they are). */
function withholdAll(drafts: readonly NotificationDraft[], reason: string): NotificationDraft[] {
  return drafts.map((d) =>
    d.userId === null ? d : { ...d, withheldReason: reason, notBefore: null, heldReason: null },
  );
}

/**
 * Whether a recipient can get a message on a channel: what the channel needs (an address, a
 * user). A channel no implementation has is recorded all the same, and delivery fails it with the
 * reason.
 */
function reaches(recipient: Recipient, channel: string): boolean {
  if (recipient.channels && !recipient.channels.includes(channel)) return false;
  const needs = channels.get(channel)?.needs;
  if (needs === 'address') return recipient.address !== null;
  if (needs === 'user') return recipient.userId !== null;
  return true;
}

/** Whether a user would get a message on a channel that needs an address, but has none. */
function lacksAddress(recipient: Recipient, channel: string): boolean {
  if (recipient.userId === null || recipient.address !== null) return false;
  if (recipient.channels && !recipient.channels.includes(channel)) return false;
  return channels.get(channel)?.needs === 'address';
}

function draftFor(
  ctx: MessageContext,
  event: CauseEvent,
  kind: MessageKind,
  channel: string,
  recipient: Recipient,
  prepared: unknown,
  now: number,
): NotificationDraft {
  const to = recipient.userId ?? recipient.address!.toLowerCase();
  const timezone = recipient.timezone ?? null;
  // The delivery policy, as the message is recorded: one that comes in quiet hours waits for their end.
  const urgent = recipient.urgent === true;
  const hold = holdFor(ctx.config(), { category: kind.category, timezone, urgent }, now);
  return {
    // (cause, kind, channel, recipient): the same message can exist once, whoever records it.
    dedupeKey: `cause:${event.causeId}:${kind.id}:${channel}:${to}`,
    cause: `cause:${event.causeId}`,
    incidentId: event.causeId,
    kind: kind.id,
    channel: channel as NotificationDraft['channel'],
    audience: recipient.userId === null ? 'ops' : 'user',
    userId: recipient.userId,
    address: channels.get(channel)?.needs === 'address' ? recipient.address : null,
    locale: recipient.locale,
    data: withUnsubscribeLink(
      ctx,
      { category: kind.category, channel, userId: recipient.userId },
      kind.data(ctx, event, recipient, prepared),
      now,
    ),
    category: kind.category,
    groupKey: kind.group?.(event) ?? null,
    timezone,
    notBefore: hold?.until ?? null,
    heldReason: hold?.reason ?? null,
    ...(urgent ? { urgent } : {}),
  };
}
