// Reading the platform's users (see docs/platform-contract.md) for the inactivity watcher. A user
// is idle since last_active_at, or created_at when they never signed in after sign-up; only
// `active` users count. The scan reads idle users a page at a time, most recently idle first,
// keyset over (idle since, id), which the index that docs/platform-contract.md recommends serves:
//
//   CREATE INDEX users_idle_since_idx ON platform.users ((coalesce(last_active_at, created_at)) DESC, id DESC);
//
// (Not partial on status: PostgreSQL gathers statistics of a plain expression index's expression,
// and without them it estimates the idle range at 0.5% of the table and sorts it all each page.)
//
// One query per function; none joins forewarn's tables (the platform may be another server).
import type { IdleUser } from '../../detectors/inactivity/index.ts';
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

export interface IdlePageQuery {
  schema: string;
  /** Idle since at most this (the first step's days ago) ... */
  idleUntilMs: number;
  /** ... and later than this (maxIdleDays ago). */
  idleAfterMs: number;
  /** Keyset: the last user of the previous page (its `cursor`, its id); null for the first page. */
  after: { cursor: string; userId: string } | null;
  limit: number;
}

/** A page of idle users with what the scan needs of them: their zone is checked by the caller. */
export interface IdleUserRow extends IdleUser {
  timezone: string | null;
  /** Idle since as PostgreSQL prints it, to the microsecond: the next page's keyset. */
  cursor: string;
}

export async function readIdleUserPage(db: Queryable, q: IdlePageQuery): Promise<IdleUserRow[]> {
  const s = escapeIdentifier(q.schema);
  // Epoch milliseconds as float8: node-pg parses them without building a Date per row.
  const { rows } = await db.query<{
    id: string;
    since: number;
    cursor: string;
    never: boolean;
    timezone: string | null;
  }>(
    `SELECT id, (extract(epoch FROM coalesce(last_active_at, created_at)) * 1000)::float8 AS since,
            coalesce(last_active_at, created_at)::text AS cursor,
            last_active_at IS NULL AS never, timezone
       FROM ${s}.users
      WHERE status = 'active'
        AND coalesce(last_active_at, created_at) <= $1
        AND coalesce(last_active_at, created_at) > $2
        ${
          // Two texts, not "$3 IS NULL OR ...": a condition that may be switched off cannot bound
          // the index scan, and every page would read the index from its start.
          q.after ? 'AND (coalesce(last_active_at, created_at), id) < ($4::timestamptz, $5::text)' : ''
        }
      ORDER BY coalesce(last_active_at, created_at) DESC, id DESC
      LIMIT $3`,
    [
      new Date(q.idleUntilMs),
      new Date(q.idleAfterMs),
      q.limit,
      ...(q.after ? [q.after.cursor, q.after.userId] : []),
    ],
  );
  return rows.map((r) => ({
    userId: r.id,
    idleSince: r.since,
    neverSignedIn: r.never,
    timezone: r.timezone,
    cursor: r.cursor,
  }));
}

/**
 * Of the given users, those who are active, with when they are idle since (epoch ms): what the
 * sweep and the check-ups' stale rule compare with a remembered period. An unknown, disabled or
 * deleted user is absent.
 */
export async function readActiveIdleSince(
  db: Queryable,
  schema: string,
  userIds: readonly string[],
): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ id: string; since: number }>(
    `SELECT id, (extract(epoch FROM coalesce(last_active_at, created_at)) * 1000)::float8 AS since
       FROM ${escapeIdentifier(schema)}.users
      WHERE id = ANY ($1::text[]) AND status = 'active'`,
    [userIds],
  );
  return new Map(rows.map((r) => [r.id, r.since]));
}

export interface CheckupRecipient {
  id: string;
  email: string | null;
  locale: string;
  timezone: string | null;
  status: string;
}

/** The user a check-up goes to, as the platform has them now (null: no such user). */
export async function readCheckupRecipient(
  db: Queryable,
  schema: string,
  userId: string,
): Promise<CheckupRecipient | null> {
  const { rows } = await db.query<CheckupRecipient>(
    `SELECT id, email, coalesce(locale, 'zh-CN') AS locale, timezone, status
       FROM ${escapeIdentifier(schema)}.users WHERE id = $1`,
    [userId],
  );
  return rows[0] ?? null;
}
