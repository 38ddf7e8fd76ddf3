// The delivery policy: the one step where forewarn decides whether a message may go now, applied
// when a message is recorded (fan-out) and again when its turn comes (the delivery claim), so a
// retry that comes due at night is held like a first attempt. Today it holds messages of a
// category with quiet hours (notifications.quietHours) until the window ends in the recipient's
// own zone; the reason is recorded on the row (held_reason). Held, never dropped. A message its
// user opted out of (that category on that channel), or one to an address on the channel's
// suppression list, is withheld instead: recorded as cancelled with the reason, never sent.
// Frequency caps (notifications.caps) count what went to a user on a channel since their local
// midnight, at claim time: over the cap, a promotional message waits for the next day and a
// service warning is cancelled (tomorrow it would be useless); see capVerdict.
import type { Config } from '../config/schema.ts';
import type { Queryable } from '../db/pool.ts';
import type { Category } from '../messages/kind.ts';
import { findMessageKind } from '../messages/registry.ts';
import { canOptOut, readPolicyRecords, type Suppression } from '../policy/preferences.ts';
import { isTimeZone, localDay, quietUntil } from '../policy/quiet-hours.ts';
import {
  countSentSince,
  lockCapBuckets,
  type CapRule,
  type CapSubject,
  type CapVerdict,
  type HoldRule,
  type NotificationDraft,
} from './store.ts';

export interface Hold {
  /** When the message may go (epoch ms). */
  until: number;
  reason: string;
}

/**
 * Whether a message of `category` to a recipient in `timeZone` is held at `at`, and until when.
 * A recipient without a valid zone is judged in the config's zone. An urgent message (a warning
 * to a user whose payment is stuck right now) is never held: waiting for morning would defeat it.
 */
export function holdFor(
  config: Pick<Config, 'notifications' | 'timezone'>,
  message: { category: Category; timezone: string | null | undefined; urgent?: boolean | undefined },
  at: number,
): Hold | null {
  if (message.urgent) return null;
  const window = config.notifications.quietHours[message.category];
  if (!window) return null;
  const zone = zoneOf(config, message.timezone);
  const until = quietUntil(at, zone, window);
  if (until === null) return null;
  return {
    until,
    reason: `held: ${message.category} quiet hours ${window.from}-${window.to} in ${zone}, until ${new Date(until).toISOString()}`,
  };
}

/** The recipient's zone when Intl knows it, else the config's. */
const zoneOf = (config: Pick<Config, 'timezone'>, timezone: string | null | undefined) =>
  timezone && isTimeZone(timezone) ? timezone : config.timezone;

/** The policy's hold as the delivery claim applies it, under the config in force now. */
export function holdRule(
  config: Pick<Config, 'notifications' | 'timezone'>,
  now: () => number = Date.now,
  answers: (kind: string) => boolean = answersAnother,
): HoldRule {
  return {
    categories: Object.keys(config.notifications.quietHours),
    holdFor: (message) => holdFor(config, message, now()),
    withhold: withheldReason,
    cap: capRule(config, now, answers),
  };
}

/** Whether a kind's message answers another's (a recovery notice: MessageKind.answers). */
const answersAnother = (kind: string) => findMessageKind(kind)?.answers !== undefined;

/**
 * What a category's message over its channel's daily cap becomes: it waits for the user's next
 * day (it keeps), it is cancelled (a warning that comes tomorrow is useless), or it goes all the
 * same and is only counted (a security check-up, an ops alert: never blocked by a count).
 */
const OVER_CAP: Record<Category, 'next-day' | 'cancel' | 'count-only'> = {
  promotional: 'next-day',
  // Alerts the user asked for answer their own request: counted, never capped.
  requested: 'count-only',
  service: 'cancel',
  security: 'count-only',
  ops: 'count-only',
};

/**
 * Whether a message may go when `sentToday` messages went (or are going) to its user on its
 * channel since their local midnight, under notifications.caps at `at`: go, wait for the next
 * local day (`until`), or be cancelled (`until` null). A message that answers another (a
 * recovery notice) is never capped.
 */
export function capVerdict(
  config: Pick<Config, 'notifications' | 'timezone'>,
  message: CapSubject & { answers: boolean },
  sentToday: number,
  at: number,
): CapVerdict {
  const cap = config.notifications.caps[message.channel];
  if (!cap || sentToday < cap.perDay || message.answers) return { go: true };
  const over = OVER_CAP[message.category];
  if (over === 'count-only') return { go: true };
  const zone = zoneOf(config, message.timezone);
  const count = `capped: ${sentToday} of ${cap.perDay} ${message.channel} messages today in ${zone}`;
  if (over === 'cancel')
    return {
      go: false,
      until: null,
      reason: `${count}; a ${message.category} message that came tomorrow would be useless, cancelled`,
    };
  const until = localDay(at, zone).next;
  return {
    go: false,
    until,
    reason: `${count}; ${message.category} held until ${new Date(until).toISOString()}`,
  };
}

/** The caps as the delivery claim applies them; undefined when no channel has one. */
export function capRule(
  config: Pick<Config, 'notifications' | 'timezone'>,
  now: () => number = Date.now,
  answers: (kind: string) => boolean = answersAnother,
): CapRule | undefined {
  const channels = Object.keys(config.notifications.caps);
  if (channels.length === 0) return undefined;
  const dayOf = localDays();
  return {
    channels,
    dayStart: (message) => dayOf(now(), zoneOf(config, message.timezone)).start,
    decide: (message, sentToday) =>
      capVerdict(config, { ...message, answers: answers(message.kind) }, sentToday, now()),
  };
}

