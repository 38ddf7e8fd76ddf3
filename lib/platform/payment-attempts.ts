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
  emptyTally,
  LATENCY_BINS,
  LATENCY_EDGES_MS,
  lookback,
  pairKey,
  thresholdsFor,
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

/** The rows that keep the contract, in [from, to) of creation time (see readInvalidAttempts). */
function validRows(schema: string, p: Params, fromMs: number, toMs: number): string {
  const s = escapeIdentifier(schema);
  return `${s}.payment_attempts a
     WHERE a.created_at >= ${p.bind(new Date(fromMs))} AND a.created_at < ${p.bind(new Date(toMs))}
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
function observedRows(schema: string, p: Params, q: SignalQuery, fromMs: number): string {
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
                  FROM ${validRows(schema, p, fromMs, q.now)}
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

/** The tick's signals for every pair with attempts in the longest window or the settled slice. */
export async function readPairSignals(db: Queryable, q: SignalQuery): Promise<SignalSet> {
  const [groups, bad] = await Promise.all([readWindowGroups(db, q), readBadUsers(db, q)]);
  const longestMs = Math.max(...q.lengths) * 1000;
  const pairs = new Map<string, PairSignals & { windows: Tally[] }>();
  const pairOf = (channel: string, region: string) => {
    const key = pairKey(channel, region);
    let pair = pairs.get(key);
    if (!pair) {
      pair = {
        channel,
        region,
        windows: q.lengths.map(() => emptyTally()),
        settled: emptyTally(),
        badUsers: { failures: [], slow: [] },
        lastCreatedAt: null,
      };
      pairs.set(key, pair);
    }
    return pair;
  };
  for (const g of groups) {
    const pair = pairOf(g.channel, g.region);
    if (g.settled) addInto(pair.settled, g.tally);
    // A group of class i is inside window i and every longer one.
    for (let i = g.cls; i < q.lengths.length; i++) addInto(pair.windows[i]!, g.tally);
    if (g.cls < q.lengths.length && g.lastMs >= q.now - longestMs)
      pair.lastCreatedAt = Math.max(pair.lastCreatedAt ?? g.lastMs, g.lastMs);
  }
  for (const b of bad) {
    const pair = pairOf(b.channel, b.region);
    pair.badUsers = { ...pair.badUsers, [b.kind]: b.times };
  }
  return { now: q.now, lengths: q.lengths, settledFrom: q.settledFrom, pairs };
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

async function readWindowGroups(db: Queryable, q: SignalQuery): Promise<WindowGroup[]> {
  const p = new Params();
  const longestMs = Math.max(...q.lengths) * 1000;
  const fromMs = Math.min(q.now - longestMs, q.settledFrom);
  const observed = observedRows(q.schema, p, q, fromMs);
  const now = p.bind(q.now);
  const cls = `CASE ${q.lengths
    .map((seconds, i) => `WHEN c_ms >= ${p.bind(q.now - seconds * 1000)}::float8 THEN ${i}`)
    .join(' ')} ELSE ${q.lengths.length} END`;
  const settled = `(c_ms >= ${p.bind(q.settledFrom)}::float8 AND c_ms < ${p.bind(q.now - q.settleMs)}::float8)`;
  const bins = Array.from(
    { length: LATENCY_BINS },
    (_, i) => `count(*) FILTER (WHERE lk_ms <= ${now}::float8 AND bin = ${i})::int AS b${i}`,
  ).join(',\n           ');
  const sql = `
    SELECT channel, region, ${cls} AS cls, ${settled} AS settled,
           count(*)::int AS created,
           count(*) FILTER (WHERE fk_ms <= ${now}::float8)::int AS finished,
           count(*) FILTER (WHERE fk_ms <= ${now}::float8 AND failed)::int AS failures,
           count(*) FILTER (WHERE sp_ms <= ${now}::float8)::int AS timed,
           count(*) FILTER (WHERE sp_ms <= ${now}::float8 AND slow)::int AS slow,
           count(*) FILTER (WHERE lk_ms <= ${now}::float8 AND bin IS NOT NULL)::int AS confirmed,
           ${bins},
           max(c_ms) AS last_ms
      FROM (${observed}) x
     GROUP BY 1, 2, 3, 4`;
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<Record<string, number | string | boolean>>(sql, p.values),
  );
  return rows.map((r) => {
    const tally = emptyTally();
    tally.created = r.created as number;
    tally.finished = r.finished as number;
    tally.failures = r.failures as number;
    tally.timed = r.timed as number;
    tally.slow = r.slow as number;
    tally.confirmed = r.confirmed as number;
    for (let i = 0; i < LATENCY_BINS; i++) tally.latency[i] = r[`b${i}`] as number;
    return {
      channel: r.channel as string,
      region: r.region as string,
      cls: r.cls as number,
      settled: r.settled as boolean,
      tally,
      lastMs: Number(r.last_ms),
    };
  });
}

/** Per pair and kind, the newest bad creation time of up to maxUsers distinct users in the longest window. */
async function readBadUsers(
  db: Queryable,
  q: SignalQuery,
): Promise<Array<{ channel: string; region: string; kind: 'failures' | 'slow'; times: number[] }>> {
  const p = new Params();
  const longestMs = Math.max(...q.lengths) * 1000;
  const observed = observedRows(q.schema, p, q, q.now - longestMs);
  const now = p.bind(q.now);
  const sql = `
    SELECT channel, region, kind, array_agg(at ORDER BY at DESC) AS times
      FROM (
        SELECT channel, region, kind, at,
               row_number() OVER (PARTITION BY channel, region, kind ORDER BY at DESC) AS rank
          FROM (
            SELECT channel, region, kind, user_id, max(c_ms) AS at
              FROM (${observed}) x
             CROSS JOIN LATERAL (VALUES ('failures', fk_ms <= ${now}::float8 AND failed),
                                        ('slow', sp_ms <= ${now}::float8 AND slow)) k(kind, bad)
             WHERE k.bad
             GROUP BY 1, 2, 3, 4
          ) per_user
      ) ranked
     WHERE rank <= ${p.bind(q.maxUsers)}
     GROUP BY 1, 2, 3`;
  const { rows } = await withAnalyticsSettings(db, (client) =>
    client.query<{ channel: string; region: string; kind: 'failures' | 'slow'; times: number[] }>(
      sql,
      p.values,
    ),
  );
  return rows.map((r) => ({ ...r, times: r.times.map(Number) }));
}

function addInto(into: Tally, t: Tally): void {
  into.created += t.created;
  into.finished += t.finished;
  into.failures += t.failures;
  into.timed += t.timed;
  into.slow += t.slow;
  into.confirmed += t.confirmed;
  for (let i = 0; i < LATENCY_BINS; i++) into.latency[i]! += t.latency[i]!;
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
  const observed = observedRows(q.schema, p, q, fromMs);
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
  const where = validRows(schema, p, fromMs, toMs);
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

/** The slow threshold of a pair, as the SQL above applies it (for the in-memory builder). */
export function slowAfterFor(settings: PaymentHealthSettings) {
  return (channel: string, region: string) => thresholdsFor(settings, channel, region).slow.slowAfterMs;
}
