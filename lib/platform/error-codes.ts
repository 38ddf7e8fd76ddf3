// Reading error codes from the platform's payment_attempts (see docs/platform-contract.md) for
// the error-spikes detector. An error code is an occurrence once its row is final and failed or
// timed out: rows are written `pending` and updated in place, so a live tick reads the rows
// created since the last tick's settle horizon began, as they are now. Rows created before the
// horizon are taken as they stand (a row still pending then never counts) and join each code's
// stored counts for good; younger rows are read again every tick and count only for that tick.
// An occurrence counts from its row's creation time, once its finish (finished_at, or created_at
// for a final row without it) is not after the tick.
import { escapeIdentifier, type Queryable } from '../db/pool.ts';
import type { PlacedOccurrences, TickOccurrences } from '../../detectors/error-spikes/index.ts';

/** What a tick reads: rows created in [fromMs, nowMs); those from settledTo on are the recent part. */
export interface ErrorCodeQuery {
  schema: string;
  fromMs: number;
  settledTo: number;
  nowMs: number;
  /** Bucket edges (see bucketStartFor): minutes from surgeFrom, hours from windowFrom, days before. */
  surgeFrom: number;
  windowFrom: number;
  /** Example ids are read from rows created from here on (the count window). */
  examplesFrom: number;
  examplesPerCode: number;
}

/**
 * The rows that keep the contract and carry an error code known at the tick, created in
 * [$1, $2), as the payment-health reader judges validity (readInvalidAttempts reports the others).
 * $3 is the tick. Columns: code, c_ms (creation, epoch ms), channel, region, id.
 */
function occurrenceRows(schema: string): string {
  const s = escapeIdentifier(schema);
  return `
    SELECT a.error_code AS code, a.channel_id AS channel, a.region, a.id,
           floor(date_part('epoch', a.created_at) * 1000)::float8 AS c_ms
      FROM ${s}.payment_attempts a
     WHERE a.created_at >= $1 AND a.created_at < $2
       AND a.status IN ('failed', 'timeout')
       AND a.error_code IS NOT NULL AND a.error_code <> ''
       AND GREATEST(a.created_at, COALESCE(a.finished_at, a.created_at)) <= $3
       AND a.user_id IS NOT NULL AND a.region IS NOT NULL AND a.region <> ''
       AND (a.latency_ms IS NULL OR a.latency_ms >= 0)
       AND a.channel_id = ANY (ARRAY(SELECT id FROM ${s}.payment_channels WHERE id IS NOT NULL))`;
}

/**
 * Occurrences by code, part (settled or recent), creation bucket, channel and region: one
 * aggregate over the rows read. The bucket is a minute from surgeFrom on, an hour from windowFrom
 * on and a day before (bucketStartFor), so a first tick's weeks of history stay a few rows a code.
 */
export async function readErrorOccurrences(
  db: Queryable,
  q: ErrorCodeQuery,
): Promise<{ settled: PlacedOccurrences[]; recent: PlacedOccurrences[] }> {
  const sql = `
    SELECT code, c_ms >= $4::float8 AS recent,
           CASE WHEN c_ms >= $5::float8 THEN floor(c_ms / 60000) * 60000
                WHEN c_ms >= $6::float8 THEN floor(c_ms / 3600000) * 3600000
                ELSE floor(c_ms / 86400000) * 86400000 END AS at,
           channel, region, count(*)::int AS n
      FROM (${occurrenceRows(q.schema)}) o
     GROUP BY 1, 2, 3, 4, 5`;
  const { rows } = await db.query<{
    code: string;
    recent: boolean;
    at: number;
    channel: string;
    region: string;
    n: number;
  }>(sql, [new Date(q.fromMs), new Date(q.nowMs), new Date(q.nowMs), q.settledTo, q.surgeFrom, q.windowFrom]);
  const settled: PlacedOccurrences[] = [];
  const recent: PlacedOccurrences[] = [];
  for (const r of rows) {
    const o = { code: r.code, at: Number(r.at), channel: r.channel, region: r.region, n: r.n };
    (r.recent ? recent : settled).push(o);
  }
  return { settled, recent };
}

/** The newest attempt ids (highest first) of each code, up to examplesPerCode, per part. */
export async function readErrorExamples(
  db: Queryable,
  q: ErrorCodeQuery,
): Promise<{ settled: TickOccurrences['examples']; recent: TickOccurrences['examples'] }> {
  const sql = `
    SELECT code, recent, array_agg(id::text ORDER BY id DESC) AS ids
      FROM (
        SELECT code, id, c_ms >= $4::float8 AS recent,
               row_number() OVER (PARTITION BY code, c_ms >= $4::float8 ORDER BY id DESC) AS rank
          FROM (${occurrenceRows(q.schema)}) o
      ) ranked
     WHERE rank <= $5
     GROUP BY 1, 2`;
  const { rows } = await db.query<{ code: string; recent: boolean; ids: string[] }>(sql, [
    new Date(Math.max(q.fromMs, q.examplesFrom)),
    new Date(q.nowMs),
    new Date(q.nowMs),
    q.settledTo,
    Math.max(1, Math.floor(q.examplesPerCode)),
  ]);
  const settled: Record<string, string[]> = {};
  const recent: Record<string, string[]> = {};
  for (const r of rows) (r.recent ? recent : settled)[r.code] = r.ids;
  return { settled, recent };
}

/** When the platform's first attempt was created (null: it has none), from the created_at index. */
export async function readFirstAttemptAt(db: Queryable, schema: string): Promise<number | null> {
  const { rows } = await db.query<{ first: number | null }>(
    `SELECT floor(date_part('epoch', min(created_at)) * 1000)::float8 AS first
       FROM ${escapeIdentifier(schema)}.payment_attempts`,
  );
  return rows[0]?.first ?? null;
}
