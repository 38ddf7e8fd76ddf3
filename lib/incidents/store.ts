// forewarn's incident records: opening and resolving incidents with their outbox events, and the
// detectors' state between ticks. One small function per query; callers hold the transaction.
import { randomUUID } from 'node:crypto';
import type { IncidentChange } from '../../detectors/payment-health/index.ts';
import type { Queryable } from '../db/pool.ts';

export interface StoredState<S, C = unknown> {
  state: S;
  evaluatedAt: number | null;
  /** Derived data the detector keeps beside its state (payment health: its window cache). */
  cache: C | null;
  /** A random id of the save that wrote this row; null before the first save. */
  version: string | null;
}

/**
 * Reads a detector's state. With `lock`, creates the row if needed and locks it for the rest of
 * the transaction, so that concurrent runs apply one after the other; without, it only reads
 * (a dry run must not make a live tick wait). When the row's version is that of `remembered`
 * (what this process saved last), the state is not read back: it is megabytes at scale.
 */
export async function readDetectorState<S, C = unknown>(
  db: Queryable,
  detector: string,
  initial: S,
  options: { lock: boolean; remembered?: StoredState<S, C> | null },
): Promise<StoredState<S, C>> {
  if (options.lock) {
    await db.query(
      `INSERT INTO forewarn.detector_state (detector, state) VALUES ($1, $2) ON CONFLICT (detector) DO NOTHING`,
      [detector, JSON.stringify(initial)],
    );
  }
  const head = await db.query<{ evaluated_at: Date | null; version: string | null }>(
    `SELECT evaluated_at, version FROM forewarn.detector_state WHERE detector = $1${options.lock ? ' FOR UPDATE' : ''}`,
    [detector],
  );
  const row = head.rows[0];
  if (!row) return { state: initial, evaluatedAt: null, cache: null, version: null };
  const remembered = options.remembered;
  if (remembered && row.version !== null && remembered.version === row.version) return remembered;
  const { rows } = await db.query<{ state: S; window_cache: C | null }>(
    'SELECT state, window_cache FROM forewarn.detector_state WHERE detector = $1',
    [detector],
  );
  return {
    state: rows[0]?.state ?? initial,
    evaluatedAt: row.evaluated_at ? row.evaluated_at.getTime() : null,
    cache: rows[0]?.window_cache ?? null,
    version: row.version,
  };
}

/** Saves a detector's state and cache under a new version, which it returns. */
export async function saveDetectorState<S, C>(
  db: Queryable,
  detector: string,
  saved: { state: S; cache: C | null; evaluatedAt: number },
): Promise<StoredState<S, C>> {
  const version = randomUUID();
  await db.query(
    `UPDATE forewarn.detector_state
        SET state = $2, window_cache = $3, evaluated_at = $4, version = $5, updated_at = now()
      WHERE detector = $1`,
    [
      detector,
      JSON.stringify(saved.state),
      saved.cache === null ? null : JSON.stringify(saved.cache),
      new Date(saved.evaluatedAt),
      version,
    ],
  );
  return { ...saved, version };
}

/** The change an incident event carries, as stored in incident_events.payload. */
export type IncidentEventPayload = IncidentChange & { incidentId: string };

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

/**
 * In the caller's transaction: whether the incident is still open, holding a share lock on its
 * row until that transaction ends, so that a resolve (an UPDATE of the row) waits for what the
 * transaction writes and a transaction that locks after the resolve sees it resolved.
 */
export async function lockIncidentIfOpen(db: Queryable, incidentId: string): Promise<boolean> {
  const { rows } = await db.query<{ open: boolean }>(
    'SELECT resolved_at IS NULL AS open FROM forewarn.incidents WHERE id = $1 FOR SHARE',
    [incidentId],
  );
  return rows[0]?.open ?? false;
}
