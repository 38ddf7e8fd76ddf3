// Reading payment attempts from the platform (see docs/platform-contract.md). Live ticks read the
// tick's signals with two aggregate queries (one row per pair and window class, not per bucket);
// backtests stream the rows themselves in creation order into the in-memory builder. Both apply
// the observation model of detectors/payment-health/observe.ts, which a test checks they share:
//  - an attempt counts by its creation time, for what was known of it at `now`;
//  - its finish is known at finished_at (a final row without it: created_at, plus latency_ms when
//    it succeeded), and only when that is within settleSeconds of its creation;
//  - its speed is judged at the slow threshold, and a success's latency counted at its finish,
//    but not before the slow threshold (so that young slow attempts are never left out).
import type { Readable } from 'node:stream';
import type { ClientBase } from 'pg';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import {
  addTally,
  copyTally,
  emptyTally,
  noteBadUser,
  LATENCY_BINS,
  LATENCY_EDGES_MS,
  lookback,
  pairKey,
  windowLengths,
  type ObservedAttempt,
  type PairSignals,
  type PaymentHealthSettings,
  type SignalSet,
  type Tally,
} from '../../detectors/payment-health/index.ts';
import { escapeIdentifier, inTransaction, type Queryable } from '../db/pool.ts';

/** slowAfterMs by pair, channel and region, most specific first, with a default. */
export interface SlowAfterRules {
  defaultMs: number;
  pairs: Array<{ channel: string; region: string; ms: number }>;
  channels: Array<{ channel: string; ms: number }>;
  regions: Array<{ region: string; ms: number }>;
}

export function slowAfterRules(settings: PaymentHealthSettings): SlowAfterRules {
  const { overrides } = settings;
  const pick = <T>(
    group: Record<string, { slow?: { slowAfterMs?: number } | undefined }>,
    make: (key: string, ms: number) => T,
  ) =>
    Object.entries(group).flatMap(([key, o]) => (o.slow?.slowAfterMs ? [make(key, o.slow.slowAfterMs)] : []));
  return {
    defaultMs: settings.slow.slowAfterMs,
    pairs: pick(overrides.pairs, (key, ms) => {
      const at = key.indexOf(':');
      return { channel: key.slice(0, at), region: key.slice(at + 1), ms };
    }),
    channels: pick(overrides.channels, (channel, ms) => ({ channel, ms })),
    regions: pick(overrides.regions, (region, ms) => ({ region, ms })),
  };
}

export interface InvalidAttempt {
  id: string;
  reason: string;
}

const VALID_STATUSES = ['succeeded', 'failed', 'pending', 'timeout'];
const STATUS_LIST = VALID_STATUSES.map((v) => `'${v}'`).join(', ');

