// A paged pass whose pages come in descending position (lib/detection/paged.ts `position`), shown
// with a watcher that exists only here: each subject has a period that began at `since`, pages come
// most recent first, and a state remembers its period. Each page's states are read as one range of
// positions; the platform is asked only about the states no page subject matched (a period that
// ended, a subject that left), never about the ones the pages bore out; a period that moved is
// found by key; states below the last page are swept too. Real PostgreSQL.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  definePagedDetector,
  detectorBaseSettings,
  type DetectionContext,
} from '../../lib/detection/detector.ts';
import { CHANGES_KEPT_IN_FULL } from '../../lib/detection/paged.ts';
import { InvalidRowReporter } from '../../lib/platform/invalid-rows.ts';
import type { Config } from '../../lib/config/schema.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const ID = 'toy-periods';
const T0 = Date.parse('2026-03-02T10:00:00Z');

interface Period {
  key: string;
  since: number;
}

interface PeriodChange {
  detector: string;
  subjectKey: string;
  subject: { key: string };
  kind: 'period';
  type: 'opened' | 'resolved';
  at: number;
  evidence: { since: number };
}

/** What the platform holds this tick (the test changes it between ticks). */
let platform: Period[] = [];
/** Set to break the order the pages promise. */
let shuffled = false;
/** Every key the sweep asked the platform about, in order. */
let asked: string[] = [];
let limit = Infinity;

const settings = z.object({ ...detectorBaseSettings, pageSize: z.number().int().positive() });
type Settings = z.infer<typeof settings>;
const SETTINGS: Settings = { enabled: true, schedule: '* * * * * *', maxClockSkewSeconds: 60, pageSize: 2 };

const change = (key: string, type: PeriodChange['type'], since: number, at: number): PeriodChange => ({
  detector: ID,
  subjectKey: key,
  subject: { key },
  kind: 'period',
  type,
  at,
  evidence: { since },
});

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
      const sorted = [...platform].sort((a, b) => b.since - a.since || b.key.localeCompare(a.key));
      if (shuffled) sorted.reverse();
      for (let i = 0; i < sorted.length; i += settings.pageSize) yield sorted.slice(i, i + settings.pageSize);
    },
    keyOf: (s: Period) => s.key,
    position: { ofSubject: (s: Period) => s.since, ofState: (s: { since: number }) => s.since },
    detect: (
      page: readonly Period[],
      states: ReadonlyMap<string, { since: number }>,
      _s: Settings,
      now: number,
    ) => {
      const changes: PeriodChange[] = [];
      const updates: Array<{ subjectKey: string; state: { since: number } | null }> = [];
      for (const s of page) {
        const was = states.get(s.key);
        if (was?.since === s.since) continue;
        if (was) changes.push(change(s.key, 'resolved', was.since, now));
        changes.push(change(s.key, 'opened', s.since, now));
        updates.push({ subjectKey: s.key, state: { since: s.since } });
      }
      return { changes, updates, tally: {} };
    },
    emptyTally: () => ({}),
    addTally: () => ({}),
    pageSize: (s: Settings) => s.pageSize,
    lookup: async (_ctx: DetectionContext, keys: readonly string[]) => {
      asked.push(...keys);
      return new Map(platform.filter((p) => keys.includes(p.key)).map((p) => [p.key, p.since] as const));
    },
    sweep: (key: string, state: { since: number }, since: number | undefined, _s: Settings, now: number) =>
      since === state.since ? null : [change(key, 'resolved', state.since, now)],
    describeChange: (c: PeriodChange) => ({ key: c.subject.key, change: c.type }),
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
    config: () => ({ detectors: { toyPeriods: SETTINGS } }) as unknown as Config,
    logger: logs.logger,
    workerId: 'test',
    invalidRows: new InvalidRowReporter(logs.logger),
  };
});

beforeEach(() => {
  asked = [];
});

afterAll(async () => {
  await db?.drop();
});

/** Each stored state as "key@position". */
async function positions(): Promise<string[]> {
  const { rows } = await db.pool.query<{ subject_key: string; position: number | null }>(
    'SELECT subject_key, position FROM forewarn.subject_state WHERE detector = $1 ORDER BY 1',
    [ID],
  );
  return rows.map((r) => `${r.subject_key}@${r.position}`);
}

async function openCauses(): Promise<string[]> {
  const { rows } = await db.pool.query<{ subject_key: string; since: number }>(
    `SELECT subject_key, (open_evidence->>'since')::float8 AS since FROM forewarn.incidents
      WHERE detector = $1 AND resolved_at IS NULL ORDER BY 1`,
    [ID],
  );
  return rows.map((r) => `${r.subject_key}@${r.since}`);
}

