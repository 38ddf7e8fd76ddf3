// The watchdog's stored state (forewarn.watchdog_state, migration 019) and the lock that makes
// replicas' checks take turns: one small function per query.
import type { Queryable } from '../db/pool.ts';
import type { Verdict, WatchState } from './decide.ts';

/**
 * Serialises watchdog checks across replicas until the transaction ends: the second replica
 * waits, then reads the state the first one wrote, and finds nothing left to tell.
 */
export async function lockWatchdog(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('forewarn.watchdog'))`);
}

/** The database's clock, after the lock was taken (not the transaction's start). */
export async function readDatabaseClock(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: Date }>('SELECT clock_timestamp() AS now');
  return rows[0]!.now.getTime();
}

export async function readWatchStates(db: Queryable): Promise<Map<string, WatchState>> {
  const { rows } = await db.query<{
    subject: string;
    status: 'ok' | 'failing';
    since: Date;
    first_seen_at: Date;
    episode: Date | null;
  }>('SELECT subject, status, since, first_seen_at, episode FROM forewarn.watchdog_state');
  return new Map(
    rows.map((r) => [
      r.subject,
      {
        subject: r.subject,
        status: r.status,
        since: r.since.getTime(),
        firstSeenAt: r.first_seen_at.getTime(),
        episode: r.episode === null ? null : r.episode.getTime(),
      },
    ]),
  );
}

/** Writes every verdict's state and what it measured, and drops the subjects no longer watched. */
export async function writeWatchStates(
  db: Queryable,
  verdicts: readonly Verdict[],
  forget: readonly string[],
): Promise<void> {
  if (verdicts.length > 0)
    await db.query(
      `INSERT INTO forewarn.watchdog_state AS w
         (subject, status, since, first_seen_at, episode, age_ms, bound_ms, updated_at)
       SELECT v.subject, v.status, to_timestamp(v.since / 1000.0), to_timestamp(v.first_seen_at / 1000.0),
              to_timestamp(v.episode / 1000.0), v.age_ms, v.bound_ms, now()
         FROM jsonb_to_recordset($1::jsonb)
           AS v(subject text, status text, since float8, first_seen_at float8, episode float8,
                age_ms bigint, bound_ms bigint)
       ON CONFLICT (subject) DO UPDATE SET
         status = excluded.status, since = excluded.since, first_seen_at = excluded.first_seen_at,
         episode = excluded.episode, age_ms = excluded.age_ms, bound_ms = excluded.bound_ms,
         updated_at = excluded.updated_at`,
      [
        JSON.stringify(
          verdicts.map((v) => ({
            subject: v.subject,
            status: v.next.status,
            since: v.next.since,
            first_seen_at: v.next.firstSeenAt,
            episode: v.next.episode,
            age_ms: Math.round(v.ageMs),
            bound_ms: Math.round(v.boundMs),
          })),
        ),
      ],
    );
  if (forget.length > 0)
    await db.query('DELETE FROM forewarn.watchdog_state WHERE subject = ANY ($1::text[])', [forget]);
}
