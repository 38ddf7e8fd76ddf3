// Recording a tick's cause changes, for every watcher. Subject by subject: each subject's changes
// go in a savepoint of their own, so one subject that cannot be recorded (a constraint, a bad
// value) is rolled back alone, logged with its subject, and tried again next tick, while the
// other subjects' changes are recorded. In bulk, for a paged pass's thousands of changes a page:
// a few set-based statements, falling back to subject by subject when they fail.
import type { PoolClient } from '../db/pool.ts';
import { recordCauseChange, type CauseChange, type RecordedChange } from '../incidents/store.ts';
import type { Logger } from '../logger.ts';

export interface SubjectRecording<C extends CauseChange> {
  recorded: RecordedChange<C>[];
  /** Subjects none of whose changes were recorded, in the order they failed. */
  failed: string[];
}

/**
 * Records `changes` in the caller's transaction, grouped by subject in their order: a subject's
 * changes are recorded all or none. `prepare` completes a change just before it is recorded
 * (e.g. evidence read only for an opening); `describe` gives the fields that name a
 * failed subject's change in the error line.
 */
export async function recordBySubject<C extends CauseChange>(
  client: PoolClient,
  changes: readonly C[],
  options: {
    log: Logger;
    describe: (change: C) => Record<string, unknown>;
    prepare?: (change: C) => Promise<void>;
  },
): Promise<SubjectRecording<C>> {
  const result: SubjectRecording<C> = { recorded: [], failed: [] };
  for (const [subjectKey, own] of bySubject(changes)) {
    const done: RecordedChange<C>[] = [];
    try {
      await client.query('SAVEPOINT subject_change');
      for (const change of own) {
        await options.prepare?.(change);
        done.push(await recordCauseChange(client, change));
      }
      await client.query('RELEASE SAVEPOINT subject_change');
      result.recorded.push(...done);
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT subject_change').catch(() => undefined);
      result.failed.push(subjectKey);
      options.log.error(
        {
          err: error,
          subjectKey,
          ...options.describe(own[0]!),
          changes: own.map((c) => `${c.kind} ${c.type}`),
        },
        'could not record a cause change; the subject keeps its previous state and is tried again next tick',
      );
    }
  }
  return result;
}

/** Changes grouped by subject, subjects in the order of their first change. */
function bySubject<C extends CauseChange>(changes: readonly C[]): Map<string, C[]> {
  const groups = new Map<string, C[]>();
  for (const c of changes) {
    const group = groups.get(c.subjectKey);
    if (group) group.push(c);
    else groups.set(c.subjectKey, [c]);
  }
  return groups;
}

/** Where a type falls in a subject's changes of one kind: an end, then a start, then events. */
const PHASE: Record<string, number> = { resolved: 0, opened: 1 };
const phaseOf = (type: string) => PHASE[type] ?? 2;

/**
 * Records `changes` set-based: every subject's ends, then starts, then events, a few statements
 * for all of them, so a page of thousands of changes costs what one subject's would. If that
 * fails (a subject whose cause is not open, a bad value), it is rolled back and the changes are
 * recorded subject by subject instead (recordBySubject), so only the faulty subjects fail.
 * Subjects whose changes of a kind are not in that order go subject by subject too.
 */
export async function recordInBulk<C extends CauseChange>(
  client: PoolClient,
  changes: readonly C[],
  options: { log: Logger; describe: (change: C) => Record<string, unknown> },
): Promise<SubjectRecording<C>> {
  if (changes.length === 0) return { recorded: [], failed: [] };
  const ordered: C[] = [];
  const oneByOne: C[] = [];
  for (const own of bySubject(changes).values()) (inBulkOrder(own) ? ordered : oneByOne).push(...own);
  const result: SubjectRecording<C> = { recorded: [], failed: [] };
  if (ordered.length > 0) {
    try {
      await client.query('SAVEPOINT bulk_changes');
      result.recorded.push(...(await writeInBulk(client, ordered)));
      await client.query('RELEASE SAVEPOINT bulk_changes');
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT bulk_changes');
      options.log.warn(
        { err: error, changes: ordered.length },
        'recording a page of cause changes at once failed; recording them subject by subject',
      );
      oneByOne.unshift(...ordered);
    }
  }
  if (oneByOne.length > 0) {
    const each = await recordBySubject(client, oneByOne, options);
    result.recorded.push(...each.recorded);
    result.failed.push(...each.failed);
  }
  return result;
}

/** Whether a subject's changes of each kind come as ends, then starts, then events. */
function inBulkOrder(own: readonly CauseChange[]): boolean {
  const last = new Map<string, number>();
  for (const c of own) {
    const phase = phaseOf(c.type);
    const before = last.get(c.kind) ?? -1;
    // Two starts, or two ends, of one kind in a tick are left to recordBySubject's checks.
    if (phase < before || (phase === before && phase < 2)) return false;
    last.set(c.kind, phase);
  }
  return true;
}

interface CauseRow {
  id: string;
  detector: string;
  subject_key: string;
  kind: string;
}