/** Bound parameters of a query, in order; `bind` returns the placeholder. */
class Params {
  readonly values: unknown[] = [];
  bind(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/**
 * The slow threshold of each row, most specific rule first, as a CASE over bound parameters
 * (a handful of overrides at most; cheaper per row than joining rule tables).
 */
function slowAfterCase(rules: SlowAfterRules, p: Params): string {
  const arms: string[] = [];
  for (const r of rules.pairs)
    arms.push(
      `WHEN a.channel_id = ${p.bind(r.channel)} AND a.region = ${p.bind(r.region)} THEN ${p.bind(r.ms)}::int`,
    );
  for (const r of rules.channels)
    arms.push(`WHEN a.channel_id = ${p.bind(r.channel)} THEN ${p.bind(r.ms)}::int`);
  for (const r of rules.regions) arms.push(`WHEN a.region = ${p.bind(r.region)} THEN ${p.bind(r.ms)}::int`);
  const fallback = `${p.bind(rules.defaultMs)}::int`;
  return arms.length > 0 ? `CASE ${arms.join(' ')} ELSE ${fallback} END` : fallback;
}

/** A span of creation time, [from, to) in epoch ms. */
export type Span = readonly [from: number, to: number];

/** The rows that keep the contract, created in any of the spans (see readInvalidAttempts). */
function validRows(schema: string, p: Params, spans: readonly Span[]): string {
  const s = escapeIdentifier(schema);
  const inSpans = spans
    .filter(([from, to]) => to > from)
    .map(
      ([from, to]) =>
        `(a.created_at >= ${p.bind(new Date(from))} AND a.created_at < ${p.bind(new Date(to))})`,
    );
  return `${s}.payment_attempts a
     WHERE (${inSpans.length > 0 ? inSpans.join(' OR ') : 'false'})
       AND a.user_id IS NOT NULL AND a.region IS NOT NULL AND a.region <> ''
       AND a.status IN (${STATUS_LIST})
       AND (a.latency_ms IS NULL OR a.latency_ms >= 0)
       AND a.channel_id = ANY (ARRAY(SELECT id FROM ${s}.payment_channels WHERE id IS NOT NULL))`;
}

/**
 * Each row's observation: creation ms, when its finish became known (null: not within the
 * settle horizon), whether it failed, when its speed became known and whether it was slow, and
 * the latency bin of a success. Epoch milliseconds in float8: this runs over every row read.
 * Each level ends in OFFSET 0 so that the planner computes its columns once per row instead of
 * inlining them into every aggregate's filter (a dozen evaluations of the same expression).
 */
function observedRows(schema: string, p: Params, q: SignalQuery, spans: readonly Span[]): string {
  const slowMs = slowAfterCase(q.slowAfter, p);
  const settle = p.bind(q.settleMs);
  return `
    SELECT channel, region, user_id, status, error_code, c_ms, failed, fk_ms,
           c_ms + slow_ms AS sp_ms,
           NOT COALESCE(fk_ms <= c_ms + slow_ms, false) AS slow,
           GREATEST(fk_ms, c_ms + slow_ms) AS lk_ms,
           CASE WHEN status = 'succeeded' AND fk_ms IS NOT NULL
                THEN width_bucket(COALESCE(latency_ms::float8, fk_ms - c_ms), ${p.bind(LATENCY_EDGES_MS)}::float8[])
           END AS bin
      FROM (
        SELECT channel, region, user_id, status, error_code, latency_ms, c_ms, slow_ms,
               status IN ('failed', 'timeout') AS failed,
               CASE WHEN f_ms <= c_ms + ${settle}::float8 THEN f_ms END AS fk_ms
          FROM (
            SELECT channel, region, user_id, status, error_code, latency_ms, slow_ms, c_ms,
                   CASE WHEN status = 'pending' THEN NULL
                        ELSE GREATEST(c_ms, COALESCE(finished_ms,
                               c_ms + CASE WHEN status = 'succeeded' THEN COALESCE(latency_ms, 0) ELSE 0 END))
                   END AS f_ms
              FROM (
                SELECT a.channel_id AS channel, a.region, a.user_id, a.status, a.error_code, a.latency_ms,
                       ${slowMs} AS slow_ms,
                       floor(date_part('epoch', a.created_at) * 1000)::float8 AS c_ms,
                       floor(date_part('epoch', a.finished_at) * 1000)::float8 AS finished_ms
                  FROM ${validRows(schema, p, spans)}
                OFFSET 0
              ) rows
            OFFSET 0
          ) r
        OFFSET 0
      ) o
     OFFSET 0`;
}

export interface SignalQuery {
  schema: string;
  now: number;
  /** Window lengths in seconds, shortest first. */
  lengths: readonly number[];
  settleMs: number;
  settledFrom: number;
  slowAfter: SlowAfterRules;
  maxUsers: number;
}

export function signalQueryFor(
  settings: PaymentHealthSettings,
  schema: string,
  now: number,
  settledFrom: number,
): SignalQuery {
  const look = lookback(settings);
  return {
    schema,
    now,
    lengths: windowLengths(settings),
    settleMs: look.settleMs,
    settledFrom,
    slowAfter: slowAfterRules(settings),
    maxUsers: look.maxUsers,
  };
}

/**
 * The tick's signals for every pair with attempts in the longest window or the settled slice,
 * read in full: every row of the longest window. `readPairSignalsIncremental` gives the same
 * signals from a fraction of the rows; this one is its reference and its first tick.
 */
export async function readPairSignals(db: Queryable, q: SignalQuery): Promise<SignalSet> {
  const longestMs = Math.max(...q.lengths) * 1000;
  const from = Math.min(q.now - longestMs, q.settledFrom);
  const [groups, bad] = await Promise.all([
    readWindowGroups(db, q, from),
    readBadUsers(db, q, [[q.now - longestMs, q.now]]),
  ]);
  const pairs = new PairsBuilder(q);
  for (const g of groups) {
    const pair = pairs.get(g.channel, g.region);
    if (g.settled) addTally(pair.settled, g.tally);
    // A group of class i is inside window i and every longer one.
    for (let i = g.cls; i < q.lengths.length; i++) addTally(pair.windows[i]!, g.tally);
    if (g.cls < q.lengths.length) pair.noteCreated(g.lastMs);
  }
  for (const b of bad) pairs.get(b.channel, b.region).badUsers[b.kind] = b.users.map((u) => u.at);
  return pairs.set();
}

/**
 * What a live tick keeps between ticks to read only new rows: per pair, each window longer than
 * the settle horizon summed over its settled part, and the newest bad users and attempt seen.
 * Rows older than the horizon never change what they say, so the sums move by what settled and
 * what left each window since the last tick: two slices of a tick's length, not the hour.
 */
export interface WindowCache {
  /** The settled part ends here: the last tick's now minus the settle horizon. */
  settledTo: number;
  settleMs: number;
  /** Window lengths (seconds) longer than the settle horizon, as `sums` holds them. */
  lengths: number[];
  pairs: Record<
    string,
    {
      channel: string;
      region: string;
      sums: Tally[];
      bad: { failures: Array<[string, number]>; slow: Array<[string, number]> };
      last: number | null;
    }
  >;
}

/**
 * The same signals as `readPairSignals`, reading the last settle horizon in full and, of the
 * older rows, only those that settled or left a window since the cached tick. Without a usable
 * cache (first tick, changed windows, a gap longer than the longest window) the settled sums
 * are read once from the whole range.
 */
export async function readPairSignalsIncremental(
  db: Queryable,
  q: SignalQuery,
  cache: WindowCache | null,
): Promise<{ set: SignalSet; cache: WindowCache; rowsRead: 'incremental' | 'full' }> {
  const longestMs = Math.max(...q.lengths) * 1000;
  const settledTo = q.now - q.settleMs;
  const longLengths = q.lengths.filter((l) => l * 1000 > q.settleMs);
  const usable =
    cache !== null &&
    cache.settleMs === q.settleMs &&
    cache.lengths.length === longLengths.length &&
    cache.lengths.every((l, i) => l === longLengths[i]) &&
    cache.settledTo <= settledTo &&
    settledTo - cache.settledTo <= longestMs;

  // The slices to read besides the recent part: what settled since the cached tick, what left
  // each long window, and the slice baselines learn from.
  const entering: Span = usable ? [cache.settledTo, settledTo] : [settledTo, settledTo];
  const spans: Span[] = [entering];
  longLengths.forEach((l) => {
    const ms = l * 1000;
    spans.push(usable ? [cache.settledTo + q.settleMs - ms, q.now - ms] : [q.now - ms, settledTo]);
  });
  const learning: Span = [q.settledFrom, settledTo];
  spans.push(learning);

  const [{ groups: recent, bad: recentBad }, slices, settledBad] = await Promise.all([
    readRecentPart(db, q, settledTo),
    readSliceTallies(db, q, spans),
    readBadUsers(db, q, usable ? [entering] : [[q.now - longestMs, settledTo]]),
  ]);

  const next: WindowCache = { settledTo, settleMs: q.settleMs, lengths: longLengths, pairs: {} };
  for (const [key, old] of Object.entries(usable ? cache.pairs : {})) {
    next.pairs[key] = {
      ...old,
      sums: old.sums.map((t) => copyTally(t)),
      bad: { failures: [...old.bad.failures], slow: [...old.bad.slow] },
    };
  }
  const cached = (channel: string, region: string) => {
    const key = pairKey(channel, region);
    let entry = next.pairs[key];
    if (!entry) {
      entry = {
        channel,
        region,
        sums: longLengths.map(() => emptyTally()),
        bad: { failures: [], slow: [] },
        last: null,
      };
      next.pairs[key] = entry;
    }
    return entry;
  };
  for (const s of slices) {
    const entry = cached(s.channel, s.region);
    if (s.slice === 0) entry.last = Math.max(entry.last ?? s.lastMs, s.lastMs);
    if (s.slice >= 1 && s.slice <= longLengths.length) {
      const i = s.slice - 1;
      // Usable cache: the slice left the window. Otherwise: the slice is the window's settled part.
      if (usable) addTally(entry.sums[i]!, s.tally, -1);
      else addTally(entry.sums[i]!, s.tally);
    }
  }
  if (usable) {
    // What settled since the cached tick joins every long window.
    for (const s of slices)
      if (s.slice === 0) for (const sum of cached(s.channel, s.region).sums) addTally(sum, s.tally);
  } else {
    for (const s of slices)
      if (s.slice >= 1 && s.slice <= longLengths.length) {
        const entry = cached(s.channel, s.region);
        entry.last = Math.max(entry.last ?? s.lastMs, s.lastMs);
      }
  }
  for (const b of settledBad) {
    const entry = cached(b.channel, b.region);
    for (const u of b.users) noteBadUser(entry.bad[b.kind], u.user, u.at, q.maxUsers);
  }

  const pairs = new PairsBuilder(q);
  for (const entry of Object.values(next.pairs)) {
    const pair = pairs.get(entry.channel, entry.region);
    longLengths.forEach((l, i) => addTally(pair.windows[q.lengths.indexOf(l)]!, entry.sums[i]!));
    if (entry.last !== null) pair.noteCreated(entry.last);
  }
  for (const g of recent) {
    const pair = pairs.get(g.channel, g.region);
    for (let i = g.cls; i < q.lengths.length; i++)
      if (q.lengths[i]! * 1000 <= q.settleMs) addTally(pair.windows[i]!, g.tally);
    // The recent part lies inside every long window.
    for (const l of longLengths) addTally(pair.windows[q.lengths.indexOf(l)]!, g.tally);
    pair.noteCreated(g.lastMs);
  }
  for (const s of slices)
    if (s.slice === spans.length - 1) addTally(pairs.get(s.channel, s.region).settled, s.tally);
  const recentBadByPair = new Map(
    recentBad.map((b) => [`${pairKey(b.channel, b.region)}:${b.kind}`, b.users]),
  );
  for (const key of new Set([
    ...Object.keys(next.pairs),
    ...recentBad.map((b) => pairKey(b.channel, b.region)),
  ])) {
    const [channel, region] = splitKey(key);
    for (const kind of ['failures', 'slow'] as const) {
      const list: Array<[string, number]> = [...(next.pairs[key]?.bad[kind] ?? [])];
      for (const u of recentBadByPair.get(`${key}:${kind}`) ?? [])
        noteBadUser(list, u.user, u.at, q.maxUsers);
      const times = list.map(([, at]) => at).filter((at) => at >= q.now - longestMs);
      if (times.length > 0) pairs.get(channel, region).badUsers[kind] = times;
    }
  }
  // A pair that has left every window is dropped from the cache.
  for (const [key, entry] of Object.entries(next.pairs)) {
    if ((entry.last ?? -Infinity) < q.now - longestMs && entry.sums.every((t) => t.created === 0))
      delete next.pairs[key];
  }
  return { set: pairs.set(), cache: next, rowsRead: usable ? 'incremental' : 'full' };
}

/** The signals of each pair, filled in by the readers above. */
class PairsBuilder {
  private readonly q: SignalQuery;
  private readonly pairs = new Map<
    string,
    PairSignals & {
      windows: Tally[];
      badUsers: { failures: number[]; slow: number[] };
      noteCreated(ms: number): void;
    }
  >();

  constructor(q: SignalQuery) {
    this.q = q;
  }

  get(channel: string, region: string) {
    const key = pairKey(channel, region);
    let pair = this.pairs.get(key);
    if (!pair) {
      const longestMs = Math.max(...this.q.lengths) * 1000;
      const now = this.q.now;
      const created = {
        channel,
        region,
        windows: this.q.lengths.map(() => emptyTally()),
        settled: emptyTally(),
        badUsers: { failures: [] as number[], slow: [] as number[] },
        lastCreatedAt: null as number | null,
        noteCreated(ms: number) {
          if (ms >= now - longestMs) created.lastCreatedAt = Math.max(created.lastCreatedAt ?? ms, ms);
        },
      };
      pair = created;
      this.pairs.set(key, pair);
    }
    return pair;
  }

  set(): SignalSet {
    const pairs = new Map<string, PairSignals>();
    for (const [key, { noteCreated: _n, ...pair }] of this.pairs) pairs.set(key, pair);
    return { now: this.q.now, lengths: this.q.lengths, settledFrom: this.q.settledFrom, pairs };
  }
}

interface WindowGroup {
  channel: string;
  region: string;
  /** Index of the shortest window holding the group; lengths.length: only in the settled slice. */
  cls: number;
  settled: boolean;
  tally: Tally;
  lastMs: number;
}

/** The window class and settled flag of each row, as readWindowGroups groups by them. */
function windowGroupKeys(p: Params, q: SignalQuery): { cls: string; settled: string } {
  const cls = `CASE ${q.lengths
    .map((seconds, i) => `WHEN c_ms >= ${p.bind(q.now - seconds * 1000)}::float8 THEN ${i}`)
    .join(' ')} ELSE ${q.lengths.length} END`;
  const settled = `(c_ms >= ${p.bind(q.settledFrom)}::float8 AND c_ms < ${p.bind(q.now - q.settleMs)}::float8)`;
  return { cls, settled };
}

function windowGroupOf(r: Record<string, unknown>): WindowGroup {
  return {
    channel: r.channel as string,
    region: r.region as string,
    cls: r.cls as number,
    settled: r.settled as boolean,
    tally: tallyOf(r),
    lastMs: Number(r.last_ms),
  };
}

/** Tallies as known at `now` of the rows created in [fromMs, now), by pair and window class. */
async function readWindowGroups(db: Queryable, q: SignalQuery, fromMs: number): Promise<WindowGroup[]> {
  const p = new Params();
  const observed = observedRows(q.schema, p, q, [[fromMs, q.now]]);
  const { cls, settled } = windowGroupKeys(p, q);
  const sql = `
    SELECT channel, region, ${cls} AS cls, ${settled} AS settled, ${tallyColumns(p, q.now)}
      FROM (${observed}) x
     GROUP BY 1, 2, 3, 4`;
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<Record<string, unknown>>(sql, p.values),
  );
  return rows.map(windowGroupOf);
}

/**
 * readWindowGroups and readBadUsers of the rows created in [fromMs, now), from one scan of them:
 * the live tick's recent part, the bulk of its rows. The rows are materialized once and read by
 * both; each result row says which part it belongs to.
 */
async function readRecentPart(
  db: Queryable,
  q: SignalQuery,
  fromMs: number,
): Promise<{ groups: WindowGroup[]; bad: BadUsers[] }> {
  const p = new Params();
  const observed = observedRows(q.schema, p, q, [[fromMs, q.now]]);
  const { cls, settled } = windowGroupKeys(p, q);
  const tallies = tallyColumnList(p, q.now);
  const sql = `
    WITH o AS MATERIALIZED (${observed})
    SELECT 'group' AS part, channel, region, ${cls} AS cls, ${settled} AS settled,
           ${tallies.map(([alias, expr]) => `${expr} AS ${alias}`).join(',\n           ')},
           NULL::text AS kind, NULL::text[] AS users, NULL::float8[] AS times
      FROM o
     GROUP BY 2, 3, 4, 5
    UNION ALL
    SELECT 'bad', channel, region, NULL, NULL, ${tallies.map(() => 'NULL').join(', ')}, kind, users, times
      FROM (${badUsersSelect('o', p, q)}) b`;
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<Record<string, unknown>>(sql, p.values),
  );
  const groups: WindowGroup[] = [];
  const bad: BadUsers[] = [];
  for (const r of rows) {
    if (r.part === 'group') groups.push(windowGroupOf(r));
    else bad.push(badUsersOf(r));
  }
  return { groups, bad };
}

