// The restock alert: when a product that subscribers wait for is back, they are told in waves,
// earliest sign-up first, each wave at most the cause's `capacity` (available stock times the
// configured multiplier, computed by the inventory detector). Subscribers are the platform's
// restock_subscriptions and forewarn's restock_requests, two tables that may sit on two database
// servers: each is read in keyset order on its own and the two are merged here, in code.
//
// Category `requested`: it answers the user's own request, so it is neither promotional nor
// capped. A delivery policy that holds it (quiet hours, in the recipient's `timezone`) only moves
// its turn: the stale rule re-reads the stock when the turn comes and cancels an alert whose
// stock is gone, however long it was held.
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { lockIncidentIfOpen } from '../incidents/store.ts';
import { RESTOCK_STOP, signLinkToken, signedUrl, type LinkClaims, type LinkKeyring } from '../links.ts';
import type { Logger } from '../logger.ts';
import {
  readProductAvailability,
  readRestockSubscribers,
  readSubscriptionPage,
  type RestockSubscriber,
  type Signup,
  type SignupKey,
  type SignupTime,
} from '../platform/restock.ts';
import {
  readOptOuts,
  readOptedOutSince,
  readRequestPage,
  readRequestsOf,
  readRestockAlerts,
  type PastAlert,
} from '../restock/audience-store.ts';
import type {
  AudiencePage,
  CauseEvent,
  MessageContext,
  MessageKind,
  QueuedMessage,
  Recipient,
} from './kind.ts';
import { messageTimeZone } from './shared.ts';

export const RESTOCK_ALERT = 'restock-alert';
const DETECTOR = 'inventory';
const CAUSE_KIND = 'restock';
/** Signed-link purpose of "stop alerts for this product" (served by the HTTP role). */
/** Chunks of sign-ups one audience call reads at most before it returns what it found. */
const MAX_CHUNKS_PER_PAGE = 8;

/** A restock cause event's payload, as the inventory detector records it (`opened` = wave 1, then `wave`). */
export const restockPayloadSchema = z.looseObject({
  incidentId: z.union([z.string().min(1), z.number().int()]).transform(String),
  detector: z.literal(DETECTOR),
  kind: z.literal(CAUSE_KIND),
  type: z.string().min(1),
  at: z.number().int(),
  productId: z.string().min(1),
  productName: z.string().min(1),
  stock: z.number().int(),
  pendingUnits: z.number().int().nonnegative(),
  available: z.number().int(),
  /** The wave's size: at most this many recipients. */
  capacity: z.number().int().nonnegative(),
  wave: z.number().int().positive(),
  /** Epoch ms. */
  restockedAt: z.number().int(),
});
export type RestockPayload = z.output<typeof restockPayloadSchema>;

/** What every recipient's data and the audience need, read once per fan-out run. */
export interface RestockPrepared {
  payload: RestockPayload;
  channels: readonly string[];
  /** Epoch seconds: the signed links last links.ttlDays from the event, whenever the message goes out. */
  linksExpireAt: number;
  /** The data every recipient of the event shares. */
  shared: {
    productId: string;
    productName: string;
    available: number;
    wave: number;
    restockedAt: string;
    productUrl: string;
  };
  stopLink: SignedLinks;
  preferencesLink: SignedLinks;
}

export interface RestockRecipient extends Recipient {
  userId: string;
  /** For a delivery policy that holds messages in the recipient's night (quiet hours). */
  timezone: string | null;
  /** The sign-up that placed the user in the order (the earliest not yet answered). */
  signedUpAt: SignupTime;
  source: 'platform' | 'forewarn';
}

/** A sign-up read from one of the two sources. */
export interface SignupRow extends Signup {
  source: 'platform' | 'forewarn';
}

/** Why a sign-up gets no alert in this wave. */
export type SkipReason =
  /** Alerted for this cause already, or every sign-up of the user is older than their last alert. */
  | 'alerted'
  /** The user's other sign-up is the one that counts (it is earlier, or this one is already answered). */
  | 'duplicate'
  | 'opted-out'
  /** Breaks the contract: no such user, or a status other than active/disabled/deleted. */
  | 'unknown-user'
  | 'invalid-status'
  | 'inactive'
  /** Nothing would really be sent (email only, and no address): it takes no place in the wave. */
  | 'no-channel';