const causeKey = (detector: string, subjectKey: string, kind: string) =>
  `${detector}\u0000${subjectKey}\u0000${kind}`;

/** The set-based writes: ends, starts, then the outbox events of all of them. */
async function writeInBulk<C extends CauseChange>(
  client: PoolClient,
  changes: readonly C[],
): Promise<RecordedChange<C>[]> {
  const ends = changes.filter((c) => c.type === 'resolved');
  const starts = changes.filter((c) => c.type === 'opened');
  const causeIds = new Map<string, string>();
  const ended = new Map<C, string>();
  if (ends.length > 0) {
    const { rows } = await client.query<CauseRow>(
      `UPDATE forewarn.incidents i SET resolved_at = r.at, resolve_evidence = r.e
         FROM jsonb_to_recordset($1::jsonb) AS r(d text, s text, k text, at timestamptz, e jsonb)
        WHERE i.detector = r.d AND i.subject_key = r.s AND i.kind = r.k AND i.resolved_at IS NULL
        RETURNING i.id, i.detector, i.subject_key, i.kind`,
      [
        JSON.stringify(
          ends.map((c) => ({ d: c.detector, s: c.subjectKey, k: c.kind, at: iso(c.at), e: c.evidence })),
        ),
      ],
    );
    if (rows.length !== ends.length)
      throw new Error(`${ends.length - rows.length} of ${ends.length} causes to resolve were not open`);
    const byKey = new Map(rows.map((r) => [causeKey(r.detector, r.subject_key, r.kind), r.id]));
    for (const c of ends) ended.set(c, byKey.get(causeKey(c.detector, c.subjectKey, c.kind))!);
  }
  if (starts.length > 0) {
    const { rows } = await client.query<CauseRow>(
      `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence, backup_channels)
       SELECT r.d, r.s, r.subject, r.k, r.at, r.e, coalesce(r.b, '{}')
         FROM jsonb_to_recordset($1::jsonb) AS r(d text, s text, subject jsonb, k text, at timestamptz, e jsonb, b text[])
       RETURNING id, detector, subject_key, kind`,
      [
        JSON.stringify(
          starts.map((c) => ({
            d: c.detector,
            s: c.subjectKey,
            subject: c.subject,
            k: c.kind,
            at: iso(c.at),
            e: c.evidence,
            b: c.backupChannels ?? null,
          })),
        ),
      ],
    );
    for (const r of rows) causeIds.set(causeKey(r.detector, r.subject_key, r.kind), r.id);
  }
  const events = changes.filter((c) => phaseOf(c.type) === 2);
  const unknown = events.filter((c) => !causeIds.has(causeKey(c.detector, c.subjectKey, c.kind)));
  if (unknown.length > 0) {
    const { rows } = await client.query<CauseRow>(
      `SELECT i.id, i.detector, i.subject_key, i.kind
         FROM forewarn.incidents i
         JOIN jsonb_to_recordset($1::jsonb) AS r(d text, s text, k text)
           ON i.detector = r.d AND i.subject_key = r.s AND i.kind = r.k
        WHERE i.resolved_at IS NULL`,
      [JSON.stringify(unknown.map((c) => ({ d: c.detector, s: c.subjectKey, k: c.kind })))],
    );
    for (const r of rows) causeIds.set(causeKey(r.detector, r.subject_key, r.kind), r.id);
  }
  const incidentOf = (c: C): string => {
    const id =
      c.type === 'resolved' ? ended.get(c) : causeIds.get(causeKey(c.detector, c.subjectKey, c.kind));
    if (id === undefined)
      throw new Error(
        `no open ${c.kind} cause for ${c.detector} ${c.subjectKey} to record a ${c.type} event of`,
      );
    return id;
  };
  const drafts = changes.map((c) => ({ change: c, incidentId: incidentOf(c) }));
  const { rows } = await client.query<{ id: string; incident_id: string; type: string; seq: number }>(
    `INSERT INTO forewarn.incident_events (incident_id, type, seq, occurred_at, payload)
     SELECT r.i, r.t, r.q, r.at, r.p || jsonb_build_object('incidentId', r.i::text)
       FROM jsonb_to_recordset($1::jsonb) AS r(i bigint, t text, q integer, at timestamptz, p jsonb)
     RETURNING id, incident_id, type, seq`,
    [
      JSON.stringify(
        drafts.map((d) => ({
          i: d.incidentId,
          t: d.change.type,
          q: d.change.seq ?? 0,
          at: iso(d.change.at),
          p: d.change,
        })),
      ),
    ],
  );
  const eventIds = new Map(rows.map((r) => [`${r.incident_id}|${r.type}|${r.seq}`, r.id]));
  return drafts.map((d) => ({
    incidentId: d.incidentId,
    eventId: eventIds.get(`${d.incidentId}|${d.change.type}|${d.change.seq ?? 0}`)!,
    change: d.change,
  }));
}

const iso = (ms: number) => new Date(ms).toISOString();
