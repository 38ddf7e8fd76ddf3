// What /metrics reports, read at scrape time from forewarn's database and the queues, so that
// every replica of the HTTP role reports the whole deployment (whichever process ran a tick or
// sent a message) and a restart loses nothing. The history tables are read by slice: the rows
// settled in a span of time (final, never rewritten: a finished run, a message sent, withheld or
// failed), which lib/metrics/settled.ts folds into running totals once, and the live rows
// (not settled yet, or settled since), read on every scrape.
import type { Queryable } from '../db/pool.ts';
import { OUTCOME_SQL } from '../notifications/outcomes.ts';
import { QUEUE_NAMES, type Queues } from '../queue/queues.ts';

/** A histogram's cumulative counts: `counts[i]` rows at most `buckets[i]` seconds. */
export interface HistogramRead {
  labels: Record<string, string>;
  counts: number[];
  sum: number;
  count: number;
}

/** Upper bounds (seconds) of each histogram's buckets; +Inf is `count`. */
export const BUCKETS = {
  detectorRun: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  sendLatency: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
  firstDelivery: [15, 30, 60, 120, 300, 600, 1800, 3600],
} as const;

/**
 * Which rows a read covers, by when they settled (`at`, an SQL expression of the row):
 * `settled` those that settled in (after, upTo]; `live` those not settled by `after` (all of
 * them when it is null).
 */
export type Slice = { settled: { after: Date | null; upTo: Date } } | { live: { after: Date | null } };

/** Which rows have settled, as SQL: `final` selects them, `open` the others (so that indexes serve both). */
interface Settling {
  at: string;
  final: string;
  open: string;
}

/** The slice as an SQL condition, its parameters numbered from $`from`. */
function sliceCondition(slice: Slice, rows: Settling, from = 1): { sql: string; params: unknown[] } {
  const { at, final, open } = rows;
  if ('settled' in slice)
    return slice.settled.after === null
      ? { sql: `(${final}) AND ${at} <= $${from}`, params: [slice.settled.upTo] }
      : {
          sql: `(${final}) AND ${at} <= $${from} AND ${at} > $${from + 1}`,
          params: [slice.settled.upTo, slice.settled.after],
        };
  return slice.live.after === null
    ? { sql: 'true', params: [] }
    : { sql: `(${open} OR ${at} > $${from} OR ${at} IS NULL)`, params: [slice.live.after] };
}

/**
 * `count(*) FILTER (...)` per bucket of `seconds` (an SQL expression), then its sum and count, over
 * the rows `only` (an SQL condition) keeps.
 */
function histogramColumns(seconds: string, buckets: readonly number[], only = 'true'): string {
  return [
    ...buckets.map(
      (b, i) => `count(*) FILTER (WHERE ${only} AND ${seconds} <= ${Number(b)})::float8 AS b${i}`,
    ),
    `coalesce(sum(${seconds}) FILTER (WHERE ${only}), 0)::float8 AS sum`,
    `count(*) FILTER (WHERE ${only})::float8 AS count`,
  ].join(', ');
}

function histogramOf(
  row: Record<string, unknown>,
  buckets: readonly number[],
  labels: Record<string, string>,
): HistogramRead {
  return {
    labels,
    counts: buckets.map((_, i) => Number(row[`b${i}`])),
    sum: Number(row.sum),
    count: Number(row.count),
  };
}

export interface DetectorRunsRead {
  runs: { detector: string; outcome: string; n: number }[];
  durations: HistogramRead[];
}

/** Detector runs (a row is final once written), by outcome, and how long they took. */
export async function readDetectorRuns(db: Queryable, slice: Slice): Promise<DetectorRunsRead> {
  const seconds = 'extract(epoch FROM (finished_at - started_at))';
  const where = sliceCondition(slice, { at: 'finished_at', final: 'true', open: 'false' });
  const { rows } = await db.query<Record<string, unknown> & { detector: string; outcome: string; n: number }>(
    `SELECT detector, outcome, count(*)::int AS n, ${histogramColumns(seconds, BUCKETS.detectorRun)}
       FROM forewarn.detector_runs WHERE ${where.sql} GROUP BY detector, outcome ORDER BY detector, outcome`,
    where.params,
  );
  return {
    runs: rows.map((r) => ({ detector: r.detector, outcome: r.outcome, n: r.n })),
    durations: rows.map((r) =>
      histogramOf(r, BUCKETS.detectorRun, { detector: r.detector, outcome: r.outcome }),
    ),
  };
}

/** Causes open now (an incident, a low-stock episode, a spike...), by detector and kind. */
export async function readOpenIncidents(
  db: Queryable,
): Promise<{ detector: string; kind: string; n: number }[]> {
  const { rows } = await db.query<{ detector: string; kind: string; n: number }>(
    `SELECT detector, kind, count(*)::int AS n FROM forewarn.incidents
      WHERE resolved_at IS NULL GROUP BY detector, kind ORDER BY detector, kind`,
  );
  return rows;
}