/**
 * Tallies of settled rows in each span (spans may overlap), by pair and span index. The spans'
 * ends cut time into pieces that no span crosses; each row is counted once, in its piece, and a
 * span's tally is the sum of its pieces (a join of rows to overlapping spans would count a row
 * once per span, several times over on a first tick's hour).
 */
async function readSliceTallies(
  db: Queryable,
  q: SignalQuery,
  spans: readonly Span[],
): Promise<Array<{ channel: string; region: string; slice: number; tally: Tally; lastMs: number }>> {
  const edges = [...new Set(spans.filter(([from, to]) => to > from).flat())].sort((a, b) => a - b);
  if (edges.length < 2) return [];
  const p = new Params();
  const observed = observedRows(q.schema, p, q, spans);
  // width_bucket gives k for edges[k-1] <= c_ms < edges[k].
  const sql = `
    SELECT channel, region, width_bucket(c_ms, ${p.bind(edges)}::float8[]) AS piece, ${tallyColumns(p, q.now)}
      FROM (${observed}) x
     GROUP BY 1, 2, 3`;
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<Record<string, number | string | boolean>>(sql, p.values),
  );
  const sums = new Map<
    string,
    { channel: string; region: string; slice: number; tally: Tally; lastMs: number }
  >();
  for (const r of rows) {
    const k = Number(r.piece);
    const [from, to] = [edges[k - 1]!, edges[k]!];
    const tally = tallyOf(r);
    const lastMs = Number(r.last_ms);
    spans.forEach(([f, t], slice) => {
      if (from < f || to > t) return;
      const key = `${pairKey(r.channel as string, r.region as string)}\u0000${slice}`;
      const sum = sums.get(key);
      if (sum) {
        addTally(sum.tally, tally);
        sum.lastMs = Math.max(sum.lastMs, lastMs);
      } else {
        sums.set(key, {
          channel: r.channel as string,
          region: r.region as string,
          slice,
          tally: copyTally(tally),
          lastMs,
        });
      }
    });
  }
  return [...sums.values()];
}

