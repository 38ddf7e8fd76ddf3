// The delivery reports for operators (`forewarn deliveries stats` and `why`): read-only queries
// over forewarn.notifications, each row's outcome classified once (lib/notifications/outcomes.ts).
import type { Queryable } from '../db/pool.ts';
import { OUTCOME_SQL, reasonFor, type Outcome } from './outcomes.ts';

export interface OutcomeCount {
  kind: string;
  channel: string;
  outcome: Outcome;
  count: number;
  /** Of the pending ones, the earliest and latest time they are due (held: delayed to). */
  dueFrom: Date | null;
  dueTo: Date | null;
}

/** Messages recorded in the last `sinceMs`, counted by kind, channel and outcome. */
export async function countOutcomes(db: Queryable, sinceMs: number): Promise<OutcomeCount[]> {
  const { rows } = await db.query<{
    kind: string;
    channel: string;
    outcome: Outcome;
    count: number;
    due_from: Date | null;
    due_to: Date | null;
  }>(
    `SELECT n.kind, n.channel, ${OUTCOME_SQL} AS outcome, count(*)::int AS count,
            min(n.next_attempt_at) FILTER (WHERE n.status = 'pending') AS due_from,
            max(n.next_attempt_at) FILTER (WHERE n.status = 'pending') AS due_to
       FROM forewarn.notifications n
      WHERE n.created_at >= now() - make_interval(secs => $1::float8 / 1000)
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3`,
    [sinceMs],
  );
  return rows.map((r) => ({
    kind: r.kind,
    channel: r.channel,
    outcome: r.outcome,
    count: r.count,
    dueFrom: r.due_from,
    dueTo: r.due_to,
  }));
}

export interface UserDelivery {
  id: string;
  recordedAt: Date;
  kind: string;
  category: string;
  channel: string;
  address: string | null;
  status: string;
  outcome: Outcome;
  reason: string | null;
  /** When it is due (pending: held or retried until then). */
  dueAt: Date | null;
  sentAt: Date | null;
  finishedAt: Date | null;
  attempts: number;
  dedupeKey: string;
  cause: string;
}

/**
 * A user's messages recorded in the last `sinceMs`, newest first, `limit` at a time: keyset on
 * the id, so the next page starts `before` the last id of this one (notifications_by_user).
 */
export async function listUserDeliveries(
  db: Queryable,
  userId: string,
  options: { sinceMs: number; limit: number; before: string | null },
): Promise<UserDelivery[]> {
  const { rows } = await db.query<{
    id: string;
    created_at: Date;
    kind: string;
    category: string;
    channel: string;
    address: string | null;
    status: string;
    outcome: Outcome;
    held_reason: string | null;
    last_error: string | null;
    next_attempt_at: Date;
    sent_at: Date | null;
    finished_at: Date | null;
    attempts: number;
    dedupe_key: string;
    cause: string;
  }>(
    `SELECT n.id, n.created_at, n.kind, n.category, n.channel, n.address, n.status, ${OUTCOME_SQL} AS outcome,
            n.held_reason, n.last_error, n.next_attempt_at, n.sent_at, n.finished_at, n.attempts, n.dedupe_key, n.cause
       FROM forewarn.notifications n
      WHERE n.user_id = $1
        AND n.created_at >= now() - make_interval(secs => $2::float8 / 1000)
        AND ($3::bigint IS NULL OR n.id < $3::bigint)
      ORDER BY n.id DESC
      LIMIT $4`,
    [userId, options.sinceMs, options.before, options.limit],
  );
  return rows.map((r) => ({
    id: r.id,
    recordedAt: r.created_at,
    kind: r.kind,
    category: r.category,
    channel: r.channel,
    address: r.address,
    status: r.status,
    outcome: r.outcome,
    reason: reasonFor(r.outcome, { heldReason: r.held_reason, lastError: r.last_error }),
    dueAt: r.status === 'pending' ? r.next_attempt_at : null,
    sentAt: r.sent_at,
    finishedAt: r.finished_at,
    attempts: r.attempts,
    dedupeKey: r.dedupe_key,
    cause: r.cause,
  }));
}
