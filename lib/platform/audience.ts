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
}

export async function readDegradedAudience(db: Queryable, q: AudienceQuery): Promise<AudienceMember[]> {
  const s = escapeIdentifier(q.schema);
  const { rows } = await db.query<{ id: string; email: string | null; locale: string | null }>(
    `SELECT u.id, u.email, u.locale
       FROM ${s}.users u
      WHERE u.status = 'active'
        AND u.region = $2
        AND ($5::text IS NULL OR u.id > $5)
        AND (EXISTS (SELECT 1 FROM ${s}.payment_attempts a
                      WHERE a.user_id = u.id AND a.channel_id = $1 AND a.status IN ('pending', 'timeout')
                        AND a.created_at >= $3::timestamptz - make_interval(mins => $4) AND a.created_at <= $3::timestamptz)
          OR EXISTS (SELECT 1 FROM ${s}.payment_attempts a
                      WHERE a.user_id = u.id AND a.channel_id = $1 AND a.status = 'succeeded'
                        AND a.created_at >= $3::timestamptz - make_interval(days => $6) AND a.created_at <= $3::timestamptz))
      ORDER BY u.id
      LIMIT $7`,
    [q.channel, q.region, q.at, q.stuckWithinMinutes, q.after, q.usedWithinDays, q.limit],
  );
  // The contract says locale is not null; a platform that breaks it still gets its users told, in zh-CN.
  return rows.map((r) => ({ id: r.id, email: r.email, locale: r.locale ?? 'zh-CN' }));
}