describe('a paged pass in descending position', () => {
  it('writes each state with its position', async () => {
    platform = [
      { key: 'a', since: 50 },
      { key: 'b', since: 40 },
      { key: 'c', since: 30 },
      { key: 'd', since: 30 },
      { key: 'e', since: 10 },
    ];
    const tick = await toy.run(ctx, T0);
    expect(tick.outcome).toBe('evaluated');
    expect(tick.changes).toHaveLength(5);
    expect(await positions()).toEqual(['a@50', 'b@40', 'c@30', 'd@30', 'e@10']);
    expect(asked).toEqual([]);
  });

  it('a steady pass asks the platform about nothing its pages bore out', async () => {
    const tick = await toy.run(ctx, T0 + 1_000);
    expect(tick.changes).toEqual([]);
    expect(tick.findings).toMatchObject({ subjects: 5, pages: 3, gone: 0 });
    expect(asked).toEqual([]);
  });

  it('a period that moved is found by key, ended and opened again at its new position', async () => {
    platform = platform.map((p) => (p.key === 'd' ? { ...p, since: 45 } : p));
    const tick = await toy.run(ctx, T0 + 2_000);
    expect(tick.changes.map((c) => `${c.subjectKey} ${c.type} ${c.evidence.since}`)).toEqual([
      'd resolved 30',
      'd opened 45',
    ]);
    expect(await positions()).toEqual(['a@50', 'b@40', 'c@30', 'd@45', 'e@10']);
    expect(await openCauses()).toEqual(['a@50', 'b@40', 'c@30', 'd@45', 'e@10']);
    expect(asked).toEqual([]);
  });

  it('a subject gone from a page range, and one gone below the last page, are asked about and ended', async () => {
    // Pages now: a 50 · d 45, b 40 · c 30; e (10) lies below the last page, b's successor gone.
    platform = platform.filter((p) => p.key !== 'e' && p.key !== 'b');
    platform.push({ key: 'f', since: 42 });
    const tick = await toy.run(ctx, T0 + 3_000);
    expect(tick.changes.map((c) => `${c.subjectKey} ${c.type}`).sort()).toEqual([
      'b resolved',
      'e resolved',
      'f opened',
    ]);
    expect(asked.sort()).toEqual(['b', 'e']);
    expect(await positions()).toEqual(['a@50', 'c@30', 'd@45', 'f@42']);
  });

  it('a paced pass that stops early still sweeps the states below where it stopped', async () => {
    platform = [
      { key: 'a', since: 50 },
      { key: 'g', since: 48 },
      { key: 'h', since: 47 },
      { key: 'd', since: 45 },
      { key: 'f', since: 42 },
    ];
    limit = 1;
    try {
      const tick = await toy.run(ctx, T0 + 4_000);
      expect(tick.findings).toMatchObject({ limited: true, deferred: 1 });
      // g is recorded, h waits and the pass stops in the page of h and d. Below d (45), f and c
      // were not read from the platform this pass: both are asked about; c is gone.
      expect(tick.changes.map((c) => `${c.subjectKey} ${c.type}`).sort()).toEqual(['c resolved', 'g opened']);
      expect(asked).toEqual(['f', 'c']);
    } finally {
      limit = Infinity;
    }
  });

  it('pages out of position order stop the pass with a clear error, and nothing is recorded', async () => {
    shuffled = true;
    try {
      await expect(toy.run(ctx, T0 + 5_000)).rejects.toThrow(/pages are not in descending position/);
    } finally {
      shuffled = false;
    }
    expect(await positions()).toEqual(['a@50', 'd@45', 'f@42', 'g@48']);
  });

  it('a live pass keeps the first changes in full and of the others their events; a dry run keeps all', async () => {
    platform = Array.from({ length: 1_500 }, (_, i) => ({ key: `m${i}`, since: 1_000 + i }));
    SETTINGS.pageSize = 400;
    try {
      // The four states left from before (positions 42 to 50) lie below every page: gone.
      const dry = await toy.run(ctx, T0 + 6_000, { dryRun: true });
      expect(dry.changeCount).toBe(1_504);
      expect(dry.changes).toHaveLength(1_504);

      const live = await toy.run(ctx, T0 + 6_000);
      expect(live.changeCount).toBe(1_504);
      expect(live.changes).toHaveLength(CHANGES_KEPT_IN_FULL);
      expect(live.recorded).toHaveLength(CHANGES_KEPT_IN_FULL);
      expect(new Set(live.eventIds).size).toBe(1_504);
      const { rows } = await db.pool.query<{ id: string }>(
        `SELECT e.id FROM forewarn.incident_events e JOIN forewarn.incidents i ON i.id = e.incident_id
          WHERE i.detector = $1 AND e.occurred_at = $2`,
        [ID, new Date(T0 + 6_000)],
      );
      expect(rows.map((r) => r.id).sort()).toEqual([...live.eventIds].sort());
    } finally {
      SETTINGS.pageSize = 2;
    }
  });
});
