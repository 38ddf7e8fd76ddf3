// forewarn's incident records: opening and resolving incidents with their outbox events, and the
// detectors' state between ticks. One small function per query; callers hold the transaction.
import type { IncidentChange } from '../../detectors/payment-health/index.ts';
import type { Queryable } from '../db/pool.ts';

export interface StoredState<S> {
  state: S;
  evaluatedAt: number | null;
}

/**
 * Reads a detector's state. With `lock`, creates the row if needed and locks it for the rest of
 * the transaction, so that concurrent runs apply one after the other; without, it only reads
 * (a dry run must not make a live tick wait).
 */
export async function readDetectorState<S>(
  db: Queryable,
  detector: string,
  initial: S,
  options: { lock: boolean },
): Promise<StoredState<S>> {
  if (options.lock) {
    await db.query(
      `INSERT INTO forewarn.detector_state (detector, state) VALUES ($1, $2) ON CONFLICT (detector) DO NOTHING`,
      [detector, JSON.stringify(initial)],
    );
  }
  const { rows } = await db.query<{ state: S; evaluated_at: Date | null }>(
    `SELECT state, evaluated_at FROM forewarn.detector_state WHERE detector = $1${options.lock ? ' FOR UPDATE' : ''}`,
    [detector],
  );
  const row = rows[0];
  if (!row) return { state: initial, evaluatedAt: null };
  return { state: row.state, evaluatedAt: row.evaluated_at ? row.evaluated_at.getTime() : null };
}

export async function saveDetectorState<S>(
  db: Queryable,
  detector: string,
  state: S,
  evaluatedAt: number,
): Promise<void> {
  await db.query(
    'UPDATE forewarn.detector_state SET state = $2, evaluated_at = $3, updated_at = now() WHERE detector = $1',
    [detector, JSON.stringify(state), new Date(evaluatedAt)],
  );
}

/** The live tick's window cache (see WindowCache); null when there is none yet. */
export async function readWindowCache<C>(db: Queryable, detector: string): Promise<C | null> {
  const { rows } = await db.query<{ window_cache: C | null }>(
    'SELECT window_cache FROM forewarn.detector_state WHERE detector = $1',
    [detector],
  );
  return rows[0]?.window_cache ?? null;
}

export async function saveWindowCache<C>(db: Queryable, detector: string, cache: C): Promise<void> {
  await db.query('UPDATE forewarn.detector_state SET window_cache = $2 WHERE detector = $1', [
    detector,
    JSON.stringify(cache),
  ]);
}

export interface RecordedChange {
  incidentId: string;
  eventId: string;
  change: IncidentChange;
}

/** Writes an incident change and its outbox event. Opening twice or resolving twice is refused by the schema. */
export async function recordIncidentChange(db: Queryable, change: IncidentChange): Promise<RecordedChange> {
  const subjectKey = `${change.subject.channel}:${change.subject.region}`;
  let incidentId: string;
  if (change.type === 'opened') {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence, backup_channels)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [
        change.detector,
        subjectKey,
        change.subject,
        change.kind,
        new Date(change.at),
        change.evidence,
        change.backupChannels,
      ],
    );
    incidentId = rows[0]!.id;
  } else {
    const { rows } = await db.query<{ id: string }>(
      `UPDATE forewarn.incidents SET resolved_at = $4, resolve_evidence = $5
        WHERE detector = $1 AND subject_key = $2 AND kind = $3 AND resolved_at IS NULL
        RETURNING id`,
      [change.detector, subjectKey, change.kind, new Date(change.at), change.evidence],
    );
    if (!rows[0])
      throw new Error(`no open ${change.kind} incident for ${change.detector} ${subjectKey} to resolve`);
    incidentId = rows[0].id;
  }
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO forewarn.incident_events (incident_id, type, occurred_at, payload) VALUES ($1, $2, $3, $4) RETURNING id`,
    [incidentId, change.type, new Date(change.at), { ...change, incidentId }],
  );
  return { incidentId, eventId: rows[0]!.id, change };
}

export async function recordDetectorRun(
  db: Queryable,
  run: {
    detector: string;
    tickAt: number;
    outcome: 'evaluated' | 'stale' | 'refused';
    startedAt: number;
    worker: string;
    changes: number;
    skippedRows: number;
    /** Why a tick was refused. */
    detail?: string;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO forewarn.detector_runs (detector, tick_at, outcome, started_at, worker, changes, skipped_rows, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      run.detector,
      new Date(run.tickAt),
      run.outcome,
      new Date(run.startedAt),
      run.worker,
      run.changes,
      run.skippedRows,
      run.detail ?? null,
    ],
  );
}

export interface IncidentRow {
  id: string;
  detector: string;
  subject: Record<string, string>;
  kind: string;
  openedAt: Date;
  resolvedAt: Date | null;
  openEvidence: Record<string, unknown>;
  resolveEvidence: Record<string, unknown> | null;
  backupChannels: string[];
}

export async function listIncidents(
  db: Queryable,
  options: { openOnly?: boolean; limit?: number } = {},
): Promise<IncidentRow[]> {
  const { rows } = await db.query<{
    id: string;
    detector: string;
    subject: Record<string, string>;
    kind: string;
    opened_at: Date;
    resolved_at: Date | null;
    open_evidence: Record<string, unknown>;
    resolve_evidence: Record<string, unknown> | null;
    backup_channels: string[];
  }>(
    `SELECT id, detector, subject, kind, opened_at, resolved_at, open_evidence, resolve_evidence, backup_channels
       FROM forewarn.incidents ${options.openOnly ? 'WHERE resolved_at IS NULL' : ''}
      ORDER BY opened_at DESC, id DESC LIMIT $1`,
    [options.limit ?? 100],
  );
  return rows.map((r) => ({
    id: r.id,
    detector: r.detector,
    subject: r.subject,
    kind: r.kind,
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
    openEvidence: r.open_evidence,
    resolveEvidence: r.resolve_evidence,
    backupChannels: r.backup_channels,
  }));
}
