// What /metrics reports, read at scrape time from forewarn's database and the queues, so that
// every replica of the HTTP role reports the whole deployment (whichever process ran a tick or
// sent a message) and a restart loses nothing. Counters and histograms count rows that are never
// rewritten once final (a finished run, a sent message), so they only grow. One query per table.
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

/** Every detector run, by outcome, and how long the evaluated ones took. */
export async function readDetectorRuns(db: Queryable): Promise<DetectorRunsRead> {
  const seconds = 'extract(epoch FROM (finished_at - started_at))';
  const { rows } = await db.query<Record<string, unknown> & { detector: string; outcome: string; n: number }>(
    `SELECT detector, outcome, count(*)::int AS n, ${histogramColumns(seconds, BUCKETS.detectorRun)}
       FROM forewarn.detector_runs GROUP BY detector, outcome ORDER BY detector, outcome`,
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
  /** Every message recorded, by what became of it (lib/notifications/outcomes.ts). */
  byOutcome: { kind: string; channel: string; outcome: string; n: number }[];
  /**
   * From the row being written to the channel accepting it, per channel, for messages sent at
   * their first turn: a message held for quiet hours or a cap waits on purpose and is left out.
   */
  sendLatency: HistogramRead[];
}

export async function readNotifications(db: Queryable): Promise<NotificationsRead> {
  const seconds = 'extract(epoch FROM (n.sent_at - n.created_at))';
  const { rows } = await db.query<
    Record<string, unknown> & { kind: string; channel: string; outcome: string; n: number }
  >(
    `SELECT n.kind, n.channel, ${OUTCOME_SQL} AS outcome, count(*)::int AS n,
            ${histogramColumns(seconds, BUCKETS.sendLatency, 'n.sent_at IS NOT NULL AND n.held_reason IS NULL')}
       FROM forewarn.notifications n GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  const latency = new Map<string, HistogramRead>();
  for (const r of rows) {
    if (r.outcome !== 'sent') continue;
    const h = histogramOf(r, BUCKETS.sendLatency, { channel: r.channel });
    const seen = latency.get(r.channel);
    if (!seen) latency.set(r.channel, h);
    else {
      seen.counts = seen.counts.map((c, i) => c + h.counts[i]!);
      seen.sum += h.sum;
      seen.count += h.count;
    }
  }
  return {
    byOutcome: rows.map((r) => ({ kind: r.kind, channel: r.channel, outcome: r.outcome, n: r.n })),
    sendLatency: [...latency.values()],
  };
}

/**
 * From each cause's opening change (its "opened" event) to the first message about it that a
 * channel accepted, per detector. Causes nobody has heard of yet are not counted.
 */
export async function readFirstDelivery(db: Queryable): Promise<HistogramRead[]> {
  const seconds = 'extract(epoch FROM (f.first_sent - e.occurred_at))';
  const { rows } = await db.query<Record<string, unknown> & { detector: string }>(
    `SELECT i.detector, ${histogramColumns(`greatest(${seconds}, 0)`, BUCKETS.firstDelivery)}
       FROM forewarn.incident_events e
       JOIN forewarn.incidents i ON i.id = e.incident_id
       CROSS JOIN LATERAL (
         SELECT min(n.sent_at) AS first_sent FROM forewarn.notifications n
          WHERE n.incident_id = e.incident_id AND n.sent_at IS NOT NULL
       ) f
      WHERE e.type = 'opened' AND f.first_sent IS NOT NULL
      GROUP BY i.detector ORDER BY i.detector`,
  );
  return rows.map((r) => histogramOf(r, BUCKETS.firstDelivery, { detector: r.detector }));
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