/**
 * localDay, remembered per zone for as long as the moment asked about stays inside that day: a
 * fan-out batch asks for thousands of users who share a few zones, and each answer costs several
 * Intl calls (some 40 µs; 4 s for 100,000 users).
 */
function localDays(): (at: number, zone: string) => { start: number; next: number } {
  const days = new Map<string, { start: number; next: number }>();
  return (at, zone) => {
    const known = days.get(zone);
    if (known && at >= known.start && at < known.next) return known;
    const day = localDay(at, zone);
    days.set(zone, day);
    return day;
  };
}

/** A message as the opt-outs and suppressions judge it. */
export interface WithholdSubject {
  /** Null for ops alerts: no user's preferences apply to them. */
  userId: string | null;
  category: Category;
  channel: string;
  address: string | null;
}

/** What was found for the message: whether its user opted out, and its address's suppression. */
export interface WithholdFindings {
  optedOut: boolean;
  suppression: Suppression | null;
}

/**
 * Why the message must not go at all, or null. A suppressed address is never tried, whoever it
 * belongs to (ops too); a user's opt-out applies to their own messages, except where the
 * category cannot be switched off (security in-app).
 */
export function withheldReason(message: WithholdSubject, found: WithholdFindings): string | null {
  if (message.address !== null && found.suppression)
    return `suppressed: ${found.suppression.reason} (since ${found.suppression.since.toISOString()})`;
  if (message.userId !== null && found.optedOut && canOptOut(message.category, message.channel))
    return `opted out: ${message.category} by ${message.channel}`;
  return null;
}

/**
 * The batch's drafts with those the policy withholds marked (withheldReason), after one query
 * for the whole batch.
 */
export async function withholdDrafts(
  db: Queryable,
  drafts: readonly NotificationDraft[],
): Promise<NotificationDraft[]> {
  const userIds = new Set<string>();
  const addresses = new Map<string, { channel: string; address: string }>();
  for (const d of drafts) {
    if (d.userId !== null) userIds.add(d.userId);
    if (d.address !== null)
      addresses.set(`${d.channel}\u0000${d.address}`, { channel: d.channel, address: d.address });
  }
  const records = await readPolicyRecords(db, [...userIds], [...addresses.values()]);
  return drafts.map((d) => {
    const reason = withheldReason(d, {
      optedOut: d.userId !== null && records.optedOut(d.userId, d.category, d.channel),
      suppression: d.address === null ? null : (records.suppression(d.channel, d.address) ?? null),
    });
    return reason === null ? d : { ...d, withheldReason: reason, notBefore: null, heldReason: null };
  });
}

/**
 * The caps on drafts delivered the moment they are recorded (the fan-out's inline in-app
 * messages), in the caller's transaction, as a claim applies them: takes the users' cap locks,
 * counts what went to each today, and returns the drafts over the cap as they are to be recorded
 * instead: held until the user's next day, or withheld (cancelled) with the reason.
 */
export async function capDrafts(
  client: Queryable,
  drafts: readonly NotificationDraft[],
  rule: CapRule,
  options: { lock: boolean } = { lock: true },
): Promise<NotificationDraft[]> {
  const judged = drafts.filter((d) => d.userId !== null && rule.channels.includes(d.channel));
  if (judged.length === 0) return [];
  const key = (d: NotificationDraft) => `${d.channel}\u0000${d.userId}`;
  const users = new Map<string, { user: string; channel: string; since: number }>();
  for (const d of judged)
    if (!users.has(key(d)))
      users.set(key(d), {
        user: d.userId!,
        channel: d.channel,
        since: rule.dayStart({ timezone: d.timezone ?? null }),
      });
  if (options.lock) await lockCapBuckets(client, [...users.values()]);
  const counts = await countSentSince(client, [...users.values()]);
  const over: NotificationDraft[] = [];
  for (const d of judged) {
    const sent = counts.get(key(d)) ?? 0;
    const verdict = rule.decide(
      { kind: d.kind, category: d.category, channel: d.channel, timezone: d.timezone ?? null },
      sent,
    );
    if (verdict.go) counts.set(key(d), sent + 1);
    else if (verdict.until === null)
      over.push({ ...d, withheldReason: verdict.reason, notBefore: null, heldReason: null });
    else over.push({ ...d, notBefore: verdict.until, heldReason: verdict.reason });
  }
  return over;
}

/**
 * What the caps would make of a dry run's drafts at the rule's time: each draft not already
 * withheld or held counted as a claim counts it (what went to the user today, then the drafts
 * before it), without the cap locks and writing nothing. Over the cap, a draft comes back held
 * (`notBefore`) or withheld with the reason, as the real run would record it.
 */
export async function capDraftsForDryRun(
  db: Queryable,
  drafts: readonly NotificationDraft[],
  rule: CapRule,
): Promise<NotificationDraft[]> {
  const judged = drafts.filter((d) => d.withheldReason == null && d.notBefore == null);
  const over = new Map(
    (await capDrafts(db, judged, rule, { lock: false })).map((d) => [d.dedupeKey, d] as const),
  );
  return drafts.map((d) => over.get(d.dedupeKey) ?? d);
}
