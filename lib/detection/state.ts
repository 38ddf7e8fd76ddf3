// A detector's state between ticks, as the tick runner loads and saves it: one JSON document in
// forewarn.detector_state, or, for a detector with a subject layout, a detector-wide head there
// and one forewarn.subject_state row per subject, of which a save writes only those that changed.
import type { Queryable } from '../db/pool.ts';
import {
  readAllSubjectStates,
  readDetectorState,
  saveDetectorState,
  saveSubjectStateJson,
  type StoredState,
} from '../incidents/store.ts';
import type { SubjectStateLayout } from './detector.ts';

interface StateOwner<State> {
  id: string;
  initialState: () => State;
  subjectState?: SubjectStateLayout<State>;
}

/**
 * The stored state, whole. With `lock` the head row is created if needed and locked for the
 * transaction. `remembered` (what this process saved last) is used as it is while the head still
 * has its version: the subject rows were written in the same transaction as that version.
 */
export async function loadState<State, Cache>(
  db: Queryable,
  detector: StateOwner<State>,
  options: { lock: boolean; remembered?: StoredState<State, Cache> },
): Promise<StoredState<State, Cache>> {
  const stored = await readDetectorState<State, Cache>(db, detector.id, detector.initialState(), options);
  const layout = detector.subjectState;
  if (!layout || stored === options.remembered) return stored;
  const subjects = await readAllSubjectStates(db, detector.id);
  const subjectJson = new Map([...subjects].map(([key, state]) => [key, JSON.stringify(state)]));
  return { ...stored, state: layout.join(stored.state, subjects), subjectJson };
}

/**
 * Saves the state (and cache) of the tick at `evaluatedAt`. With a subject layout, the subjects
 * whose JSON differs from what `previous` holds are written and those no longer in the state are
 * deleted. (PostgreSQL orders a jsonb's keys its own way, so the first save after a read from the
 * database rewrites every subject once.)
 */
export async function saveState<State, Cache>(
  db: Queryable,
  detector: StateOwner<State>,
  previous: StoredState<State, Cache>,
  saved: { state: State; cache: Cache | null; evaluatedAt: number },
): Promise<StoredState<State, Cache>> {
  const layout = detector.subjectState;
  if (!layout) return saveDetectorState(db, detector.id, saved);
  const { head, subjects } = layout.split(saved.state);
  const json = new Map(Object.entries(subjects).map(([key, state]) => [key, JSON.stringify(state)]));
  const before = previous.subjectJson ?? new Map<string, string>();
  const changed = [...json].filter(([key, text]) => before.get(key) !== text);
  const dropped = [...before.keys()].filter((key) => !json.has(key));
  await saveSubjectStateJson(db, detector.id, changed, dropped);
  const { version } = await saveDetectorState(db, detector.id, { ...saved, state: head as State });
  return { ...saved, version, subjectJson: json };
}

/** The live daemon's stored state for a backtest to start from, or null before its first tick. */
export async function readStoredState<State>(
  detector: StateOwner<State>,
  db: Queryable,
): Promise<State | null> {
  const { rows } = await db.query<{ state: State }>(
    'SELECT state FROM forewarn.detector_state WHERE detector = $1',
    [detector.id],
  );
  if (!rows[0]) return null;
  const layout = detector.subjectState;
  return layout ? layout.join(rows[0].state, await readAllSubjectStates(db, detector.id)) : rows[0].state;
}
