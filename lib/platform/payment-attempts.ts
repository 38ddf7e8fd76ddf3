// Reading payment attempts from the platform (see docs/platform-contract.md) as 5-second buckets
// of observation time per (channel, region). Live ticks and backtests call the same query, so
// the detector sees the same signals either way.
//
// The observation model: an attempt counts once its outcome is knowable.
//  - failed / timeout: at created_at;
//  - succeeded: at created_at + latency_ms, but at most created_at + slowAfterMs (past that it is
//    known to be slow even before it is confirmed);
//  - pending: at created_at + slowAfterMs, as slow (a young pending attempt is not counted yet).
// A replay of history therefore sees at time t what a live tick at t saw, except that an attempt
// later marked failed/timeout may have been counted as slow-pending live.
import type { BucketRow, PaymentHealthSettings } from '../../detectors/payment-health/index.ts';
import { BUCKET_MS } from '../../detectors/payment-health/index.ts';
import pg from 'pg';
import { escapeIdentifier, inTransaction, type Queryable } from '../db/pool.ts';

export interface AttemptBucketQuery {
  schema: string;
  /** Observation times in [fromMs, toMs). */
  fromMs: number;
  toMs: number;
  slowAfter: SlowAfterRules;
}

/** slowAfterMs by pair, channel and region, most specific first, with a default. */
export interface SlowAfterRules {
  defaultMs: number;
  maxMs: number;
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
  const pairs = pick(overrides.pairs, (key, ms) => {
    const at = key.indexOf(':');
    return { channel: key.slice(0, at), region: key.slice(at + 1), ms };
  });
  const channels = pick(overrides.channels, (channel, ms) => ({ channel, ms }));
  const regions = pick(overrides.regions, (region, ms) => ({ region, ms }));
  const all = [
    settings.slow.slowAfterMs,
    ...pairs.map((p) => p.ms),
    ...channels.map((c) => c.ms),
    ...regions.map((r) => r.ms),
  ];
  return { defaultMs: settings.slow.slowAfterMs, maxMs: Math.max(...all), pairs, channels, regions };
}

export interface InvalidAttempt {
  id: string;
  reason: string;
}

const VALID_STATUSES = ['succeeded', 'failed', 'pending', 'timeout'];

/**
 * The slow threshold of each row, most specific rule first, as a CASE over bound parameters
 * (a handful of overrides at most; cheaper per row than joining rule tables).
 */
function slowAfterCase(rules: SlowAfterRules, params: unknown[]): string {
  const arms: string[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  for (const r of rules.pairs)
    arms.push(
      `WHEN a.channel_id = ${bind(r.channel)} AND a.region = ${bind(r.region)} THEN ${bind(r.ms)}::int`,
    );
  for (const r of rules.channels) arms.push(`WHEN a.channel_id = ${bind(r.channel)} THEN ${bind(r.ms)}::int`);
  for (const r of rules.regions) arms.push(`WHEN a.region = ${bind(r.region)} THEN ${bind(r.ms)}::int`);
  const fallback = `${bind(rules.defaultMs)}::int`;
  return arms.length > 0 ? `CASE ${arms.join(' ')} ELSE ${fallback} END` : fallback;
}

/** Bucket rows for every valid attempt observed in [fromMs, toMs). */
export async function readAttemptBuckets(db: Queryable, q: AttemptBucketQuery): Promise<BucketRow[]> {
  const s = escapeIdentifier(q.schema);
  const params: unknown[] = [new Date(q.fromMs - q.slowAfter.maxMs), new Date(q.toMs), q.fromMs, q.toMs];
  const slowMs = slowAfterCase(q.slowAfter, params);
  // Epoch milliseconds in float8 rather than intervals and numerics: this runs over every row of
  // a replayed day, and the arithmetic is most of its cost.
  const sql = `
    SELECT channel_id AS channel, region, floor(observed_ms / ${BUCKET_MS})::bigint AS bucket,
           count(*)::int AS attempts,
           count(*) FILTER (WHERE failed)::int AS failures,
           count(*) FILTER (WHERE slow)::int AS slow,
           COALESCE(sum(latency_ms) FILTER (WHERE status = 'succeeded'), 0)::float8 AS latency_sum_ms,
           count(latency_ms) FILTER (WHERE status = 'succeeded')::int AS latency_count
      FROM (
        SELECT channel_id, region, status, latency_ms,
               status IN ('failed', 'timeout') AS failed,
               status = 'pending' OR (status = 'succeeded' AND latency_ms > slow_ms) AS slow,
               date_part('epoch', created_at) * 1000 + CASE
                 WHEN status IN ('failed', 'timeout') THEN 0
                 WHEN status = 'succeeded' THEN LEAST(COALESCE(latency_ms, 0), slow_ms)
                 ELSE slow_ms
               END AS observed_ms
          FROM (
            SELECT a.channel_id, a.region, a.status, a.latency_ms, a.created_at, ${slowMs} AS slow_ms
              FROM ${s}.payment_attempts a
             WHERE a.created_at >= $1 AND a.created_at < $2
               AND a.user_id IS NOT NULL
               AND a.region <> ''
               AND a.status IN (${VALID_STATUSES.map((v) => `'${v}'`).join(', ')})
               AND (a.latency_ms IS NULL OR a.latency_ms >= 0)
               AND a.channel_id = ANY (ARRAY(SELECT id FROM ${s}.payment_channels WHERE id IS NOT NULL))
          ) valid
      ) observed
     WHERE observed_ms >= $3::float8 AND observed_ms < $4::float8
     GROUP BY 1, 2, 3`;
  const rows = await withAnalyticsSettings(db, (client) =>
    client.query<{
      channel: string;
      region: string;
      bucket: string;
      attempts: number;
      failures: number;
      slow: number;
      latency_sum_ms: number;
      latency_count: number;
    }>(sql, params),
  );
  return rows.rows.map((r) => ({
    channel: r.channel,
    region: r.region,
    bucket: Number(r.bucket),
    attempts: r.attempts,
    failures: r.failures,
    slow: r.slow,
    latencySumMs: r.latency_sum_ms,
    latencyCount: r.latency_count,
  }));
}

/**
 * The bucket query aggregates up to a day of rows into hundreds of thousands of groups. Row
 * estimates after its filters are poor, so the planner would sort; a hash aggregate in memory is
 * several times faster, and JIT compilation costs more than it saves here.
 */
async function withAnalyticsSettings<T>(db: Queryable, work: (client: Queryable) => Promise<T>): Promise<T> {
  // A caller's own client may be inside its transaction: leave its settings alone.
  if (!(db instanceof pg.Pool)) return work(db);
  return inTransaction(db, async (client) => {
    await client.query("SET LOCAL jit = off; SET LOCAL work_mem = '256MB'; SET LOCAL enable_sort = off");
    return work(client);
  });
}

/** Attempts created in the window that break the contract: how many, and the first `limit` of them. */
export async function readInvalidAttempts(
  db: Queryable,
  q: AttemptBucketQuery,
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
                 WHEN a.status NOT IN (${VALID_STATUSES.map((v) => `'${v}'`).join(', ')}) THEN 'unknown status ' || quote_literal(a.status)
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