export type Verdict = { recipient: RestockRecipient } | { skip: SkipReason };

/** What is known about a sign-up's user when it is judged. */
export interface SignupFacts {
  /** The user (platform) and their platform subscription to the product; undefined: not looked up. */
  subscriber: RestockSubscriber | undefined;
  /** Their forewarn restock request for the product, if any. */
  requestedAt: SignupTime | null;
  /** When the user stopped alerts for the product, if they did: earlier sign-ups no longer count. */
  optedOutAt: SignupTime | null;
  alert: PastAlert | undefined;
}

const STATUSES = new Set(['active', 'disabled', 'deleted']);

/**
 * Keyset order of sign-ups: time, then user id byte-wise (UTF-8, as COLLATE "C" compares), then
 * the platform's before forewarn's, the order both SQL readers return.
 */
export function compareSignups(a: SignupRow, b: SignupRow): number {
  return compareKeys(a, b) || rank(a.source) - rank(b.source);
}

function compareKeys(a: SignupKey, b: SignupKey): number {
  if (a.at !== b.at) return a.at < b.at ? -1 : 1;
  return compareUtf8(a.userId, b.userId);
}

/**
 * Byte-wise UTF-8 order (= code point order) without encoding: UTF-16 code units order the same
 * way except a surrogate (half of a code point above U+FFFF) against U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    return xs === ys ? x - y : xs ? 1 : -1;
  }
  return a.length - b.length;
}

const rank = (source: SignupRow['source']) => (source === 'platform' ? 0 : 1);

/**
 * Merges one page of each source (each read with `limit` after the same key) into the sign-ups
 * that are known completely: up to the smaller last key of a source that filled its page (the
 * other may hold more before it on its next page). `exhausted`: neither filled its page, nothing
 * comes after these.
 */
export function mergeSignupPages(
  platform: readonly Signup[],
  forewarn: readonly Signup[],
  limit: number,
): { rows: SignupRow[]; exhausted: boolean; bound: SignupKey | null } {
  const rows: SignupRow[] = [
    ...platform.map((s) => ({ ...s, source: 'platform' as const })),
    ...forewarn.map((s) => ({ ...s, source: 'forewarn' as const })),
  ].sort(compareSignups);
  const lasts = [platform, forewarn]
    .filter((page) => page.length >= limit)
    .map((page) => page[page.length - 1]!)
    .sort(compareKeys);
  const bound = lasts[0] ?? null;
  if (!bound) return { rows, exhausted: true, bound: null };
  return { rows: rows.filter((r) => compareKeys(r, bound) <= 0), exhausted: false, bound };
}

/**
 * Whether one sign-up places its user in this wave. A user counts once, at the earliest of their
 * sign-ups (platform and forewarn) that is later than their last restock alert for the product
 * and than their "stop alerts" for it: a subscription is alerted once, after a later restock only
 * a user who subscribed again is alerted, and subscribing again after stopping asks again. Only
 * users who will really be sent something take a place.
 */
export function judgeSignup(row: SignupRow, facts: SignupFacts, channels: readonly string[]): Verdict {
  if (facts.alert?.thisCause) return { skip: 'alerted' };
  const lastAlert = facts.alert?.lastAlertedAt ?? null;
  const after = (at: SignupTime | null, bound: SignupTime | null): at is SignupTime =>
    at !== null && (bound === null || at > bound);
  const platformAt = facts.subscriber?.subscribedAt ?? null;
  const unanswered: SignupRow[] = [];
  if (after(platformAt, lastAlert))
    unanswered.push({ userId: row.userId, at: platformAt, source: 'platform' });
  if (after(facts.requestedAt, lastAlert))
    unanswered.push({ userId: row.userId, at: facts.requestedAt, source: 'forewarn' });
  if (unanswered.length === 0) return { skip: 'alerted' };
  const wanted = unanswered.filter((s) => after(s.at, facts.optedOutAt));
  if (wanted.length === 0) return { skip: 'opted-out' };
  const counted = wanted.sort(compareSignups)[0]!;
  // The row as read may be older than the lookup (a request asked again moved forward): only the
  // sign-up that counts now places the user; the other is met, or was, at its own place.
  if (counted.source !== row.source || counted.at !== row.at) return { skip: 'duplicate' };
  const user = facts.subscriber?.user ?? null;
  if (!user) return { skip: 'unknown-user' };
  if (!STATUSES.has(user.status)) return { skip: 'invalid-status' };
  if (user.status !== 'active') return { skip: 'inactive' };
  if (!channels.some((c) => c !== 'email' || user.email)) return { skip: 'no-channel' };
  return {
    recipient: {
      userId: row.userId,
      address: user.email,
      locale: user.locale,
      timezone: user.timezone,
      signedUpAt: row.at,
      source: row.source,
    },
  };
}

