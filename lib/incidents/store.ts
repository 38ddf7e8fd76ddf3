// forewarn's incident records: opening and resolving incidents with their outbox events, and the
// detectors' state between ticks. One small function per query; callers hold the transaction.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/pool.ts';

export interface StoredState<S, C = unknown> {
  state: S;
  evaluatedAt: number | null;
  /** Derived data the detector keeps beside its state (payment health: its window cache). */
  cache: C | null;
  /** A random id of the save that wrote this row; null before the first save. */
  version: string | null;
  /**
   * For a state kept one row per subject: each subject's state as this process last wrote it, so
   * that the next save writes only the subjects that changed. Absent when read from the database.
   */
  subjectJson?: ReadonlyMap<string, string>;
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

/**
 * A change of a cause (what a message is about: an incident, a low-stock episode, a restock, an
 * error-code spike), as a watcher records it. `opened` starts a cause and `resolved` ends it;
 * any other type (a restock's `wave`) is an event of the open cause, numbered by `seq`. Fields
 * beyond these are the watcher's own and travel with the event to its message kinds.
 */
export interface CauseChange {
  detector: string;
  /** The subject's key within its detector, e.g. "alipay:CN-GD", a product id, an error code. */
  subjectKey: string;
  /** What the subject is, field by field (stored as JSON in incidents.subject). */
  subject: object;
  /** What kind of cause, e.g. "failures", "low-stock", "restock", "count". */
  kind: string;
  type: string;
  at: number;
  /** The numbers behind the change (stored as JSON in incidents.open_evidence / resolve_evidence). */
  evidence: object;
  /** For events between opening and resolving: their number within the type (1, 2, ...). */
  seq?: number;
  /** Channel ids offered instead (payment incidents). */
  backupChannels?: readonly string[];
}

/** What a cause event carries, as stored in incident_events.payload. */
export type CauseEventPayload = CauseChange & { incidentId: string };

export interface RecordedChange<C extends CauseChange = CauseChange> {
  incidentId: string;
  eventId: string;
  change: C;
}

/**
 * Writes a cause change and its outbox event in the caller's transaction. Opening twice, resolving
 * twice or an event of a cause that is not open is refused (by the schema or here).
 */
export async function recordCauseChange<C extends CauseChange>(
  db: Queryable,
  change: C,
): Promise<RecordedChange<C>> {
  const incidentId =
    change.type === 'opened'
      ? await openCause(db, change)
      : change.type === 'resolved'
        ? await resolveCause(db, change)
        : await openCauseId(db, change);
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO forewarn.incident_events (incident_id, type, seq, occurred_at, payload)
     VALUES ($1, $2, $3, $4, $5) RETURNING id`,
    [incidentId, change.type, change.seq ?? 0, new Date(change.at), { ...change, incidentId }],
  );
  return { incidentId, eventId: rows[0]!.id, change };
}

async function openCause(db: Queryable, change: CauseChange): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence, backup_channels)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [
      change.detector,
      change.subjectKey,
      change.subject,
      change.kind,
      new Date(change.at),
      change.evidence,
      change.backupChannels ?? [],
    ],
  );
  return rows[0]!.id;
}

async function resolveCause(db: Queryable, change: CauseChange): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE forewarn.incidents SET resolved_at = $4, resolve_evidence = $5
      WHERE detector = $1 AND subject_key = $2 AND kind = $3 AND resolved_at IS NULL
      RETURNING id`,
    [change.detector, change.subjectKey, change.kind, new Date(change.at), change.evidence],
  );
  if (!rows[0])
    throw new Error(`no open ${change.kind} cause for ${change.detector} ${change.subjectKey} to resolve`);
  return rows[0].id;
}

