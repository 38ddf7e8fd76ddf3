// Payment health's message kinds: the warning to users about to pay on a degraded channel (with a
// proven backup), the recovery notice to those warned, and ops's alerts with the numbers.
import type { IncidentChange } from '../../detectors/payment-health/index.ts';
import type { Config } from '../config/schema.ts';
import type { CauseEventPayload } from '../incidents/store.ts';
import { lockIncidentIfOpen } from '../incidents/store.ts';
import { readDegradedAudience } from '../platform/audience.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import { readWarnedUsers } from '../notifications/store.ts';
import type { CauseEvent, MessageContext, MessageKind } from './kind.ts';
import { causeResolved, messageTimeZone, opsAudience, opsChannels, preferencesUrl } from './shared.ts';

const DETECTOR = 'payment-health';

/** A payment incident's event payload, as its detector records it. */
export type PaymentEventPayload = IncidentChange & CauseEventPayload;
type PaymentEvent = CauseEvent<PaymentEventPayload>;

/** Channel ids to the names users see, read once per fan-out. */
type ChannelNames = Map<string, string>;

async function channelNames(ctx: MessageContext): Promise<ChannelNames> {
  const { channels } = await readPaymentChannels(ctx.platformDb, ctx.platformSchema);
  return new Map(channels.map((c) => [c.id, c.displayName]));
}

const nameOf = (names: ChannelNames, id: string) => names.get(id) ?? id;
const iso = (ms: number) => new Date(ms).toISOString();

function payUrl(config: Config, channel: string | null): string {
  return config.notifications.links.payUrl.replace('{channel}', encodeURIComponent(channel ?? ''));
}

const userChannels = (config: Config) => config.notifications.userChannels;
const payLink = (data: Record<string, unknown>) => (typeof data.payUrl === 'string' ? data.payUrl : null);

export const paymentDegraded: MessageKind<PaymentEventPayload, ChannelNames> = {
  id: 'payment-degraded',
  category: 'service',
  on: { detector: DETECTOR, events: ['opened'] },
  channels: userChannels,
  prepare: channelNames,
  async audience(ctx, event, page) {
    const config = ctx.config().notifications.audience;
    const members = await readDegradedAudience(ctx.platformDb, {
      schema: ctx.platformSchema,
      channel: event.payload.subject.channel,
      region: event.payload.subject.region,
      at: new Date(event.payload.at),
      stuckWithinMinutes: config.stuckWithinMinutes,
      usedWithinDays: config.usedWithinDays,
      after: page.after,
      limit: page.limit,
    });
    return {
      recipients: members.map((m) => ({
        userId: m.id,
        address: m.email,
        locale: m.locale,
        timezone: m.timezone,
        // Their payment is stuck now: the warning goes at once, whatever the hour.
        urgent: m.stuck,
      })),
      cursor: members.length < page.limit ? null : members[members.length - 1]!.id,
    };
  },
  data(ctx, event, recipient, names) {
    const { payload } = event;
    const backup = payload.backupChannels[0] ?? null;
    return {
      userName: null,
      channelName: nameOf(names, payload.subject.channel),
      region: payload.subject.region,
      issue: payload.kind,
      backupChannelName: backup ? nameOf(names, backup) : null,
      backupChannelNames: payload.backupChannels.map((id) => nameOf(names, id)),
      openedAt: iso(payload.at),
      timeZone: messageTimeZone(ctx, recipient),
      payUrl: payUrl(ctx.config(), backup),
      preferencesUrl: preferencesUrl(ctx, recipient.userId!),
    };
  },
  // A resolve waits for a batch being written, and no batch is written after it: the recovery
  // fan-out (which starts after the resolve) reads everyone who was warned.
  stillTrue: (client, event) => lockIncidentIfOpen(client, event.causeId),
  // A warning whose incident resolved before its turn helps nobody.
  stale: causeResolved,
  link: payLink,
};

export const paymentRecovered: MessageKind<PaymentEventPayload, ChannelNames> = {
  id: 'payment-recovered',
  category: 'service',
  // Never capped: whoever was warned hears that it is over.
  answers: paymentDegraded.id,
  on: { detector: DETECTOR, events: ['resolved'] },
  channels: userChannels,
  prepare: channelNames,
  // The users who were warned, on the channels they were warned on; only when it recovered (a
  // channel no longer observed, or whose level became its normal, has not).
  async audience(ctx, event, page) {
    if (event.payload.type !== 'resolved' || (event.payload.reason ?? 'recovered') !== 'recovered')
      return { recipients: [], cursor: null };
    const warned = await readWarnedUsers(ctx.db, event.causeId, paymentDegraded.id, page.after, page.limit);
    return {
      recipients: warned,
      cursor: warned.length < page.limit ? null : warned[warned.length - 1]!.userId,
    };
  },
  data(ctx, event, recipient, names) {
    return {
      userName: null,
      channelName: nameOf(names, event.payload.subject.channel),
      region: event.payload.subject.region,
      recoveredAt: iso(event.payload.at),
      timeZone: messageTimeZone(ctx, recipient),
      payUrl: payUrl(ctx.config(), event.payload.subject.channel),
      preferencesUrl: preferencesUrl(ctx, recipient.userId!),
    };
  },
  link: payLink,
};

function opsBase(ctx: MessageContext, event: PaymentEvent, names: ChannelNames) {
  const { payload } = event;
  return {
    incidentId: event.causeId,
    detector: payload.detector,
    channel: payload.subject.channel,
    channelName: nameOf(names, payload.subject.channel),
    region: payload.subject.region,
    kind: payload.kind,
    backupChannels: payload.backupChannels,
    dashboardUrl:
      ctx
        .config()
        .notifications.links.dashboardUrl?.replace('{incidentId}', encodeURIComponent(event.causeId)) ?? null,
    // Ops read times in the config's zone.
    timeZone: ctx.config().timezone,
  };
}

export const opsIncidentOpened: MessageKind<PaymentEventPayload, ChannelNames> = {
  id: 'ops-incident-opened',
  category: 'ops',
  on: { detector: DETECTOR, events: ['opened'] },
  channels: opsChannels,
  prepare: channelNames,
  audience: opsAudience,
  data: (ctx, event, _recipient, names) =>
    event.payload.type === 'opened'
      ? { ...opsBase(ctx, event, names), openedAt: iso(event.payload.at), evidence: event.payload.evidence }
      : {},
  // A whole region down reaches ops as one alert (grouped per kind, so opened and resolved never mix).
  group: (event) => `region:${event.payload.subject.region}`,
};

export const opsIncidentResolved: MessageKind<PaymentEventPayload, ChannelNames> = {
  id: 'ops-incident-resolved',
  category: 'ops',
  on: { detector: DETECTOR, events: ['resolved'] },
  channels: opsChannels,
  prepare: channelNames,
  audience: opsAudience,
  group: (event) => `region:${event.payload.subject.region}`,
  data(ctx, event, _recipient, names) {
    const { payload } = event;
    if (payload.type !== 'resolved') return {};
    return {
      ...opsBase(ctx, event, names),
      openedAt: iso(payload.openedAt),
      evidence: payload.openEvidence,
      resolvedAt: iso(payload.at),
      durationMinutes: Math.round((payload.at - payload.openedAt) / 60_000),
      reason: payload.reason ?? 'recovered',
      resolveEvidence: payload.evidence,
    };
  },
};

export const paymentHealthKinds = [opsIncidentOpened, opsIncidentResolved, paymentDegraded, paymentRecovered];
