// Recording a tick's cause changes subject by subject, for every watcher: each subject's changes
// go in a savepoint of their own, so one subject that cannot be recorded (a constraint, a bad
// value) is rolled back alone, logged with its subject, and tried again next tick, while the
// other subjects' changes are recorded.
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
