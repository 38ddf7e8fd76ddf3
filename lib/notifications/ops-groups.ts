// Ops alert groups, in PostgreSQL: the ops notifications with one group key (the same region,
// the same error code), one kind and one address, as Alertmanager's group_by and group_wait.
// A group's first alert waits `notifications.ops.groupWaitSeconds`; whatever of the group is
// still live (pending, or claimed by a worker that died) when the group is due goes out as one
// email. The wait is written into the rows (`next_attempt_at`), so it survives restarts and the
// sweeper finds a group whose job was lost. Opened and resolved alerts are different kinds and so
// never share a group. Every function runs one query; `lockGroup` and what follows it run in
// one transaction (lib/notifications/deliver-groups.ts).
import type { Queryable } from '../db/pool.ts';
import { CLAIM_COLUMNS, claimedOf, type ClaimedNotification, type ClaimRow } from './store.ts';

/** What makes a group: the key the kind gave, the kind, and the address (lower-cased). */
export interface OpsGroup {
  groupKey: string;
  kind: string;
  address: string;
}

/**
 * The given ids split into those outside any group (sent one by one, at once) and the groups
 * the others belong to, once each. Ids of rows that do not exist are among the ungrouped: the
 * plain delivery path ignores them as it does today.
 */
export async function readOpsGroups(
  db: Queryable,
  ids: readonly string[],
): Promise<{ ungrouped: string[]; groups: OpsGroup[] }> {
  if (ids.length === 0) return { ungrouped: [], groups: [] };
  const { rows } = await db.query<{ id: string; group_key: string | null; kind: string; address: string }>(
    `SELECT id, group_key, kind, lower(address) AS address FROM forewarn.notifications
      WHERE id = ANY ($1::bigint[]) AND group_key IS NOT NULL AND channel = 'email' AND address IS NOT NULL`,
    [ids],
  );
  const grouped = new Set(rows.map((r) => r.id));
  const groups = new Map<string, OpsGroup>();
  for (const r of rows) {
    const group = { groupKey: r.group_key!, kind: r.kind, address: r.address };
    groups.set(JSON.stringify([group.groupKey, group.kind, group.address]), group);
  }
  return { ungrouped: ids.filter((id) => !grouped.has(id)), groups: [...groups.values()] };
}

/** The lock class of ops groups (pg_advisory_xact_lock's first key); the second is the group's hash. */
const GROUP_LOCK_CLASS = 0x6f707367; // "opsg"

/**
 * Takes the group's lock until the caller's transaction ends: two jobs that reach one group at
 * once (the alerts' own jobs, a retry, the sweeper) decide on it one after the other, so a group
 * is never split between two emails. Two groups whose hashes meet only wait for each other.
 */
export async function lockGroup(db: Queryable, group: OpsGroup): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(31) || $3 || chr(31) || $4))`, [
    GROUP_LOCK_CLASS,
    group.groupKey,
    group.kind,
    group.address,
  ]);
}

export interface GroupState {
  /** The group's live members, by id: pending, or claimed by a claim that ran out. */
  ids: string[];
  /** Whether the group goes out now (by the database's clock, which claims compare with). */
  due: boolean;
  /**
   * When the group goes out (epoch ms, rounded up): its first fresh member's creation plus the
   * wait, a member's retry time, or now for a claim that ran out, whichever is first.
   */
  dueAt: number;
  /** The database's clock when this was read (epoch ms). */
  now: number;
}

/** The group's live members and when it is due; null when nothing of it is live. */
export async function readGroupState(
  db: Queryable,
  group: OpsGroup,
  waitSeconds: number,
): Promise<GroupState | null> {
  const { rows } = await db.query<{ ids: string[] | null; due: boolean; due_at: number | null; now: number }>(
    `SELECT ids, due_at <= now() AS due,
            (extract(epoch FROM due_at) * 1000)::float8 AS due_at,
            (extract(epoch FROM now()) * 1000)::float8 AS now
       FROM (SELECT array_agg(id ORDER BY id)::text[] AS ids,
                    min(CASE
                      WHEN status = 'sending' THEN now()
                      WHEN attempts = 0 THEN greatest(next_attempt_at, created_at + make_interval(secs => $4))
                      ELSE next_attempt_at END) AS due_at
               FROM forewarn.notifications
              WHERE group_key = $1 AND kind = $2 AND lower(address) = $3
                AND (status = 'pending' OR (status = 'sending' AND claimed_until < now()))) g`,
    [group.groupKey, group.kind, group.address, waitSeconds],
  );
  const r = rows[0];
  if (!r?.ids || r.due_at === null) return null;
  return { ids: r.ids, due: r.due, dueAt: Math.ceil(r.due_at), now: r.now };
}

/**
 * Holds the group's pending members until `dueAt` (epoch ms): the wait, written into each row,
 * where the sweeper and anyone looking can see it. Returns the ids held.
 */
export async function holdGroup(db: Queryable, ids: readonly string[], dueAt: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE forewarn.notifications SET next_attempt_at = to_timestamp($2::float8 / 1000)
      WHERE id = ANY ($1::bigint[]) AND status = 'pending'
     RETURNING id`,
    [ids, dueAt],
  );
  return rows.map((r) => r.id);
}

