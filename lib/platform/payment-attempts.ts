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
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

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
 * The rows of the window with their slow threshold and a reason when they break the contract.
 * Parameters: $1 from, $2 to (timestamptz), $3 maxSlowMs, $4 default slow ms,
 * $5..$7 pair rules, $8..$9 channel rules, $10..$11 region rules.
 */
function classifiedAttempts(schema: string): string {
  const s = escapeIdentifier(schema);
  return `
    SELECT a.id, a.channel_id, a.region, a.status, a.latency_ms, a.created_at,
           COALESCE(pr.ms, cr.ms, rr.ms, $4::int) AS slow_ms,
           CASE
             WHEN a.user_id IS NULL THEN 'user_id is null'
             WHEN a.channel_id IS NULL THEN 'channel_id is null'
             WHEN a.region IS NULL OR a.region = '' THEN 'region is null or empty'
             WHEN a.status IS NULL THEN 'status is null'
             WHEN a.status <> ALL ('{${VALID_STATUSES.join(',')}}'::text[]) THEN 'unknown status ' || quote_literal(a.status)
             WHEN c.id IS NULL THEN 'unknown channel ' || quote_literal(a.channel_id)
             WHEN a.latency_ms < 0 THEN 'negative latency_ms'
           END AS problem
      FROM ${s}.payment_attempts a
      LEFT JOIN ${s}.payment_channels c ON c.id = a.channel_id
      LEFT JOIN unnest($5::text[], $6::text[], $7::int[]) AS pr(channel, region, ms)
             ON pr.channel = a.channel_id AND pr.region = a.region
      LEFT JOIN unnest($8::text[], $9::int[]) AS cr(channel, ms) ON cr.channel = a.channel_id
      LEFT JOIN unnest($10::text[], $11::int[]) AS rr(region, ms) ON rr.region = a.region
     WHERE a.created_at >= $1::timestamptz - make_interval(secs => $3::int / 1000.0)
       AND a.created_at < $2::timestamptz`;
}

function parameters(q: AttemptBucketQuery): unknown[] {
  const r = q.slowAfter;
  return [
    new Date(q.fromMs),
    new Date(q.toMs),
    r.maxMs,
    r.defaultMs,
    r.pairs.map((p) => p.channel),
    r.pairs.map((p) => p.region),
    r.pairs.map((p) => p.ms),
    r.channels.map((c) => c.channel),
    r.channels.map((c) => c.ms),
    r.regions.map((x) => x.region),
    r.regions.map((x) => x.ms),
  ];
}

/** Bucket rows for every valid attempt observed in [fromMs, toMs), ordered by bucket. */
export async function readAttemptBuckets(db: Queryable, q: AttemptBucketQuery): Promise<BucketRow[]> {
  const sql = `
    WITH classified AS (${classifiedAttempts(q.schema)}),
    observed AS (
      SELECT channel_id, region, status, latency_ms, slow_ms,
             CASE
               WHEN status IN ('failed', 'timeout') THEN created_at
               WHEN status = 'succeeded' THEN created_at + make_interval(secs => LEAST(COALESCE(latency_ms, 0), slow_ms) / 1000.0)
               ELSE created_at + make_interval(secs => slow_ms / 1000.0)
             END AS observed_at
        FROM classified
       WHERE problem IS NULL
    )
    SELECT channel_id AS channel, region,
           floor(extract(epoch FROM observed_at) * 1000 / ${BUCKET_MS})::bigint AS bucket,
           count(*)::int AS attempts,
           count(*) FILTER (WHERE status IN ('failed', 'timeout'))::int AS failures,
           count(*) FILTER (WHERE status = 'pending' OR (status = 'succeeded' AND latency_ms > slow_ms))::int AS slow,
           COALESCE(sum(latency_ms) FILTER (WHERE status = 'succeeded'), 0)::float8 AS latency_sum_ms,
           count(latency_ms) FILTER (WHERE status = 'succeeded')::int AS latency_count
      FROM observed
     WHERE observed_at >= $1::timestamptz AND observed_at < $2::timestamptz
     GROUP BY 1, 2, 3
     ORDER BY 3`;
  const { rows } = await db.query<{
    channel: string;
    region: string;
    bucket: string;
    attempts: number;
    failures: number;
    slow: number;
    latency_sum_ms: number;
    latency_count: number;
  }>(sql, parameters(q));
  return rows.map((r) => ({
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

/** Attempts created in the window that break the contract: how many, and the first `limit` of them. */
export async function readInvalidAttempts(
  db: Queryable,
  q: AttemptBucketQuery,
  limit = 100,
): Promise<{ count: number; sample: InvalidAttempt[] }> {
  const sql = `
    WITH classified AS (${classifiedAttempts(q.schema)})
    SELECT id::text, problem, count(*) OVER ()::int AS total
      FROM classified
     WHERE problem IS NOT NULL AND created_at >= $1::timestamptz
     ORDER BY id
     LIMIT ${Math.max(1, Math.floor(limit))}`;
  const { rows } = await db.query<{ id: string; problem: string; total: number }>(sql, parameters(q));
  return { count: rows[0]?.total ?? 0, sample: rows.map((r) => ({ id: r.id, reason: r.problem })) };
}
