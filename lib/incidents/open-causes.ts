// Every open cause of one detector: what a watcher whose causes are few (error codes) reads each
// tick to know which subjects to resolve, without keeping a copy of its own.
import type { Queryable } from '../db/pool.ts';

export async function readAllOpenCauses(
  db: Queryable,
  detector: string,
): Promise<Array<{ id: string; subjectKey: string; kind: string; openedAt: number }>> {
  const { rows } = await db.query<{ id: string; subject_key: string; kind: string; opened_at: Date }>(
    `SELECT id, subject_key, kind, opened_at FROM forewarn.incidents
      WHERE detector = $1 AND resolved_at IS NULL
      ORDER BY subject_key, kind`,
    [detector],
  );
  return rows.map((r) => ({
    id: r.id,
    subjectKey: r.subject_key,
    kind: r.kind,
    openedAt: r.opened_at.getTime(),
  }));
}
