// Manual control's records (migration 017): the audit trail of what ops did by hand, the
// acknowledgements, the mutes in force and the fan-out stops. One small function per query;
// callers hold the transaction where several go together.
import type { Queryable } from '../db/pool.ts';

export const OPS_ACTIONS = ['ack', 'resolve', 'mute', 'unmute', 'fanout-stop'] as const;
export type OpsActionName = (typeof OPS_ACTIONS)[number];

export interface OpsActionDraft {
  action: OpsActionName;
  incidentId?: string | null;
  detector?: string | null;
  subjectKey?: string | null;
  actor: string;
  reason: string;
  detail?: Record<string, unknown>;
}

export interface OpsAction extends Required<Omit<OpsActionDraft, 'detail'>> {
  id: string;
  detail: Record<string, unknown>;
  at: Date;
}

export async function recordOpsAction(db: Queryable, draft: OpsActionDraft): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO forewarn.ops_actions (action, incident_id, detector, subject_key, actor, reason, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [
      draft.action,
      draft.incidentId ?? null,
      draft.detector ?? null,
      draft.subjectKey ?? null,
      draft.actor,
      draft.reason,
      draft.detail ?? {},
    ],
  );
  return rows[0]!.id;
}

interface ActionRow {
  id: string;
  action: OpsActionName;
  incident_id: string | null;
  detector: string | null;
  subject_key: string | null;
  actor: string;
  reason: string;
  detail: Record<string, unknown>;
  at: Date;
}

const actionOf = (r: ActionRow): OpsAction => ({
  id: r.id,
  action: r.action,
  incidentId: r.incident_id,
  detector: r.detector,
  subjectKey: r.subject_key,
  actor: r.actor,
  reason: r.reason,
  detail: r.detail,
  at: r.at,
});

/** What ops did to an incident, and to its subject (mutes) while it was open, oldest first. */
export async function listIncidentActions(
  db: Queryable,
  incident: { id: string; detector: string; subjectKey: string; openedAt: Date; resolvedAt: Date | null },
): Promise<OpsAction[]> {
  const { rows } = await db.query<ActionRow>(
    `SELECT id, action, incident_id, detector, subject_key, actor, reason, detail, at FROM forewarn.ops_actions
      WHERE incident_id = $1
         OR (incident_id IS NULL AND detector = $2 AND subject_key = $3 AND at >= $4 AND ($5::timestamptz IS NULL OR at <= $5))
      ORDER BY at, id`,
    [incident.id, incident.detector, incident.subjectKey, incident.openedAt, incident.resolvedAt],
  );
  return rows.map(actionOf);
}

/** The incident, locked for the transaction, or null when there is none with that id. */
export async function lockIncident(
  db: Queryable,
  id: string,
): Promise<{
  id: string;
  detector: string;
  subjectKey: string;
  subject: Record<string, unknown>;
  kind: string;
  openedAt: Date;
  resolvedAt: Date | null;
  ackedAt: Date | null;
  backupChannels: string[];
} | null> {
  const { rows } = await db.query<{
    id: string;
    detector: string;
    subject_key: string;
    subject: Record<string, unknown>;
    kind: string;
    opened_at: Date;
    resolved_at: Date | null;
    acked_at: Date | null;
    backup_channels: string[];
  }>(
    `SELECT id, detector, subject_key, subject, kind, opened_at, resolved_at, acked_at, backup_channels
       FROM forewarn.incidents WHERE id = $1 FOR UPDATE`,
    [id],
  );
  const r = rows[0];
  return r
    ? {
        id: r.id,
        detector: r.detector,
        subjectKey: r.subject_key,
        subject: r.subject,
        kind: r.kind,
        openedAt: r.opened_at,
        resolvedAt: r.resolved_at,
        ackedAt: r.acked_at,
        backupChannels: r.backup_channels,
      }
    : null;
}

export async function markAcked(db: Queryable, id: string): Promise<void> {
  await db.query('UPDATE forewarn.incidents SET acked_at = coalesce(acked_at, now()) WHERE id = $1', [id]);
}

export interface Mute {
  detector: string;
  subjectKey: string;
  until: Date;
  actor: string;
  reason: string;
  createdAt: Date;
}

/** Mutes a subject until `until`; muting it again moves the end. */
export async function upsertMute(
  db: Queryable,
  mute: { detector: string; subjectKey: string; until: number; actor: string; reason: string },
): Promise<void> {
  await db.query(
    `INSERT INTO forewarn.subject_mutes (detector, subject_key, until, actor, reason)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (detector, subject_key)
     DO UPDATE SET until = EXCLUDED.until, actor = EXCLUDED.actor, reason = EXCLUDED.reason, created_at = now()`,
    [mute.detector, mute.subjectKey, new Date(mute.until), mute.actor, mute.reason],
  );
}