export interface NotificationsRead {
  /** Messages recorded, by what became of them (lib/notifications/outcomes.ts). */
  byOutcome: { kind: string; channel: string; outcome: string; n: number }[];
  /**
   * From the row being written to the channel accepting it, per channel, for messages sent at
   * their first turn: a message held for quiet hours or a cap waits on purpose and is left out.
   */
  sendLatency: HistogramRead[];
}

/** A message settles when it reaches a final status (sent, withheld or cancelled, failed). */
const MESSAGES: Settling = {
  at: 'n.finished_at',
  final: "n.status IN ('sent', 'cancelled', 'failed')",
  open: "n.status IN ('pending', 'sending')",
};

export async function readNotifications(db: Queryable, slice: Slice): Promise<NotificationsRead> {
  const seconds = 'extract(epoch FROM (n.sent_at - n.created_at))';
  const where = sliceCondition(slice, MESSAGES);
  const { rows } = await db.query<
    Record<string, unknown> & { kind: string; channel: string; outcome: string; n: number }
  >(
    `SELECT n.kind, n.channel, ${OUTCOME_SQL} AS outcome, count(*)::int AS n,
            ${histogramColumns(seconds, BUCKETS.sendLatency, 'n.sent_at IS NOT NULL AND n.held_reason IS NULL')}
       FROM forewarn.notifications n WHERE ${where.sql} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    where.params,
  );
  return {
    byOutcome: rows.map((r) => ({ kind: r.kind, channel: r.channel, outcome: r.outcome, n: r.n })),
    sendLatency: mergeHistograms(
      rows
        .filter((r) => r.outcome === 'sent')
        .map((r) => histogramOf(r, BUCKETS.sendLatency, { channel: r.channel })),
    ),
  };
}

/**
 * From each cause's opening change (its "opened" event) to the first message about it that a
 * channel accepted, per detector; a cause settles with that first message. Causes nobody has
 * heard of yet are not counted.
 */
export async function readFirstDelivery(db: Queryable, slice: Slice): Promise<HistogramRead[]> {
  const seconds = 'extract(epoch FROM (f.first_sent - e.occurred_at))';
  // The causes with a message sent in the slice's span (finished_at is the time it was sent).
  const span = sliceCondition(slice, { at: 'n.finished_at', final: 'true', open: 'false' });
  const first = sliceCondition(
    slice,
    { at: 'f.first_sent', final: 'true', open: 'false' },
    span.params.length + 1,
  );
  const { rows } = await db.query<Record<string, unknown> & { detector: string }>(
    `WITH touched AS (
       SELECT DISTINCT n.incident_id FROM forewarn.notifications n
        WHERE n.status = 'sent' AND n.incident_id IS NOT NULL AND ${span.sql}
     )
     SELECT i.detector, ${histogramColumns(`greatest(${seconds}, 0)`, BUCKETS.firstDelivery)}
       FROM touched t
       JOIN forewarn.incidents i ON i.id = t.incident_id
       JOIN forewarn.incident_events e ON e.incident_id = t.incident_id AND e.type = 'opened'
       CROSS JOIN LATERAL (
         SELECT min(n.sent_at) AS first_sent FROM forewarn.notifications n
          WHERE n.incident_id = t.incident_id AND n.status = 'sent'
       ) f
      WHERE ${first.sql}
      GROUP BY i.detector ORDER BY i.detector`,
    [...span.params, ...first.params],
  );
  return rows.map((r) => histogramOf(r, BUCKETS.firstDelivery, { detector: r.detector }));
}

/** Histograms of the same labels summed into one. */
export function mergeHistograms(reads: readonly HistogramRead[]): HistogramRead[] {
  const merged = new Map<string, HistogramRead>();
  for (const h of reads) {
    const key = JSON.stringify(Object.entries(h.labels).sort());
    const seen = merged.get(key);
    if (!seen) merged.set(key, { labels: h.labels, counts: [...h.counts], sum: h.sum, count: h.count });
    else {
      seen.counts = seen.counts.map((c, i) => c + h.counts[i]!);
      seen.sum += h.sum;
      seen.count += h.count;
    }
  }
  return [...merged.values()];
}

/** The states BullMQ counts, as it names them. */
const JOB_STATES = [
  'waiting',
  'waiting-children',
  'active',
  'delayed',
  'prioritized',
  'completed',
  'failed',
] as const;

/** Jobs in each of forewarn's queues, per state. */
export async function readQueueDepths(
  queues: Queues,
): Promise<{ queue: string; state: string; n: number }[]> {
  const depths = await Promise.all(
    QUEUE_NAMES.map(async (name) => {
      const counts = await queues.get(name).getJobCounts(...JOB_STATES);
      return JOB_STATES.map((state) => ({ queue: name, state, n: counts[state] ?? 0 }));
    }),
  );
  return depths.flat();
}
