// Fan-out: from one incident event to the notifications it causes. The audience is read in
// keyset-paginated batches; each batch's notifications and the cursor are committed together,
// so a fan-out killed anywhere resumes after its last batch and never records anyone twice
// (dedupe keys are unique as well). Delivery is the next step's job: this one only records.
// A warning batch re-checks its cause in its own transaction, with the incident's row locked:
// a resolve waits for a batch being written, and no batch is written after it, so the recovery
// fan-out (which starts after the resolve) reads everyone who was warned.
import type { Config } from '../config/schema.ts';
import { inTransaction, type Pool } from '../db/pool.ts';
import { lockIncidentIfOpen } from '../incidents/store.ts';
import type { IncidentChange } from '../../detectors/payment-health/index.ts';
import { signedUrl } from '../links.ts';
import type { Logger } from '../logger.ts';
import { readAhead } from '../read-ahead.ts';
import { readDegradedAudience } from '../platform/audience.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import {
  advanceFanout,
  finishFanout,
  insertNotifications,
  isIncidentResolved,
  readIncidentEvent,
  recordInAppDeliveries,
  readWarnedRecipients,
  startFanout,
  type DeliveryChannel,
  type InAppDelivery,
  type NotificationDraft,
} from './store.ts';
import type { TemplateStore } from '../templates/store.ts';
import { renderNotification, reasonOf } from './render.ts';

export interface FanoutContext {
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  config: () => Config;
  logger: Logger;
  linkSecret: string;
  templates: () => Promise<TemplateStore>;
}

export type IncidentEventPayload = IncidentChange & { incidentId: string };