/** `<sign-up time>|<user id>`: the time holds no "|". */
export function encodeCursor(key: SignupKey): string {
  return `${key.at}|${key.userId}`;
}

export function decodeCursor(cursor: string | null): SignupKey | null {
  if (cursor === null || cursor === '') return null;
  const bar = cursor.indexOf('|');
  const at = bar < 0 ? '' : cursor.slice(0, bar);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(at) || bar === cursor.length - 1) {
    throw new Error(
      `${RESTOCK_ALERT}: audience cursor ${JSON.stringify(cursor)}: expected "<YYYY-MM-DDTHH:MM:SS.uuuuuuZ>|<user id>"`,
    );
  }
  return { at, userId: cursor.slice(bar + 1) };
}

/** The event's payload when it is a restock's (the kind listens to every inventory event of its types). */
export function restockPayloadOf(event: CauseEvent): RestockPayload | null {
  if (event.payload.detector !== DETECTOR || event.payload.kind !== CAUSE_KIND) return null;
  const parsed = restockPayloadSchema.safeParse(event.payload);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `payload.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(
      `${RESTOCK_ALERT}: cause event ${event.eventId} (cause ${event.causeId}, ${event.type}) is not a restock event as the inventory detector records it: ${problems}`,
    );
  }
  return parsed.data;
}

async function prepare(ctx: MessageContext, event: CauseEvent): Promise<RestockPrepared | null> {
  const payload = restockPayloadOf(event);
  if (!payload) return null;
  const config = ctx.config();
  const links = config.notifications.links;
  return {
    payload,
    channels: restockAlert.channels(config),
    linksExpireAt: Math.floor(payload.at / 1000) + links.ttlDays * 86_400,
    shared: {
      productId: payload.productId,
      productName: payload.productName,
      available: payload.available,
      wave: payload.wave,
      restockedAt: new Date(payload.restockedAt).toISOString(),
      productUrl: productUrl(links.productUrl, payload.productId),
    },
    stopLink: signedLinks(restockStopBase(ctx.publicUrl)),
    preferencesLink: signedLinks(links.preferencesUrl),
  };
}

async function audience(
  ctx: MessageContext,
  event: CauseEvent,
  page: { after: string | null; limit: number; taken: number },
  prepared: RestockPrepared | null,
): Promise<AudiencePage<RestockRecipient>> {
  if (!prepared) return { recipients: [], cursor: null };
  const { payload, channels } = prepared;
  const room = payload.capacity - page.taken;
  if (room <= 0) return { recipients: [], cursor: null };
  const want = Math.min(page.limit, room);
  const recipients: RestockRecipient[] = [];
  const skipped = new Map<SkipReason, number>();
  const invalid: InvalidRow[] = [];
  let after = decodeCursor(page.after);
  // Most sign-ups become recipients; a chunk grows when many are skipped (alerted before).
  let chunk = want;
  for (let round = 0; round < MAX_CHUNKS_PER_PAGE; round++) {
    const [fromPlatform, fromForewarn] = await Promise.all([
      readSubscriptionPage(ctx.platformDb, ctx.platformSchema, payload.productId, after, chunk),
      readRequestPage(ctx.db, payload.productId, after, chunk),
    ]);
    const merged = mergeSignupPages(fromPlatform, fromForewarn, chunk);
    const facts = await lookUpFacts(ctx, payload, event.causeId, merged.rows);
    for (const row of merged.rows) {
      const verdict = judgeSignup(row, facts(row.userId), channels);
      if ('skip' in verdict) {
        skipped.set(verdict.skip, (skipped.get(verdict.skip) ?? 0) + 1);
        if (verdict.skip === 'unknown-user' || verdict.skip === 'invalid-status')
          invalid.push(invalidRow(row, payload.productId, verdict.skip));
        continue;
      }
      recipients.push(verdict.recipient);
      if (recipients.length === want) {
        report(ctx.logger, event, skipped, invalid);
        const full = page.taken + recipients.length >= payload.capacity;
        return { recipients, cursor: full ? null : encodeCursor(row) };
      }
    }
    if (merged.exhausted) {
      report(ctx.logger, event, skipped, invalid);
      return { recipients, cursor: null };
    }
    after = merged.bound;
    chunk = Math.min(page.limit, chunk * 2);
  }
  // A short page with a cursor: the fan-out commits the progress and asks again.
  report(ctx.logger, event, skipped, invalid);
  return { recipients, cursor: after ? encodeCursor(after) : null };
}

/** Everything judging a chunk's sign-ups needs, read in one query per table for the chunk. */
async function lookUpFacts(
  ctx: MessageContext,
  payload: RestockPayload,
  causeId: string,
  rows: readonly SignupRow[],
): Promise<(userId: string) => SignupFacts> {
  const userIds = [...new Set(rows.map((r) => r.userId))];
  const [subscribers, requests, optOuts, alerts] = await Promise.all([
    readRestockSubscribers(ctx.platformDb, ctx.platformSchema, payload.productId, userIds),
    readRequestsOf(ctx.db, payload.productId, userIds),
    readOptOuts(ctx.db, payload.productId, userIds),
    readRestockAlerts(
      ctx.db,
      {
        detector: DETECTOR,
        causeKind: CAUSE_KIND,
        kind: RESTOCK_ALERT,
        productId: payload.productId,
        causeId,
      },
      userIds,
    ),
  ]);
  return (userId) => ({
    subscriber: subscribers.get(userId),
    requestedAt: requests.get(userId) ?? null,
    optedOutAt: optOuts.get(userId) ?? null,
    alert: alerts.get(userId),
  });
}

interface InvalidRow {
  table: string;
  rowId: string;
  reason: string;
}

/** A sign-up whose user breaks the contract: the row to name in the log. */
function invalidRow(row: SignupRow, productId: string, skip: 'unknown-user' | 'invalid-status'): InvalidRow {
  if (skip === 'invalid-status')
    return {
      table: 'users',
      rowId: row.userId,
      reason: `user ${row.userId} has a status other than active, disabled or deleted`,
    };
  return {
    table: row.source === 'platform' ? 'restock_subscriptions' : 'forewarn.restock_requests',
    rowId: `${row.userId}:${productId}`,
    reason: `user ${row.userId} has no row in users`,
  };
}

/** One line per page for what was skipped, and the rows that break the contract by id (a few). */
function report(
  logger: Logger,
  event: CauseEvent,
  skipped: ReadonlyMap<SkipReason, number>,
  invalid: readonly InvalidRow[],
): void {
  const log = logger.child({ component: 'messages', kind: RESTOCK_ALERT, causeId: event.causeId });
  for (const row of invalid.slice(0, 10)) {
    log.warn(
      { code: 'FW_PLATFORM_ROW_INVALID', table: row.table, rowId: row.rowId, reason: row.reason },
      `skipped ${row.table} row ${row.rowId}: ${row.reason}`,
    );
  }
  if (skipped.size > 0) log.debug({ skipped: Object.fromEntries(skipped) }, 'restock sign-ups skipped');
}

function data(
  ctx: MessageContext,
  event: CauseEvent,
  recipient: RestockRecipient,
  prepared: RestockPrepared | null,
): Record<string, unknown> {
  if (!prepared)
    throw new Error(
      `${RESTOCK_ALERT}: cause event ${event.eventId} is not a restock event; it has no recipients`,
    );
  const { userId } = recipient;
  const expiresAt = prepared.linksExpireAt;
  return {
    ...prepared.shared,
    stopUrl: prepared.stopLink(
      { userId, purpose: RESTOCK_STOP, subject: prepared.payload.productId, expiresAt },
      ctx.linkKeys,
    ),
    preferencesUrl: prepared.preferencesLink(
      { userId, purpose: 'notification-preferences', expiresAt },
      ctx.linkKeys,
    ),
    timeZone: messageTimeZone(ctx, recipient),
  };
}

/** Signs links to one base for many users. */
export type SignedLinks = (claims: LinkClaims, keys: LinkKeyring) => string;

/**
 * The very string signedUrl(base, claims, keys) makes, with the base parsed once rather than
 * once per recipient (a wave may have 50,000).
 */
export function signedLinks(base: string): SignedLinks {
  const url = new URL(base);
  if (url.hash !== '' || url.searchParams.has('token'))
    return (claims, keys) => signedUrl(base, claims, keys);
  // The query serialised as URLSearchParams does when signedUrl appends the token to it.
  const query = url.searchParams.toString();
  url.search = '';
  const prefix = `${url.toString()}?${query === '' ? '' : `${query}&`}token=`;
  return (claims, keys) => `${prefix}${signLinkToken(claims, keys)}`;
}

export function productUrl(template: string, productId: string): string {
  return template.replaceAll('{product}', encodeURIComponent(productId));
}

/**
 * "Stop alerts for this product": the HTTP role's /restock/stop, whose token names the user and,
 * as its subject, the product (what the route checks). The same URL as restockStopUrl in
 * lib/links.ts, with the base parsed once per wave.
 */
function restockStopBase(publicUrl: string): string {
  return new URL('restock/stop', publicUrl.endsWith('/') ? publicUrl : `${publicUrl}/`).toString();
}

/**
 * When a queued alert's turn comes (it may have been held): cancelled if the product's available
 * stock (stock minus what pending orders will take, read from the platform now) is gone, or the
 * product is gone, or the user stopped alerts for the product after the alert was recorded.
 */
async function stale(
  db: Parameters<NonNullable<MessageKind['stale']>>[0],
  ctx: Omit<MessageContext, 'db' | 'linkKeys'>,
  messages: readonly QueuedMessage[],
): Promise<Set<string>> {
  const log = ctx.logger.child({ component: 'messages', kind: RESTOCK_ALERT });
  const withProduct = messages.flatMap((m) => {
    const productId = m.data.productId;
    if (typeof productId === 'string' && productId !== '') return [{ message: m, productId }];
    log.warn(
      { notificationId: m.id },
      `restock alert ${m.id} has no productId in its data; its stock cannot be checked`,
    );
    return [];
  });
  const products = [...new Set(withProduct.map((m) => m.productId))];
  const [availability, optedOut] = await Promise.all([
    readProductAvailability(ctx.platformDb, ctx.platformSchema, products),
    readOptedOutSince(
      db,
      withProduct.map(({ message }) => message.id),
    ),
  ]);
  const cancelled = new Set<string>();
  for (const { message, productId } of withProduct) {
    const stock = availability.get(productId);
    if (stock && stock.stock < 0)
      log.warn(
        {
          code: 'FW_PLATFORM_ROW_INVALID',
          table: 'products',
          rowId: productId,
          reason: `negative stock ${stock.stock}`,
        },
        `products row ${productId} has negative stock ${stock.stock}: read as none left`,
      );
    const gone = !stock || stock.stock - stock.pendingUnits <= 0;
    if (gone || optedOut.has(message.id)) cancelled.add(message.id);
  }
  if (cancelled.size > 0)
    log.info(
      { cancelled: cancelled.size, of: messages.length },
      'restock alerts cancelled: stock gone or opted out',
    );
  return cancelled;
}

export const restockAlert: MessageKind<CauseEvent['payload'], RestockPrepared | null, RestockRecipient> = {
  id: RESTOCK_ALERT,
  category: 'requested',
  on: { detector: DETECTOR, events: ['opened', 'wave'], kinds: [CAUSE_KIND] },
  channels: (config: Config) => config.notifications.userChannels,
  prepare,
  audience,
  data,
  // A restock resolves when its waves are over (stock gone or nobody left): a batch after that
  // is not written. In-app alerts are delivered as the fan-out writes them, so this is their
  // only check; queued emails get the stale rule besides.
  stillTrue: (client, event) => lockIncidentIfOpen(client, event.causeId),
  stale,
  link: (d) => (typeof d.productUrl === 'string' ? d.productUrl : null),
};
