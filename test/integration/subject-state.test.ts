// A detector state kept one row per subject (lib/detection/state.ts) in a real PostgreSQL: the
// head in forewarn.detector_state, each subject in forewarn.subject_state, a save writing only the
// subjects that changed (a row PostgreSQL did not rewrite keeps its xmin), a remembered state used
// while its version holds, and a head written by an earlier release (subjects inside) still read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../../lib/db/pool.ts';
import type { SubjectStateLayout } from '../../lib/detection/detector.ts';
import { loadState, readStoredState, saveState } from '../../lib/detection/state.ts';
import type { StoredState } from '../../lib/incidents/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

interface ToyState {
  ticks: number;
  subjects: Record<string, { n: number }>;
}

const layout: SubjectStateLayout<ToyState> = {
  split: ({ subjects, ...head }) => ({ head, subjects }),
  join: (head, rows) => ({
    ...head,
    subjects: { ...head.subjects, ...(Object.fromEntries(rows) as ToyState['subjects']) },
  }),
};
const toy = { id: 'toy', initialState: (): ToyState => ({ ticks: 0, subjects: {} }), subjectState: layout };

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

type Stored = StoredState<ToyState, null>;

async function save(previous: Stored, state: ToyState, evaluatedAt: number): Promise<Stored> {
  return inTransaction(db.pool, async (client) => {
    await loadState(client, toy, { lock: true, remembered: previous });
    return saveState(client, toy, previous, { state, cache: null, evaluatedAt });
  });
}

async function rows(): Promise<Map<string, { state: unknown; xmin: string }>> {
  const { rows } = await db.pool.query<{ subject_key: string; state: unknown; xmin: string }>(
    `SELECT subject_key, state, xmin::text AS xmin FROM forewarn.subject_state WHERE detector = 'toy'`,
  );
  return new Map(rows.map((r) => [r.subject_key, { state: r.state, xmin: r.xmin }]));
}

async function head(): Promise<unknown> {
  const { rows } = await db.pool.query<{ state: unknown }>(
    `SELECT state FROM forewarn.detector_state WHERE detector = 'toy'`,
  );
  return rows[0]?.state;
}

describe('a state kept one row per subject', () => {
  let first: Stored;

  it('is saved as a head without its subjects and one row for each', async () => {
    const empty: Stored = { state: toy.initialState(), evaluatedAt: null, cache: null, version: null };
    first = await save(empty, { ticks: 1, subjects: { a: { n: 1 }, b: { n: 1 }, c: { n: 1 } } }, 1_000);
    expect(await head()).toEqual({ ticks: 1 });
    const stored = await rows();
    expect([...stored.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(stored.get('b')!.state).toEqual({ n: 1 });
  });

  it('writes only the subjects that changed and deletes the ones gone', async () => {
    const before = await rows();
    await save(first, { ticks: 2, subjects: { a: { n: 2 }, b: { n: 1 }, d: { n: 1 } } }, 2_000);
    const after = await rows();
    expect([...after.keys()].sort()).toEqual(['a', 'b', 'd']);
    expect(after.get('a')!.state).toEqual({ n: 2 });
    expect(after.get('a')!.xmin).not.toBe(before.get('a')!.xmin);
    // b is the same: its row was not rewritten.
    expect(after.get('b')!.xmin).toBe(before.get('b')!.xmin);
    expect(await head()).toEqual({ ticks: 2 });
  });

  it('is read back whole, by a process that remembers nothing, and saved from there', async () => {
    const loaded = await inTransaction(db.pool, (client) =>
      loadState<ToyState, null>(client, toy, { lock: true }),
    );
    expect(loaded.state).toEqual({ ticks: 2, subjects: { a: { n: 2 }, b: { n: 1 }, d: { n: 1 } } });
    expect(loaded.evaluatedAt).toBe(2_000);
    await save(loaded, { ticks: 3, subjects: { a: { n: 2 } } }, 3_000);
    expect([...(await rows()).keys()]).toEqual(['a']);
    expect(await readStoredState(toy, db.pool)).toEqual({ ticks: 3, subjects: { a: { n: 2 } } });
  });

  it('is taken from memory while the head has the version this process saved, and read again after', async () => {
    const remembered = await save(
      await inTransaction(db.pool, (client) => loadState<ToyState, null>(client, toy, { lock: true })),
      { ticks: 4, subjects: { a: { n: 4 } } },
      4_000,
    );
    // A row changed behind the process's back, the version untouched: memory is used as it is.
    await db.pool.query(`UPDATE forewarn.subject_state SET state = '{"n": 99}' WHERE detector = 'toy'`);
    const fromMemory = await inTransaction(db.pool, (client) =>
      loadState(client, toy, { lock: true, remembered }),
    );
    expect(fromMemory).toBe(remembered);
    // Another replica's save changes the version: the rows are read.
    await db.pool.query(
      `UPDATE forewarn.detector_state SET version = gen_random_uuid() WHERE detector = 'toy'`,
    );
    const reread = await inTransaction(db.pool, (client) =>
      loadState(client, toy, { lock: true, remembered }),
    );
    expect(reread.state.subjects).toEqual({ a: { n: 99 } });
  });

  it('reads a head an earlier release wrote with its subjects inside, the rows winning', async () => {
    await db.pool.query(
      `UPDATE forewarn.detector_state SET state = $1, version = NULL WHERE detector = 'toy'`,
      [JSON.stringify({ ticks: 5, subjects: { a: { n: 0 }, old: { n: 7 } } })],
    );
    expect(await readStoredState(toy, db.pool)).toEqual({
      ticks: 5,
      subjects: { a: { n: 99 }, old: { n: 7 } },
    });
  });
});
