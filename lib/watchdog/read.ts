// What "watching the watcher" reads: when each detector last finished a tick, and how fresh the
// platform's data is. Read by /metrics, /readyz and the watchdog alert alike, from the databases
// (not from this process), so that every replica reports the same, whichever one ran the tick.
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

export interface LastTick {
  detector: string;
  /** Epoch ms the newest tick (by tick time) finished, any outcome; null: it never ran. */
  finishedAt: number | null;
  /** That tick's outcome ('evaluated', 'stale' or 'refused'). */
  outcome: string | null;
}

/** In the order asked; one index lookup per detector (detector_runs_tick), not a scan of the run history. */
export async function readLastTicks(db: Queryable, detectors: readonly string[]): Promise<LastTick[]> {
  if (detectors.length === 0) return [];
  const { rows } = await db.query<{ detector: string; finished_at: Date | null; outcome: string | null }>(
    `SELECT d.detector, r.finished_at, r.outcome
       FROM unnest($1::text[]) WITH ORDINALITY AS d(detector, position)
       LEFT JOIN LATERAL (
         SELECT finished_at, outcome FROM forewarn.detector_runs
          WHERE detector = d.detector ORDER BY tick_at DESC LIMIT 1
       ) r ON true
      ORDER BY d.position`,
    [detectors],
  );
  return rows.map((r) => ({
    detector: r.detector,
    finishedAt: r.finished_at === null ? null : r.finished_at.getTime(),
    outcome: r.outcome,
  }));
}

export interface DataHighWater {
  /** The newest payment attempt's created_at (epoch ms); null: the table is empty. */
  newestAt: number | null;
  /** The platform database's clock at the same moment (epoch ms): lag is measured against it. */
  platformNow: number;
}

/**
 * The platform data's high-water mark: the newest payment attempt (created_at is indexed), on the
 * platform database's own clock, so that a replica whose clock runs ahead sees no false lag.
 */
export async function readDataHighWater(platformDb: Queryable, schema: string): Promise<DataHighWater> {
  const { rows } = await platformDb.query<{ newest: Date | null; now: Date }>(
    `SELECT (SELECT max(created_at) FROM ${escapeIdentifier(schema)}.payment_attempts) AS newest, now() AS now`,
  );
  const row = rows[0]!;
  return { newestAt: row.newest === null ? null : row.newest.getTime(), platformNow: row.now.getTime() };
}