export interface DraftBatch {
  drafts: NotificationDraft[];
  /** Where the next batch starts; null when the audience is exhausted. */
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
 * Fans out one incident event. `deliver` is called after each committed batch with the ids of
 * the notifications it created, to put them on the delivery queue (if that is lost, the
 * sweeper finds them), and a key for the batch made from the event's uid, never its id, so that
 * no recreated or restored database can make the same key for another batch.
 */
export async function fanOutIncidentEvent(
  ctx: FanoutContext,
  eventId: string,
  deliver: (ids: string[], batchKey: string) => Promise<void>,
): Promise<FanoutResult> {
  const event = await readIncidentEvent(ctx.db, eventId);
  if (!event) throw new Error(`incident event ${eventId} does not exist`);
  if (event.dispatchedAt) return { eventId, recipients: 0, notifications: 0, batches: 0, alreadyDone: true };
  const payload = event.payload as unknown as IncidentEventPayload;
  const progress = await startFanout(ctx.db, eventId);
  const log = ctx.logger.child({ component: 'fanout', incidentId: payload.incidentId, eventId });
  let notifications = 0;
  let recipients = 0;
  let batches = 0;

  if (progress.cursor === null && progress.batches === 0) {
    const ops = await opsDrafts(ctx, payload);
    const ids = await inTransaction(ctx.db, async (client) => {
      const created = await insertNotifications(client, ops);
      await advanceFanout(client, eventId, '', 0);
      return created;
    });
    await deliver(ids, `${event.uid}-ops`);
    notifications += ids.length;
  }

  // A warning for an incident that resolved before its fan-out ran would arrive stale: ops were
  // told above, users are not.
  const stale = payload.type === 'opened' && (await isIncidentResolved(ctx.db, payload.incidentId));
  const templates = await ctx.templates();
  let cursor = progress.cursor === '' ? null : progress.cursor;
  // The next batch is read and rendered while this one is written.
  const prepared = stale ? [] : readAhead(renderedBatches(templates, draftBatches(ctx, payload, cursor)));
  let resolvedMidway = false;
  for await (const { batch, inApp, toSend } of prepared) {
    const ids = await inTransaction(ctx.db, async (client) => {
      if (payload.type === 'opened' && !(await lockIncidentIfOpen(client, payload.incidentId))) {
        resolvedMidway = true;
        return null;
      }
      const created = await insertNotifications(client, toSend);
      const inbox = await recordInAppDeliveries(client, inApp);
      await advanceFanout(client, eventId, batch.cursor ?? cursor ?? '', batch.recipients);
      notifications += created.length + inbox.delivered + inbox.failed;
      return created;
    });
    if (ids === null) break;
    batches++;
    recipients += batch.recipients;
    await deliver(ids, `${event.uid}-${progress.batches + batches}`);
    cursor = batch.cursor;
  }
  await finishFanout(ctx.db, eventId);
  if (resolvedMidway) {
    // Those warned so far get the recovery notice; the rest of the audience hears nothing.
    log.info(
      { recipients, notifications, batches },
      'incident resolved during its warning fan-out: the remaining batches are not written',
    );
  }
  log.info({ recipients, notifications, batches }, `fan-out of incident ${payload.type} event done`);
  return { eventId, recipients, notifications, batches, alreadyDone: false };
}

interface RenderedBatch {
  batch: DraftBatch;
  /** In-app messages, rendered: they are delivered in the batch's own transaction. */
  inApp: InAppDelivery[];
  /** Emails, recorded for the delivery jobs, which own the claims and retries a send needs. */
  toSend: NotificationDraft[];
}

async function* renderedBatches(
  templates: TemplateStore,
  batches: AsyncIterable<DraftBatch>,
): AsyncGenerator<RenderedBatch> {
  for await (const batch of batches) {
    const inApp: InAppDelivery[] = [];
    const toSend: NotificationDraft[] = [];
    for (const draft of batch.drafts) {
      if (draft.channel === 'inapp') inApp.push({ draft, message: renderInApp(templates, draft) });
      else toSend.push(draft);
    }
    yield { batch, inApp, toSend };
  }
}

/** The users' notifications for an event, batch by batch, starting after `after`. */
export async function* draftBatches(
  ctx: FanoutContext,
  payload: IncidentEventPayload,
  after: string | null,
): AsyncGenerator<DraftBatch> {
  const config = ctx.config().notifications;
  const channels = await channelNames(ctx);
  const { channel, region } = payload.subject;
  if (payload.type === 'opened') {
    const at = new Date(payload.at);
    let cursor = after;
    for (;;) {
      const members = await readDegradedAudience(ctx.platformDb, {
        schema: ctx.platformSchema,
        channel,
        region,
        at,
        stuckWithinMinutes: config.audience.stuckWithinMinutes,
        usedWithinDays: config.audience.usedWithinDays,
        after: cursor,
        limit: config.batchSize,
      });
      if (members.length === 0) return;
      const drafts: NotificationDraft[] = [];
      for (const member of members) {
        for (const via of config.userChannels) {
          if (via === 'email' && !member.email) continue;
          drafts.push(
            userDraft(
              ctx,
              payload,
              'payment-degraded',
              via,
              member.id,
              member.email,
              member.locale,
              degradedData(ctx, payload, channels, member.id),
            ),
          );
        }
      }
      cursor = members[members.length - 1]!.id;
      yield { drafts, cursor, recipients: members.length };
      if (members.length < config.batchSize) return;
    }
  }
  // Resolved: the users who were warned, on the channels they were warned on; only when it
  // recovered (a channel no longer observed, or whose level became its normal, has not).
  if ((payload.reason ?? 'recovered') !== 'recovered') return;
  let cursor = parseWarnedCursor(after);
  for (;;) {
    const warned = await readWarnedRecipients(ctx.db, payload.incidentId, cursor, config.batchSize);
    if (warned.length === 0) return;
    const drafts = warned.map((w) =>
      userDraft(
        ctx,
        payload,
        'payment-recovered',
        w.channel,
        w.userId,
        w.address,
        w.locale,
        recoveredData(ctx, payload, channels, w.userId),
      ),
    );
    const last = warned[warned.length - 1]!;
    cursor = { userId: last.userId, channel: last.channel };
    yield {
      drafts,
      cursor: `${last.userId}\t${last.channel}`,
      recipients: new Set(warned.map((w) => w.userId)).size,
    };
    if (warned.length < config.batchSize) return;
  }
}

/** Ops alerts: one email per configured address, with the numbers. */
export async function opsDrafts(
  ctx: FanoutContext,
  payload: IncidentEventPayload,
): Promise<NotificationDraft[]> {
  const config = ctx.config().notifications;
  const channels = await channelNames(ctx);
  const kind = payload.type === 'opened' ? 'ops-incident-opened' : 'ops-incident-resolved';
  const base = {
    incidentId: payload.incidentId,
    detector: payload.detector,
    channel: payload.subject.channel,
    channelName: channels.get(payload.subject.channel) ?? payload.subject.channel,
    region: payload.subject.region,
    kind: payload.kind,
    backupChannels: payload.backupChannels,
    dashboardUrl:
      config.links.dashboardUrl?.replace('{incidentId}', encodeURIComponent(payload.incidentId)) ?? null,
  };
  const data =
    payload.type === 'opened'
      ? { ...base, openedAt: iso(payload.at), evidence: payload.evidence }
      : {
          ...base,
          openedAt: iso(payload.openedAt),
          evidence: payload.openEvidence,
          resolvedAt: iso(payload.at),
          durationMinutes: Math.round((payload.at - payload.openedAt) / 60_000),
          reason: payload.reason ?? 'recovered',
          resolveEvidence: payload.evidence,
        };
  return config.ops.emails.map((address) => ({
    dedupeKey: `incident:${payload.incidentId}:${kind}:email:${address.toLowerCase()}`,
    cause: `incident:${payload.incidentId}`,
    incidentId: payload.incidentId,
    kind,
    channel: 'email' as const,
    audience: 'ops' as const,
    userId: null,
    address,
    locale: config.ops.locale,
    data,
  }));
}

function userDraft(
  _ctx: FanoutContext,
  payload: IncidentEventPayload,
  kind: 'payment-degraded' | 'payment-recovered',
  channel: DeliveryChannel,
  userId: string,
  email: string | null,
  locale: string,
  data: Record<string, unknown>,
): NotificationDraft {
  return {
    // (cause, user, kind, channel): the same message can exist once, whoever records it.
    dedupeKey: `incident:${payload.incidentId}:${kind}:${channel}:${userId}`,
    cause: `incident:${payload.incidentId}`,
    incidentId: payload.incidentId,
    kind,
    channel,
    audience: 'user',
    userId,
    address: channel === 'email' ? email : null,
    locale,
    data,
  };
}

function degradedData(
  ctx: FanoutContext,
  payload: IncidentEventPayload,
  names: Map<string, string>,
  userId: string,
): Record<string, unknown> {
  const backup = payload.backupChannels[0] ?? null;
  return {
    userName: null,
    channelName: names.get(payload.subject.channel) ?? payload.subject.channel,
    region: payload.subject.region,
    issue: payload.kind,
    backupChannelName: backup ? (names.get(backup) ?? backup) : null,
    backupChannelNames: payload.backupChannels.map((id) => names.get(id) ?? id),
    openedAt: iso(payload.at),
    payUrl: payUrl(ctx, backup),
    preferencesUrl: preferencesUrl(ctx, userId),
  };
}

function recoveredData(
  ctx: FanoutContext,
  payload: IncidentEventPayload,
  names: Map<string, string>,
  userId: string,
): Record<string, unknown> {
  return {
    userName: null,
    channelName: names.get(payload.subject.channel) ?? payload.subject.channel,
    region: payload.subject.region,
    recoveredAt: iso(payload.at),
    payUrl: payUrl(ctx, payload.subject.channel),
    preferencesUrl: preferencesUrl(ctx, userId),
  };
}

function payUrl(ctx: FanoutContext, channel: string | null): string {
  const template = ctx.config().notifications.links.payUrl;
  return template.replace('{channel}', encodeURIComponent(channel ?? ''));
}

/** The settings link acts on the account, so it carries a signed token naming the user. */
function preferencesUrl(ctx: FanoutContext, userId: string): string {
  const links = ctx.config().notifications.links;
  const expiresAt = Math.floor(Date.now() / 1000) + links.ttlDays * 86_400;
  return signedUrl(
    links.preferencesUrl,
    { userId, purpose: 'notification-preferences', expiresAt },
    ctx.linkSecret,
  );
}

async function channelNames(ctx: FanoutContext): Promise<Map<string, string>> {
  const { channels } = await readPaymentChannels(ctx.platformDb, ctx.platformSchema);
  return new Map(channels.map((c) => [c.id, c.displayName]));
}

function parseWarnedCursor(cursor: string | null): { userId: string; channel: DeliveryChannel } | null {
  if (!cursor) return null;
  const [userId, channel] = cursor.split('\t');
  return userId && (channel === 'email' || channel === 'inapp') ? { userId, channel } : null;
}

const iso = (ms: number) => new Date(ms).toISOString();

function renderInApp(templates: TemplateStore, draft: NotificationDraft): InAppDelivery['message'] {
  try {
    const message = renderNotification(templates, draft);
    return {
      title: message.title ?? '',
      body: message.text,
      link: typeof draft.data.payUrl === 'string' ? draft.data.payUrl : null,
    };
  } catch (error) {
    return { error: reasonOf(error) };
  }
}
