// The delivery policy's records (forewarn.preferences, forewarn.suppressions, migration 014): a
// user's opt-outs per category and channel, and the addresses a channel must not try again. Small
// named queries; the policy step and the HTTP routes call them.
import type { Queryable } from '../db/pool.ts';
import type { Category } from '../messages/kind.ts';

export interface Preference {
  userId: string;
  category: Category;
  channel: string;
  optedOut: boolean;
}

/** Who changed a preference: the platform through the API, or the user through a link. */
export type PreferenceSource = 'api' | 'unsubscribe';

/** Whether a category can be switched off on a channel: security messages always reach the inbox. */
export function canOptOut(category: Category, channel: string): boolean {
  return !(category === 'security' && channel === 'inapp');
}

/** Writes preferences (insert or replace), all in the caller's statement. */
export async function savePreferences(
  db: Queryable,
  preferences: readonly Preference[],
  source: PreferenceSource,
): Promise<void> {
  if (preferences.length === 0) return;
  await db.query(
    `INSERT INTO forewarn.preferences (user_id, category, channel, opted_out, source)
     SELECT p.u, p.c, p.ch, p.o, $2 FROM jsonb_to_recordset($1::jsonb) AS p(u text, c text, ch text, o boolean)
     ON CONFLICT (user_id, category, channel)
     DO UPDATE SET opted_out = EXCLUDED.opted_out, source = EXCLUDED.source, updated_at = now()`,
    [
      JSON.stringify(preferences.map((p) => ({ u: p.userId, c: p.category, ch: p.channel, o: p.optedOut }))),
      source,
    ],
  );
}

/** A user's stored preferences (what is not stored is the default: opted in). */
export async function readPreferences(db: Queryable, userId: string): Promise<Preference[]> {
  const { rows } = await db.query<{ category: Category; channel: string; opted_out: boolean }>(
    `SELECT category, channel, opted_out FROM forewarn.preferences WHERE user_id = $1 ORDER BY category, channel`,
    [userId],
  );
  return rows.map((r) => ({ userId, category: r.category, channel: r.channel, optedOut: r.opted_out }));
}

/** Of `userIds`, those opted out of `category` on `channel`. */
export async function readOptedOut(
  db: Queryable,
  userIds: readonly string[],
  category: Category,
  channel: string,
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const { rows } = await db.query<{ user_id: string }>(
    `SELECT user_id FROM forewarn.preferences
      WHERE user_id = ANY ($1::text[]) AND category = $2 AND channel = $3 AND opted_out`,
    [userIds, category, channel],
  );
  return new Set(rows.map((r) => r.user_id));
}

/** Adds an address to a channel's suppression list (a permanent failure); a second time keeps the first. */
export async function suppressAddress(
  db: Queryable,
  entry: { channel: string; address: string; reason: string; notificationId?: string | null },
): Promise<void> {
  await db.query(
    `INSERT INTO forewarn.suppressions (channel, address, reason, notification_id)
     VALUES ($1, lower($2), $3, $4) ON CONFLICT (channel, address) DO NOTHING`,
    [entry.channel, entry.address, entry.reason, entry.notificationId ?? null],
  );
}

/** Of `addresses`, those suppressed on `channel` (lower-cased). */
export async function readSuppressed(
  db: Queryable,
  channel: string,
  addresses: readonly string[],
): Promise<Set<string>> {
  if (addresses.length === 0) return new Set();
  const { rows } = await db.query<{ address: string }>(
    `SELECT address FROM forewarn.suppressions WHERE channel = $1 AND address = ANY ($2::text[])`,
    [channel, addresses.map((a) => a.toLowerCase())],
  );
  return new Set(rows.map((r) => r.address));
}

/** Why an address is on a channel's suppression list, and since when. */
export interface Suppression {
  reason: string;
  since: Date;
}

/** What the policy finds for a batch of messages: opt-outs and suppressions (lib/notifications/policy.ts). */
export interface PolicyRecords {
  optedOut(userId: string, category: Category, channel: string): boolean;
  /** The address's suppression on the channel (looked up lower-cased), if any. */
  suppression(channel: string, address: string): Suppression | undefined;
}

const optOutKey = (userId: string, category: string, channel: string) =>
  `${userId}\u0000${category}\u0000${channel}`;
const suppressionKey = (channel: string, address: string) => `${channel}\u0000${address.toLowerCase()}`;

/**
 * The opt-outs of `userIds` (any category and channel) and the suppressions of `addresses`, in
 * one query: what the policy needs for a batch of a fan-out, which may reach 100,000 users.
 */
export async function readPolicyRecords(
  db: Queryable,
  userIds: readonly string[],
  addresses: ReadonlyArray<{ channel: string; address: string }>,
): Promise<PolicyRecords> {
  const optedOut = new Set<string>();
  const suppressed = new Map<string, Suppression>();
  if (userIds.length > 0 || addresses.length > 0) {
    const { rows } = await db.query<{
      user_id: string | null;
      category: string | null;
      channel: string;
      address: string | null;
      reason: string | null;
      since: Date | null;
    }>(
      `SELECT user_id, category, channel, NULL AS address, NULL AS reason, NULL::timestamptz AS since
         FROM forewarn.preferences WHERE user_id = ANY ($1::text[]) AND opted_out
       UNION ALL
       SELECT NULL, NULL, s.channel, s.address, s.reason, s.created_at
         FROM forewarn.suppressions s
         JOIN unnest($2::text[], $3::text[]) AS a(channel, address) ON s.channel = a.channel AND s.address = a.address`,
      [userIds, addresses.map((a) => a.channel), addresses.map((a) => a.address.toLowerCase())],
    );
    for (const r of rows) {
      if (r.address !== null)
        suppressed.set(suppressionKey(r.channel, r.address), { reason: r.reason!, since: r.since! });
      else optedOut.add(optOutKey(r.user_id!, r.category!, r.channel));
    }
  }
  return {
    optedOut: (userId, category, channel) => optedOut.has(optOutKey(userId, category, channel)),
    suppression: (channel, address) => suppressed.get(suppressionKey(channel, address)),
  };
}
