// Running totals of the history tables' settled rows, so that a scrape reads what is new, not
// every row ever written: each scrape folds the rows that settled between the last fold and
// SETTLE_MARGIN ago (on PostgreSQL's clock) into totals kept in this process, then reads the
// live rows (not settled, or settled since the fold) and adds them. The first scrape of a process
// folds the whole history once. A transaction stamps its rows with its start (now()) and commits
// later: a fold never passes the oldest transaction open in the database, and keeps a margin
// besides for those it cannot see (pg_stat_activity shows another role's sessions only to
// members of pg_read_all_stats).
import type { Queryable } from '../db/pool.ts';
import {
  mergeHistograms,
  readDetectorRuns,
  readFirstDelivery,
  readNotifications,
  type DetectorRunsRead,
  type NotificationsRead,
  type HistogramRead,
  type Slice,
} from './read.ts';

export const SETTLE_MARGIN_MS = 5 * 60_000;

export interface HistoryRead {
  detectorRuns: DetectorRunsRead;
  notifications: NotificationsRead;
  firstDelivery: HistogramRead[];
}

export class SettledTotals {
  private totals: HistoryRead | undefined;
  /** Rows that settled up to here are in `totals`. */
  private foldedTo: Date | null = null;
  private folding: Promise<void> | undefined;
  private readonly marginMs: () => number;

  /** `marginMs`: SETTLE_MARGIN_MS unless given (tests move it to make rows settle). */
  constructor(options: { marginMs?: () => number } = {}) {
    this.marginMs = options.marginMs ?? (() => SETTLE_MARGIN_MS);
  }

  /** The settled totals with the live rows added: as if every row had been read now. */
  async read(db: Queryable): Promise<HistoryRead> {
    await this.fold(db);
    // Together: a fold finishing meanwhile must not count its span in both.
    const { totals, foldedTo } = this;
    const live = await readHistory(db, { live: { after: foldedTo } });
    return add(totals!, live);
  }

  private async fold(db: Queryable): Promise<void> {
    // Two scrapes at once fold once.
    this.folding ??= (async () => {
      // Never past a transaction still open in this database: its rows, once committed, carry
      // times from its start on (a detector tick's can run for minutes).
      const { rows } = await db.query<{ upto: Date }>(
        `SELECT least(now() - make_interval(secs => $1::float8 / 1000),
                      (SELECT min(xact_start) - interval '1 millisecond' FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL)) AS upto`,
        [this.marginMs()],
      );
      const upTo = rows[0]!.upto;
      if (this.foldedTo !== null && upTo <= this.foldedTo) return;
      const settled = await readHistory(db, { settled: { after: this.foldedTo, upTo } });
      this.totals = this.totals ? add(this.totals, settled) : settled;
      this.foldedTo = upTo;
    })().finally(() => {
      this.folding = undefined;
    });
    await this.folding;
  }
}

async function readHistory(db: Queryable, slice: Slice): Promise<HistoryRead> {
  const [detectorRuns, notifications, firstDelivery] = await Promise.all([
    readDetectorRuns(db, slice),
    readNotifications(db, slice),
    readFirstDelivery(db, slice),
  ]);
  return { detectorRuns, notifications, firstDelivery };
}

function add(a: HistoryRead, b: HistoryRead): HistoryRead {
  return {
    detectorRuns: {
      runs: sumCounts([...a.detectorRuns.runs, ...b.detectorRuns.runs], (r) => [r.detector, r.outcome]),
      durations: mergeHistograms([...a.detectorRuns.durations, ...b.detectorRuns.durations]),
    },
    notifications: {
      byOutcome: sumCounts([...a.notifications.byOutcome, ...b.notifications.byOutcome], (r) => [
        r.kind,
        r.channel,
        r.outcome,
      ]),
      sendLatency: mergeHistograms([...a.notifications.sendLatency, ...b.notifications.sendLatency]),
    },
    firstDelivery: mergeHistograms([...a.firstDelivery, ...b.firstDelivery]),
  };
}

function sumCounts<T extends { n: number }>(rows: readonly T[], key: (row: T) => string[]): T[] {
  const summed = new Map<string, T>();
  for (const row of rows) {
    const k = JSON.stringify(key(row));
    const seen = summed.get(k);
    summed.set(k, seen ? { ...seen, n: seen.n + row.n } : { ...row });
  }
  return [...summed.values()];
}