/** The aggregates of a Tally over grouped observed rows, as [alias, expression]. */
function tallyColumnList(p: Params, nowMs: number): Array<[string, string]> {
  const now = `${p.bind(nowMs)}::float8`;
  return [
    ['created', 'count(*)::int'],
    ['finished', `count(*) FILTER (WHERE fk_ms <= ${now})::int`],
    ['failures', `count(*) FILTER (WHERE fk_ms <= ${now} AND failed)::int`],
    ['timed', `count(*) FILTER (WHERE sp_ms <= ${now})::int`],
    ['slow', `count(*) FILTER (WHERE sp_ms <= ${now} AND slow)::int`],
    ['confirmed', `count(*) FILTER (WHERE lk_ms <= ${now} AND bin IS NOT NULL)::int`],
    ...Array.from({ length: LATENCY_BINS }, (_, i): [string, string] => [
      `b${i}`,
      `count(*) FILTER (WHERE lk_ms <= ${now} AND bin = ${i})::int`,
    ]),
    ['last_ms', 'max(c_ms)'],
  ];
}

function tallyColumns(p: Params, nowMs: number): string {
  return tallyColumnList(p, nowMs)
    .map(([alias, expr]) => `${expr} AS ${alias}`)
    .join(',\n           ');
}

function tallyOf(r: Record<string, unknown>): Tally {
  const tally = emptyTally();
  tally.created = r.created as number;
  tally.finished = r.finished as number;
  tally.failures = r.failures as number;
  tally.timed = r.timed as number;
  tally.slow = r.slow as number;
  tally.confirmed = r.confirmed as number;
  for (let i = 0; i < LATENCY_BINS; i++) tally.latency[i] = r[`b${i}`] as number;
  return tally;
}

