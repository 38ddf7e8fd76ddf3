// Who hears about a degraded payment channel, read from the platform in keyset-paginated batches
// (never the whole audience at once): active users of the region who have a pending or timed-out
// attempt on the channel recently, or who paid with it successfully within the usage window.
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

export interface AudienceQuery {
  schema: string;
  channel: string;
  region: string;
  /** The reference time of the windows (the incident's opening). */
  at: Date;
  stuckWithinMinutes: number;
  usedWithinDays: number;
  /** Keyset: only users with an id after this one. */
  after: string | null;
  limit: number;
}

export interface AudienceMember {
  id: string;
  email: string | null;
  locale: string;
  /** users.timezone (IANA); null when unknown. */
  timezone: string | null;
  /** A payment of theirs on the channel is pending or timed out within stuckWithinMinutes. */
  stuck: boolean;
}

export async function readDegradedAudience(db: Queryable, q: AudienceQuery): Promise<AudienceMember[]> {
  const s = escapeIdentifier(q.schema);
  const { rows } = await db.query<{
    id: string;
    email: string | null;
    locale: string | null;
    timezone: string | null;
    stuck: boolean | null;
  }>(
    // The check is a correlated scalar subquery with LIMIT 1 on purpose: one probe of the
    // (user_id, channel_id, created_at) index per user. Written as EXISTS ... OR EXISTS, PostgreSQL
    // hashes the whole 30 days of the channel's attempts for every batch.
    `SELECT u.id, u.email, u.locale, u.timezone,
            -- Worked out for the page's members only: one more probe of the same index each.
            (SELECT true FROM ${s}.payment_attempts a
              WHERE a.user_id = u.id AND a.channel_id = $1 AND a.status IN ('pending', 'timeout')
                AND a.created_at >= $3::timestamptz - make_interval(mins => $4)
                AND a.created_at <= $3::timestamptz
              LIMIT 1) AS stuck
       FROM ${s}.users u
      WHERE u.status = 'active'
        AND u.region = $2
        AND ($5::text IS NULL OR u.id > $5)
        AND (SELECT true FROM ${s}.payment_attempts a
              WHERE a.user_id = u.id AND a.channel_id = $1
                AND a.created_at >= $3::timestamptz - GREATEST(make_interval(days => $6), make_interval(mins => $4))
                AND a.created_at <= $3::timestamptz
                AND ((a.status = 'succeeded' AND a.created_at >= $3::timestamptz - make_interval(days => $6))
                     OR (a.status IN ('pending', 'timeout') AND a.created_at >= $3::timestamptz - make_interval(mins => $4)))
              LIMIT 1)
      ORDER BY u.id
      LIMIT $7`,
    [q.channel, q.region, q.at, q.stuckWithinMinutes, q.after, q.usedWithinDays, q.limit],
  );
  // The contract says locale is not null; a platform that breaks it still gets its users told, in zh-CN.
  return rows.map((r) => ({
    id: r.id,
    email: r.email,
    locale: r.locale ?? 'zh-CN',
    timezone: r.timezone,
    stuck: r.stuck === true,
  }));
}
