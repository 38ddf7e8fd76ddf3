// The inventory watcher's low-stock message kinds (the restock alert lives beside them, written
// with the restock waves). `stock-low`: users with a pending order for a product that turned low
// are told, calmly, that delivery may be delayed, and offered a restock reminder (a signed link
// to the HTTP role's /restock/subscribe); the message is cancelled if the episode has ended by
// the time it would be sent. `ops-stock-low`: the ops addresses get the numbers behind it; the
// episodes that open within the ops group wait (a first pass over a catalogue finds many at
// once) reach ops as one message.
//
// `on` matches a detector and event types only, and the inventory detector's `opened` events
// open low-stock episodes and restocks alike: each kind's audience is empty for any cause kind
// but `low-stock`.
import { z } from 'zod';
import { lockIncidentIfOpen } from '../incidents/store.ts';
import { restockSubscribeUrl } from '../links.ts';
import { readPendingOrderUsers } from '../platform/inventory.ts';
import type { CauseEvent, MessageContext, MessageKind, Recipient } from './kind.ts';
import { causeResolved, messageTimeZone, opsAudience, opsChannels, preferencesUrl } from './shared.ts';

const DETECTOR = 'inventory';
const DAY_SECONDS = 86_400;

/** A low-stock cause event's payload, as the detector records it (detectors/inventory/types.ts). */
export const lowStockPayloadSchema = z.object({
  incidentId: z.string().min(1),
  detector: z.literal(DETECTOR),
  kind: z.literal('low-stock'),
  type: z.string().min(1),
  at: z.number(),
  productId: z.string().min(1),
  productName: z.string().min(1),
  stock: z.number().int(),
  threshold: z.number().int(),
  salesPerDay: z.number(),
  daysOfCover: z.number().nullable(),
  pendingOrders: z.number().int(),
  pendingUnits: z.number().int(),
  reason: z.enum(['threshold', 'cover']),
});
export type LowStockPayload = z.infer<typeof lowStockPayloadSchema>;

/** What a fan-out run reads once: the payload, parsed; null when the event is not a low-stock one. */
interface Prepared {
  payload: LowStockPayload | null;
}

/** A pending-order user, with what the notice tells them about their orders. */
export interface PendingOrderRecipient extends Recipient {
  userId: string;
  pendingOrders: number;
  earliestOrderedAt: number;
}

/** The payload of a low-stock event; null for the detector's other cause kinds (restock). */
export function lowStockPayload(event: CauseEvent): LowStockPayload | null {
  if ((event.payload as { kind?: unknown }).kind !== 'low-stock') return null;
  const parsed = lowStockPayloadSchema.safeParse(event.payload);
  if (!parsed.success)
    throw new Error(
      `inventory cause event ${event.eventId}: payload: expected a low-stock payload (${z.prettifyError(parsed.error)})`,
    );
  return parsed.data;
}

const prepare = (_ctx: MessageContext, event: CauseEvent): Promise<Prepared> =>
  Promise.resolve({ payload: lowStockPayload(event) });

export const stockLow: MessageKind<CauseEvent['payload'], Prepared, PendingOrderRecipient> = {
  id: 'stock-low',
  category: 'service',
  on: { detector: DETECTOR, events: ['opened'], kinds: ['low-stock'] },
  channels: (config) => config.notifications.userChannels,
  prepare,

  async audience(ctx, _event, page, { payload }) {
    if (!payload) return { recipients: [], cursor: null };
    const { users, cursor } = await readPendingOrderUsers(ctx.platformDb, {
      schema: ctx.platformSchema,
      productId: payload.productId,
      after: page.after,
      limit: page.limit,
    });
    return {
      recipients: users.map((u) => ({
        userId: u.id,
        address: u.email,
        locale: u.locale,
        timezone: u.timezone,
        pendingOrders: u.pendingOrders,
        earliestOrderedAt: u.earliestOrderedAt,
      })),
      cursor,
    };
  },

  data(ctx, _event, recipient, { payload }) {
    const expiresAt = Math.floor(Date.now() / 1000) + ctx.config().notifications.links.ttlDays * DAY_SECONDS;
    return {
      productName: payload!.productName,
      pendingOrders: recipient.pendingOrders,
      earliestOrderedAt: new Date(recipient.earliestOrderedAt).toISOString(),
      timeZone: messageTimeZone(ctx, recipient),
      restockUrl: restockSubscribeUrl({
        publicUrl: ctx.publicUrl,
        keys: ctx.linkKeys,
        userId: recipient.userId,
        productId: payload!.productId,
        expiresAt,
      }),
      preferencesUrl: preferencesUrl(ctx, recipient.userId),
    };
  },

  // A batch is written only while the episode is open (its row locked meanwhile).
  stillTrue: (client, event) => lockIncidentIfOpen(client, event.causeId),

  // A notice whose episode has ended (the stock recovered) is cancelled rather than sent.
  stale: causeResolved,

  link: (data) => (typeof data.restockUrl === 'string' ? data.restockUrl : null),
};

/** Ops are told of every low-stock episode, with its numbers: one page of the configured addresses. */
export const opsStockLow: MessageKind<CauseEvent['payload'], Prepared> = {
  id: 'ops-stock-low',
  category: 'ops',
  on: { detector: DETECTOR, events: ['opened'], kinds: ['low-stock'] },
  channels: opsChannels,
  prepare,

  audience: (ctx, event, page, { payload }) =>
    payload ? opsAudience(ctx, event, page) : Promise.resolve({ recipients: [], cursor: null }),

  data(ctx, event, _recipient, { payload }) {
    const p = payload!;
    const dashboardUrl = ctx.config().notifications.links.dashboardUrl;
    return {
      incidentId: p.incidentId,
      productId: p.productId,
      productName: p.productName,
      stock: p.stock,
      threshold: p.threshold,
      salesPerDay: p.salesPerDay,
      daysOfCover: p.daysOfCover,
      pendingOrders: p.pendingOrders,
      pendingUnits: p.pendingUnits,
      reason: p.reason,
      openedAt: new Date(p.at).toISOString(),
      // Ops read times in the config's zone.
      timeZone: ctx.config().timezone,
      dashboardUrl: dashboardUrl?.replace('{incidentId}', encodeURIComponent(event.causeId)) ?? null,
    };
  },

  // Low-stock episodes that open within notifications.ops.groupWaitSeconds reach ops as one email.
  group: () => 'low-stock',
};

export const inventoryMessageKinds = [stockLow, opsStockLow] as const;