interface BadUsers {
  channel: string;
  region: string;
  kind: 'failures' | 'slow';
  users: Array<{ user: string; at: number }>;
}

/**
 * Per pair and kind, the newest bad creation time of up to maxUsers distinct users among the
 * observed rows of `source` (a relation with observedRows' columns).
 */
function badUsersSelect(source: string, p: Params, q: SignalQuery): string {
  const now = p.bind(q.now);
  // Bad rows are few: they are picked out before each is split into its two kinds.
  return `
    SELECT channel, region, kind, array_agg(user_id ORDER BY at DESC, user_id) AS users, array_agg(at ORDER BY at DESC, user_id) AS times
      FROM (
        SELECT channel, region, kind, user_id, at,
               row_number() OVER (PARTITION BY channel, region, kind ORDER BY at DESC, user_id) AS rank
          FROM (
            SELECT channel, region, kind, user_id, max(c_ms) AS at
              FROM (SELECT * FROM ${source}
                     WHERE (fk_ms <= ${now}::float8 AND failed) OR (sp_ms <= ${now}::float8 AND slow)) x
             CROSS JOIN LATERAL (VALUES ('failures', fk_ms <= ${now}::float8 AND failed),
                                        ('slow', sp_ms <= ${now}::float8 AND slow)) k(kind, bad)
             WHERE k.bad
             GROUP BY 1, 2, 3, 4
          ) per_user
      ) ranked
     WHERE rank <= ${p.bind(q.maxUsers)}
     GROUP BY 1, 2, 3`;
}

