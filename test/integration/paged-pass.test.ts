// The spine's paged form (lib/detection/paged.ts), shown with a watcher that exists only here, so
// that nothing in it comes from inventory: pages of subjects in key order, their states from
// forewarn.subject_state, causes recorded per subject (one that cannot be recorded is logged with
// its subject and keeps its previous state, the others are recorded), subjects the platform no
// longer has ended and forgotten, and a dry run that writes nothing. Real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  definePagedDetector,
  detectorBaseSettings,
  type DetectionContext,
} from '../../lib/detection/detector.ts';
import { InvalidRowReporter } from '../../lib/platform/invalid-rows.ts';
import type { Config } from '../../lib/config/schema.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const ID = 'toy-levels';
const T0 = Date.parse('2026-03-02T10:00:00Z');

interface Level {
  key: string;
  level: number;
}

interface LevelChange {
  detector: string;
  subjectKey: string;
  subject: { key: string };
  kind: 'high';
  type: 'opened' | 'resolved';
  at: number;
  evidence: { level: number };
}

/** What the platform holds this tick: the test changes it between ticks. */
let platform: Level[] = [];

const settings = z.object({ ...detectorBaseSettings, pageSize: z.number().int().positive() });
type Settings = z.infer<typeof settings>;
/** The toy's pacing: at most this many subjects get changes recorded per pass. */
let limit = Infinity;
const SETTINGS: Settings = { enabled: true, schedule: '* * * * * *', maxClockSkewSeconds: 60, pageSize: 2 };

function change(key: string, type: LevelChange['type'], level: number, at: number): LevelChange {
  return { detector: ID, subjectKey: key, subject: { key }, kind: 'high', type, at, evidence: { level } };
}

const toy = definePagedDetector({
  id: ID,
  settings,
  bucketMs: 1_000,
  initialState: () => ({ version: 1 }),
  upgradeState: (stored: { version: number }) => stored,
  read: async () => ({ signals: null, cache: null, skippedRows: 0 }),
  pass: {
    limit: () => limit,
    async *pages(_ctx: DetectionContext, { settings }: { settings: Settings; now: number; signals: null }) {
      const sorted = [...platform].sort((a, b) => a.key.localeCompare(b.key));
      for (let i = 0; i < sorted.length; i += settings.pageSize) yield sorted.slice(i, i + settings.pageSize);
    },
    keyOf: (s: Level) => s.key,
    detect: (
      page: readonly Level[],
      states: ReadonlyMap<string, { high: boolean }>,
      _s: Settings,
      now: number,
    ) => {
      const changes: LevelChange[] = [];
      const updates: Array<{ subjectKey: string; state: { high: boolean } | null }> = [];
      let high = 0;
      for (const s of page) {
        const was = states.get(s.key)?.high ?? false;
        const is = s.level > 10;
        // "broken" claims to resolve a cause it never opened: recording it fails.
        if (s.key === 'broken') changes.push(change(s.key, 'resolved', s.level, now));
        else if (is !== was) changes.push(change(s.key, is ? 'opened' : 'resolved', s.level, now));
        if (is !== was || s.key === 'broken')
          updates.push({ subjectKey: s.key, state: is ? { high: is } : null });
        if (is) high++;
      }
      return { changes, updates, tally: { high } };
    },
    emptyTally: () => ({ high: 0 }),
    addTally: (a: { high: number }, b: { high: number }) => ({ high: a.high + b.high }),
    pageSize: (s: Settings) => s.pageSize,
    lookup: async (_ctx: DetectionContext, keys: readonly string[]) =>
      new Map(keys.filter((k) => platform.some((p) => p.key === k)).map((k) => [k, true] as const)),
    sweep: (key: string, state: { high: boolean }, exists: true | undefined, _s: Settings, now: number) =>
      exists ? null : state.high ? [change(key, 'resolved', 0, now)] : [],
    describeChange: (c: LevelChange) => ({ key: c.subject.key, change: c.type }),
  },
  describe: () => '',
});

let db: TestDatabase;
const logs = captureLogs('info');
let ctx: DetectionContext;

beforeAll(async () => {
  db = await createTestDatabase();
  ctx = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: 'platform',
    config: () => ({ detectors: { toyLevels: SETTINGS } }) as unknown as Config,
    logger: logs.logger,
    workerId: 'test',
    invalidRows: new InvalidRowReporter(logs.logger),
  };
});

afterAll(async () => {
  await db?.drop();
});

async function states(): Promise<Record<string, unknown>> {
  const { rows } = await db.pool.query<{ subject_key: string; state: unknown }>(
    'SELECT subject_key, state FROM forewarn.subject_state WHERE detector = $1 ORDER BY 1',
    [ID],
  );
  return Object.fromEntries(rows.map((r) => [r.subject_key, r.state]));
}