async function openCauseId(db: Queryable, change: CauseChange): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM forewarn.incidents
      WHERE detector = $1 AND subject_key = $2 AND kind = $3 AND resolved_at IS NULL`,
    [change.detector, change.subjectKey, change.kind],
  );
  if (!rows[0])
    throw new Error(
      `no open ${change.kind} cause for ${change.detector} ${change.subjectKey} to record a ${change.type} event of`,
    );
  return rows[0].id;
}

/** The open causes of a detector, by subject key (a watcher's recorder reads them to resume). */
export async function readOpenCauses(
  db: Queryable,
  detector: string,
  subjectKeys: readonly string[],
): Promise<Array<{ id: string; subjectKey: string; kind: string; openedAt: number }>> {
  const { rows } = await db.query<{ id: string; subject_key: string; kind: string; opened_at: Date }>(
    `SELECT id, subject_key, kind, opened_at FROM forewarn.incidents
      WHERE detector = $1 AND subject_key = ANY ($2::text[]) AND resolved_at IS NULL`,
    [detector, subjectKeys],
  );
  return rows.map((r) => ({
    id: r.id,
    subjectKey: r.subject_key,
    kind: r.kind,
    openedAt: r.opened_at.getTime(),
  }));
}

/**
 * Detector state per subject (forewarn.subject_state): the states of the given subjects; a subject
 * without a row is absent from the map.
 */
export async function readSubjectStates<S>(
  db: Queryable,
  detector: string,
  subjectKeys: readonly string[],
): Promise<Map<string, S>> {
  if (subjectKeys.length === 0) return new Map();
  // One index probe per key, in key order: with `= ANY`, PostgreSQL planned a scan of every
  // state of the detector for each call, so a pass over a growing table grew quadratically.
  const { rows } = await db.query<{ subject_key: string; state: S }>(
    `SELECT s.subject_key, s.state
       FROM (SELECT DISTINCT key FROM unnest($2::text[]) AS key ORDER BY key) AS k
      CROSS JOIN LATERAL (
        SELECT subject_key, state FROM forewarn.subject_state WHERE detector = $1 AND subject_key = k.key
      ) AS s`,
    [detector, subjectKeys],
  );
  return new Map(rows.map((r) => [r.subject_key, r.state]));
}

/** A page of a detector's subject states, in subject-key order after `after`. */
export async function readSubjectStatePage<S>(
  db: Queryable,
  detector: string,
  after: string | null,
  limit: number,
): Promise<Array<{ subjectKey: string; state: S }>> {
  const { rows } = await db.query<{ subject_key: string; state: S }>(
    `SELECT subject_key, state FROM forewarn.subject_state
      WHERE detector = $1 AND ($2::text IS NULL OR subject_key > $2)
      ORDER BY subject_key LIMIT $3`,
    [detector, after, limit],
  );
  return rows.map((r) => ({ subjectKey: r.subject_key, state: r.state }));
}

/** Every subject state of a detector, as stored JSON (a detector with thousands of subjects, not millions). */
export async function readAllSubjectStates(db: Queryable, detector: string): Promise<Map<string, unknown>> {
  const { rows } = await db.query<{ subject_key: string; state: unknown }>(
    'SELECT subject_key, state FROM forewarn.subject_state WHERE detector = $1',
    [detector],
  );
  return new Map(rows.map((r) => [r.subject_key, r.state]));
}

/**
 * A subject's state to write: null deletes the row (the subject has nothing to remember).
 * `position` is where the state sorts for a pass whose pages come in position order.
 */
export interface SubjectStateWrite<S> {
  subjectKey: string;
  state: S | null;
  position?: number | null;
}

/** Writes the given subjects' states, and deletes the rows of those whose state is null. */
export async function saveSubjectStates<S>(
  db: Queryable,
  detector: string,
  states: ReadonlyArray<SubjectStateWrite<S>>,
): Promise<void> {
  const kept = states.filter((s) => s.state !== null);
  if (kept.length > 0)
    await db.query(
      `INSERT INTO forewarn.subject_state (detector, subject_key, state, position)
       SELECT $1, s.k, s.s, s.p FROM jsonb_to_recordset($2::jsonb) AS s(k text, s jsonb, p float8)
       ON CONFLICT (detector, subject_key)
       DO UPDATE SET state = EXCLUDED.state, position = EXCLUDED.position, updated_at = now()`,
      [
        detector,
        `[${kept.map((s) => `{"k":${JSON.stringify(s.subjectKey)},"s":${JSON.stringify(s.state)},"p":${s.position ?? null}}`).join(',')}]`,
      ],
    );
  await deleteSubjectStates(
    db,
    detector,
    states.filter((s) => s.state === null).map((s) => s.subjectKey),
  );
}

/** Writes subjects' states already turned to JSON, and deletes the `dropped` subjects' rows. */
export async function saveSubjectStateJson(
  db: Queryable,
  detector: string,
  kept: ReadonlyArray<readonly [subjectKey: string, json: string]>,
  dropped: readonly string[],
): Promise<void> {
  if (kept.length > 0)
    await db.query(
      `INSERT INTO forewarn.subject_state (detector, subject_key, state)
       SELECT $1, s.k, s.s FROM jsonb_to_recordset($2::jsonb) AS s(k text, s jsonb)
       ON CONFLICT (detector, subject_key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`,
      [detector, `[${kept.map(([key, json]) => `{"k":${JSON.stringify(key)},"s":${json}}`).join(',')}]`],
    );
  await deleteSubjectStates(db, detector, dropped);
}

async function deleteSubjectStates(db: Queryable, detector: string, subjectKeys: readonly string[]) {
  if (subjectKeys.length > 0)
    await db.query(
      'DELETE FROM forewarn.subject_state WHERE detector = $1 AND subject_key = ANY ($2::text[])',
      [detector, subjectKeys],
    );
}

export interface PositionedState<S> {
  subjectKey: string;
  state: S;
  position: number;
}

/**
 * The states positioned in [from, below) (below null: no upper bound): one range of the
 * subject_state_by_position index, for a page of a pass that comes in descending position.
 */
export async function readSubjectStatesBetween<S>(
  db: Queryable,
  detector: string,
  from: number,
  below: number | null,
): Promise<Array<PositionedState<S>>> {
  const { rows } = await db.query<{ subject_key: string; state: S; position: number }>(
    `SELECT subject_key, state, position FROM forewarn.subject_state
      WHERE detector = $1 AND position >= $2 AND ($3::float8 IS NULL OR position < $3)`,
    [detector, from, below],
  );
  return rows.map((r) => ({ subjectKey: r.subject_key, state: r.state, position: r.position }));
}

/**
 * A page of the states positioned below `below`, highest position first (ties by subject key,
 * descending); `after` is the last state of the previous page.
 */
export async function readPositionedStatePage<S>(
  db: Queryable,
  detector: string,
  below: number | null,
  after: { position: number; subjectKey: string } | null,
  limit: number,
): Promise<Array<PositionedState<S>>> {
  const { rows } = await db.query<{ subject_key: string; state: S; position: number }>(
    `SELECT subject_key, state, position FROM forewarn.subject_state
      WHERE detector = $1 AND position IS NOT NULL
        AND ($2::float8 IS NULL OR position < $2)
        AND ($3::float8 IS NULL OR (position, subject_key) < ($3, $4::text))
      ORDER BY position DESC, subject_key DESC LIMIT $5`,
    [detector, below, after?.position ?? null, after?.subjectKey ?? null, limit],
  );
  return rows.map((r) => ({ subjectKey: r.subject_key, state: r.state, position: r.position }));
}

/** A page of the states without a position, in subject-key order after `after`. */
export async function readUnpositionedStatePage<S>(
  db: Queryable,
  detector: string,
  after: string | null,
  limit: number,
): Promise<Array<{ subjectKey: string; state: S }>> {
  const { rows } = await db.query<{ subject_key: string; state: S }>(
    `SELECT subject_key, state FROM forewarn.subject_state
      WHERE detector = $1 AND position IS NULL AND ($2::text IS NULL OR subject_key > $2)
      ORDER BY subject_key LIMIT $3`,
    [detector, after, limit],
  );
  return rows.map((r) => ({ subjectKey: r.subject_key, state: r.state }));
}

/**
 * A detector run's row. Both its times are on the database's clock, as the watchdog and /metrics
 * read them: it finished now (clock_timestamp(), not now(), which in the tick's transaction is the
 * transaction's start), and started as long before as this process measured (`startedAt` on its
 * own clock), so that a skewed clock shifts neither the age nor the duration.
 */
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
  const elapsedMs = Math.max(0, Date.now() - run.startedAt);
  await db.query(
    `INSERT INTO forewarn.detector_runs
       (detector, tick_at, outcome, started_at, finished_at, worker, changes, skipped_rows, detail)
     VALUES ($1, $2, $3, clock_timestamp() - make_interval(secs => $4::float8 / 1000), clock_timestamp(), $5, $6, $7, $8)`,
    [
      run.detector,
      new Date(run.tickAt),
      run.outcome,
      elapsedMs,
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

/** An open cause with the numbers that opened it, as the channel-status API shows it. */
export interface OpenCauseRecord {
  id: string;
  subjectKey: string;
  subject: unknown;
  kind: string;
  openedAt: number;
  evidence: unknown;
  backupChannels: string[];
}

/** The open causes of a detector for the given subjects, with their opening evidence and backups. */
export async function readOpenCauseRecords(
  db: Queryable,
  detector: string,
  subjectKeys: readonly string[],
): Promise<OpenCauseRecord[]> {
  const { rows } = await db.query<{
    id: string;
    subject_key: string;
    subject: unknown;
    kind: string;
    opened_at: Date;
    open_evidence: unknown;
    backup_channels: string[] | null;
  }>(
    `SELECT id, subject_key, subject, kind, opened_at, open_evidence, backup_channels FROM forewarn.incidents
      WHERE detector = $1 AND subject_key = ANY ($2::text[]) AND resolved_at IS NULL
      ORDER BY opened_at, id`,
    [detector, subjectKeys],
  );
  return rows.map((r) => ({
    id: r.id,
    subjectKey: r.subject_key,
    subject: r.subject,
    kind: r.kind,
    openedAt: r.opened_at.getTime(),
    evidence: r.open_evidence,
    backupChannels: r.backup_channels ?? [],
  }));
}

/** When a detector last evaluated a tick, epoch ms, without reading its (large) state; null before the first. */
export async function readEvaluatedAt(db: Queryable, detector: string): Promise<number | null> {
  const { rows } = await db.query<{ evaluated_at: Date | null }>(
    'SELECT evaluated_at FROM forewarn.detector_state WHERE detector = $1',
    [detector],
  );
  return rows[0]?.evaluated_at?.getTime() ?? null;
}