function badUsersOf(r: Record<string, unknown>): BadUsers {
  const users = r.users as string[];
  const times = r.times as number[];
  return {
    channel: r.channel as string,
    region: r.region as string,
    kind: r.kind as BadUsers['kind'],
    users: users.map((user, i) => ({ user, at: Number(times[i]) })),
  };
}

/** badUsersSelect of the rows created in the spans. */
async function readBadUsers(db: Queryable, q: SignalQuery, spans: readonly Span[]): Promise<BadUsers[]> {
  const p = new Params();
  const observed = observedRows(q.schema, p, q, spans);
  const sql = badUsersSelect(`(${observed}) o`, p, q);
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<Record<string, unknown>>(sql, p.values),
  );
  return rows.map(badUsersOf);
}

function splitKey(key: string): [string, string] {
  const at = key.indexOf(':');
  return [key.slice(0, at), key.slice(at + 1)];
}

/** The most frequent error codes of a pair's failures known at `now` among attempts created in [fromMs, now). */
export async function readTopErrorCodes(
  db: Queryable,
  q: SignalQuery,
  subject: { channel: string; region: string },
  fromMs: number,
  limit = 3,
): Promise<Array<{ code: string; count: number }>> {
  const p = new Params();
  const observed = observedRows(q.schema, p, q, [[fromMs, q.now]]);
  const sql = `
    SELECT error_code AS code, count(*)::int AS count
      FROM (${observed}) x
     WHERE channel = ${p.bind(subject.channel)} AND region = ${p.bind(subject.region)}
       AND failed AND fk_ms <= ${p.bind(q.now)}::float8 AND error_code IS NOT NULL
     GROUP BY error_code
     ORDER BY count(*) DESC, error_code COLLATE "C"
     LIMIT ${Math.max(1, Math.floor(limit))}`;
  const { rows } = await db.query<{ code: string; count: number }>(sql, p.values);
  return rows;
}