async function causes(): Promise<string[]> {
  const { rows } = await db.pool.query<{ subject_key: string; open: boolean }>(
    'SELECT subject_key, resolved_at IS NULL AS open FROM forewarn.incidents WHERE detector = $1 ORDER BY id',
    [ID],
  );
  return rows.map((r) => `${r.subject_key} ${r.open ? 'open' : 'resolved'}`);
}

describe('a paged pass of a watcher declared in a test', () => {
  it('a dry run pages through everything and writes nothing', async () => {
    platform = [
      { key: 'a', level: 11 },
      { key: 'b', level: 1 },
      { key: 'c', level: 12 },
      { key: 'd', level: 2 },
      { key: 'e', level: 13 },
    ];
    const dry = await toy.run(ctx, T0, { dryRun: true });
    expect(dry.findings).toEqual({
      subjects: 5,
      pages: 3,
      gone: 0,
      deferred: 0,
      limited: false,
      tally: { high: 3 },
    });
    expect(dry.changes.map((c) => `${c.subjectKey} ${c.type}`)).toEqual(['a opened', 'c opened', 'e opened']);
    expect(await states()).toEqual({});
    expect(await causes()).toEqual([]);
  });

  it('records each page: causes opened, changed states written', async () => {
    const tick = await toy.run(ctx, T0);
    expect(tick.outcome).toBe('evaluated');
    expect(tick.findings).toEqual({
      subjects: 5,
      pages: 3,
      gone: 0,
      deferred: 0,
      limited: false,
      tally: { high: 3 },
    });
    expect(await causes()).toEqual(['a open', 'c open', 'e open']);
    expect(await states()).toEqual({ a: { high: true }, c: { high: true }, e: { high: true } });
  });

  it('a subject whose change cannot be recorded is logged with its key and keeps its state; the others go on', async () => {
    platform = [
      ...platform.map((p) => (p.key === 'a' ? { ...p, level: 3 } : p)),
      { key: 'broken', level: 50 },
    ];
    const tick = await toy.run(ctx, T0 + 1_000);
    expect(tick.failedSubjects).toEqual(['broken']);
    expect(tick.changes.map((c) => `${c.subjectKey} ${c.type}`)).toEqual(['a resolved']);
    expect(await causes()).toEqual(['a resolved', 'c open', 'e open']);
    const state = await states();
    expect(state.a).toBeUndefined();
    expect(state.broken).toBeUndefined();
    const errors = logs.lines().filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ subjectKey: 'broken', key: 'broken', change: 'resolved' });
  });

  it('a subject the platform no longer has ends its cause and is forgotten', async () => {
    platform = platform.filter((p) => p.key !== 'c' && p.key !== 'broken');
    const tick = await toy.run(ctx, T0 + 2_000);
    expect(tick.findings).toMatchObject({ gone: 1 });
    expect(await causes()).toEqual(['a resolved', 'c resolved', 'e open']);
    expect(await states()).toEqual({ e: { high: true } });
  });

  it('a paced pass records at most its limit of subjects and stops; the next pass goes on; a dry run lists all', async () => {
    platform = [
      { key: 'e', level: 13 },
      { key: 'f', level: 14 },
      { key: 'g', level: 15 },
      { key: 'h', level: 16 },
    ];
    limit = 2;
    try {
      const dry = await toy.run(ctx, T0 + 3_000, { dryRun: true });
      expect(dry.changes.map((c) => c.subjectKey)).toEqual(['f', 'g', 'h']);
      expect(dry.findings).toMatchObject({ deferred: 1, limited: false });

      const first = await toy.run(ctx, T0 + 3_000);
      expect(first.changes.map((c) => c.subjectKey)).toEqual(['f', 'g']);
      // Pages of two: e f, then g h, in which the limit is reached; the pass stops there.
      expect(first.findings).toMatchObject({ subjects: 4, pages: 2, deferred: 1, limited: true });
      expect(await causes()).toEqual(['a resolved', 'c resolved', 'e open', 'f open', 'g open']);
      expect(Object.keys(await states())).toEqual(['e', 'f', 'g']);

      const second = await toy.run(ctx, T0 + 4_000);
      expect(second.changes.map((c) => c.subjectKey)).toEqual(['h']);
      expect(second.findings).toMatchObject({ deferred: 0, limited: false });
      expect(Object.keys(await states())).toEqual(['e', 'f', 'g', 'h']);
    } finally {
      limit = Infinity;
    }
  });
});