/** Ends a subject's mute; whether there was one in force. */
export async function deleteMute(db: Queryable, detector: string, subjectKey: string): Promise<boolean> {
  const { rows } = await db.query<{ active: boolean }>(
    `DELETE FROM forewarn.subject_mutes WHERE detector = $1 AND subject_key = $2 RETURNING until > now() AS active`,
    [detector, subjectKey],
  );
  return rows[0]?.active ?? false;
}

interface MuteRow {
  detector: string;
  subject_key: string;
  until: Date;
  actor: string;
  reason: string;
  created_at: Date;
}
const muteOf = (r: MuteRow): Mute => ({
  detector: r.detector,
  subjectKey: r.subject_key,
  until: r.until,
  actor: r.actor,
  reason: r.reason,
  createdAt: r.created_at,
});

/** The mutes still in force at `at`, soonest to end first. */
export async function listMutes(db: Queryable, at: number): Promise<Mute[]> {
  const { rows } = await db.query<MuteRow>(
    `SELECT detector, subject_key, until, actor, reason, created_at FROM forewarn.subject_mutes
      WHERE until > $1 ORDER BY until, detector, subject_key`,
    [new Date(at)],
  );
  return rows.map(muteOf);
}

/** The subject's mute in force at `at`, or null. */
export async function activeMute(
  db: Queryable,
  detector: string,
  subjectKey: string,
  at: number,
): Promise<Mute | null> {
  const { rows } = await db.query<MuteRow>(
    `SELECT detector, subject_key, until, actor, reason, created_at FROM forewarn.subject_mutes
      WHERE detector = $1 AND subject_key = $2 AND until > $3`,
    [detector, subjectKey, new Date(at)],
  );
  return rows[0] ? muteOf(rows[0]) : null;
}

/**
 * Whether ops stopped the cause's fan-out. Holds a key-share lock on the cause's row until the
 * caller's transaction ends, so that a stop (which locks the row for update) waits for a fan-out
 * batch being written and cancels its rows too, and a batch that starts after the stop sees it.
 */
export async function fanoutStopped(db: Queryable, incidentId: string): Promise<boolean> {
  const { rows } = await db.query<{ stopped: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM forewarn.fanout_stops s WHERE s.incident_id = i.id) AS stopped
       FROM forewarn.incidents i WHERE i.id = $1 FOR KEY SHARE`,
    [incidentId],
  );
  return rows[0]?.stopped ?? false;
}

/** Records the stop (the caller holds the cause's row for update); false when it was stopped before. */
export async function insertFanoutStop(
  db: Queryable,
  stop: { incidentId: string; actor: string; reason: string },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO forewarn.fanout_stops (incident_id, actor, reason) VALUES ($1, $2, $3)
     ON CONFLICT (incident_id) DO NOTHING`,
    [stop.incidentId, stop.actor, stop.reason],
  );
  return (rowCount ?? 0) > 0;
}

export const STOPPED_BY_OPS = 'cancelled: stopped by ops';

/**
 * Cancels the cause's user messages not yet sent (pending, held or waiting for a retry); those
 * being sent at this moment finish. Returns how many were cancelled.
 */
export async function cancelQueuedUserMessages(
  db: Queryable,
  incidentId: string,
  why: string,
): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE forewarn.notifications
        SET status = 'cancelled', last_error = $2, finished_at = now()
      WHERE incident_id = $1 AND audience = 'user' AND status = 'pending'`,
    [incidentId, `${STOPPED_BY_OPS}: ${why}`],
  );
  return rowCount ?? 0;
}

/**
 * At a delivery claim: cancels the given user messages of causes whose fan-out ops stopped that
 * were recorded before the stop and are still pending (e.g. one back from a failed attempt that
 * was being sent at the stop). Messages recorded after it (recovery notices) are left alone.
 */
export async function cancelStoppedDue(db: Queryable, ids: readonly string[]): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE forewarn.notifications n
        SET status = 'cancelled', last_error = '${STOPPED_BY_OPS}: ' || s.reason, finished_at = now()
       FROM forewarn.fanout_stops s
      WHERE n.id = ANY ($1::bigint[]) AND s.incident_id = n.incident_id
        AND n.audience = 'user' AND n.status = 'pending' AND n.created_at <= s.at`,
    [ids],
  );
  return rowCount ?? 0;
}