/**
 * The aggregate queries group up to an hour of rows per pair. Row estimates after their filters
 * are poor, so the planner would sort; a hash aggregate in memory is several times faster, and
 * JIT compilation costs more than it saves here.
 */
async function withAnalyticsSettings<T>(db: Queryable, work: (client: Queryable) => Promise<T>): Promise<T> {
  // A caller's own client may be inside its transaction: leave its settings alone.
  if (!(db instanceof pg.Pool)) return work(db);
  return inTransaction(db, async (client) => {
    await client.query("SET LOCAL jit = off; SET LOCAL work_mem = '256MB'; SET LOCAL enable_sort = off");
    return work(client);
  });
}

/**
 * Every valid attempt created in [fromMs, toMs), in creation order, streamed with COPY so that a
 * month of history never sits in memory.
 */
export async function* streamAttempts(
  client: ClientBase,
  schema: string,
  fromMs: number,
  toMs: number,
): AsyncGenerator<ObservedAttempt> {
  const p = new Params();
  const where = validRows(schema, p, [[fromMs, toMs]]);
  // COPY takes no parameters: the bound values are inlined as literals.
  const literal = (v: unknown) =>
    v instanceof Date ? `'${v.toISOString()}'::timestamptz` : pg.escapeLiteral(String(v));
  const inlined = where.replace(/\$(\d+)/g, (_, n: string) => literal(p.values[Number(n) - 1]));
  const sql = `COPY (
    SELECT a.channel_id, a.region, a.user_id, a.status,
           floor(date_part('epoch', a.created_at) * 1000)::bigint,
           floor(date_part('epoch', a.finished_at) * 1000)::bigint,
           a.latency_ms, a.error_code
      FROM ${inlined}
     ORDER BY a.created_at, a.id) TO STDOUT`;
  const stream = client.query(copyStreams.to(sql)) as unknown as Readable;
  let rest = '';
  for await (const chunk of stream) {
    const text = rest + (chunk as Buffer).toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) yield parseCopyLine(line);
  }
  if (rest.length > 0) yield parseCopyLine(rest);
}