export interface GroupClaim {
  /** Claimed under the token, by id. */
  claimed: ClaimedNotification[];
  /** Members that had used every attempt, recorded as failed with the reason. */
  exhausted: Array<{ id: string; reason: string }>;
}

/**
 * Claims the group's live members under `token`, as claimNotifications claims a row: each
 * claim is an attempt, and a member that has used `maxAttempts` is failed instead. A member
 * claimed under a claim that ran out is taken over (the group's lock makes that one decision);
 * one whose holder renewed its claim meanwhile is left to it.
 */
export async function claimGroup(
  db: Queryable,
  ids: readonly string[],
  options: { token: string; worker: string; claimSeconds: number; maxAttempts: number },
): Promise<GroupClaim> {
  const { rows } = await db.query<ClaimRow>(
    `WITH live AS (
       SELECT id, attempts >= $5 AS exhausted,
              CASE WHEN status = 'sending'
                THEN 'attempt ' || attempts || ' never finished (its claim ran out: the worker crashed or hung while delivering it)'
                ELSE last_error END AS previous
         FROM forewarn.notifications
        WHERE id = ANY ($1::bigint[])
          AND (status = 'pending' OR (status = 'sending' AND claimed_until < now()))
     )
     UPDATE forewarn.notifications n
        SET status = CASE WHEN l.exhausted THEN 'failed' ELSE 'sending' END,
            attempts = n.attempts + CASE WHEN l.exhausted THEN 0 ELSE 1 END,
            claimed_until = CASE WHEN l.exhausted THEN NULL ELSE now() + make_interval(secs => $2) END,
            claim_token = CASE WHEN l.exhausted THEN n.claim_token ELSE $3::uuid END,
            claimed_by = CASE WHEN l.exhausted THEN n.claimed_by ELSE $4 END,
            last_error = CASE WHEN l.exhausted
                           THEN 'gave up after ' || n.attempts || ' attempts: ' || coalesce(l.previous, 'no reason recorded')
                           ELSE l.previous END,
            finished_at = CASE WHEN l.exhausted THEN now() END
       FROM live l
      -- Re-checked on the row's newest version: a holder that renewed its claim keeps it.
      WHERE n.id = l.id
        AND (n.status = 'pending' OR (n.status = 'sending' AND n.claimed_until < now()))
     RETURNING ${CLAIM_COLUMNS}`,
    [ids, options.claimSeconds, options.token, options.worker, options.maxAttempts],
  );
  const byId = (a: { id: string }, b: { id: string }) => Number(BigInt(a.id) - BigInt(b.id));
  return {
    claimed: rows
      .filter((r) => r.status === 'sending')
      .sort(byId)
      .map((r) => claimedOf(r, options.token)),
    exhausted: rows
      .filter((r) => r.status === 'failed')
      .sort(byId)
      .map((r) => ({ id: r.id, reason: r.last_error ?? '' })),
  };
}