function parseCopyLine(line: string): ObservedAttempt {
  const f = line.split('\t');
  return {
    channel: copyText(f[0]!),
    region: copyText(f[1]!),
    userId: copyText(f[2]!),
    status: f[3] as ObservedAttempt['status'],
    createdAt: Number(f[4]),
    finishedAt: f[5] === '\\N' ? null : Number(f[5]),
    latencyMs: f[6] === '\\N' ? null : Number(f[6]),
    errorCode: f[7] === '\\N' ? null : copyText(f[7]!),
  };
}

/** Undoes COPY text format's backslash escapes. */
function copyText(value: string): string {
  if (!value.includes('\\')) return value;
  return value.replace(/\\(.)/g, (_, c: string) =>
    c === 't'
      ? '\t'
      : c === 'n'
        ? '\n'
        : c === 'r'
          ? '\r'
          : c === 'b'
            ? '\b'
            : c === 'f'
              ? '\f'
              : c === 'v'
                ? '\v'
                : c,
  );
}

/** Attempts created in the window that break the contract: how many, and the first `limit` of them. */
export async function readInvalidAttempts(
  db: Queryable,
  q: { schema: string; fromMs: number; toMs: number },
  limit = 100,
): Promise<{ count: number; sample: InvalidAttempt[] }> {
  const s = escapeIdentifier(q.schema);
  const sql = `
    SELECT id::text, problem, count(*) OVER ()::int AS total
      FROM (
        SELECT a.id,
               CASE
                 WHEN a.created_at IS NULL THEN 'created_at is null'
                 WHEN a.user_id IS NULL THEN 'user_id is null'
                 WHEN a.channel_id IS NULL THEN 'channel_id is null'
                 WHEN a.region IS NULL OR a.region = '' THEN 'region is null or empty'
                 WHEN a.status IS NULL THEN 'status is null'
                 WHEN a.status NOT IN (${STATUS_LIST}) THEN 'unknown status ' || quote_literal(a.status)
                 WHEN a.channel_id <> ALL (ARRAY(SELECT id FROM ${s}.payment_channels WHERE id IS NOT NULL)) THEN 'unknown channel ' || quote_literal(a.channel_id)
                 WHEN a.latency_ms < 0 THEN 'negative latency_ms'
               END AS problem
          FROM ${s}.payment_attempts a
         WHERE (a.created_at >= $1 AND a.created_at < $2) OR a.created_at IS NULL
      ) checked
     WHERE problem IS NOT NULL
     ORDER BY id
     LIMIT ${Math.max(1, Math.floor(limit))}`;
  const { rows } = await db.query<{ id: string; problem: string; total: number }>(sql, [
    new Date(q.fromMs),
    new Date(q.toMs),
  ]);
  return { count: rows[0]?.total ?? 0, sample: rows.map((r) => ({ id: r.id, reason: r.problem })) };
}
