// Live payment traffic written the way a platform writes it: each attempt is inserted as `pending`
// when it starts and updated in place to its outcome when it finishes, in batches, on the wall
// clock or an injected one. Settled history is loaded by COPY instead (sim/load.ts).
import { escapeIdentifier } from 'pg';
import type { SimAttempt } from './traffic.ts';

/** What the writer logs through; a pino logger fits. */
export interface LiveWriterLogger {
  warn(bindings: Record<string, unknown>, message: string): void;
}

/** Where the writer sends its statements: a pg Pool or Client. */
export interface LiveWriterDb {
  query(text: string, values: unknown[]): Promise<{ rowCount: number | null }>;
}

export interface LiveWriterOptions {
  db: LiveWriterDb;
  schema: string;
  /** In created order, as generateAttempts yields them; read lazily, only as far as the clock has come. */
  attempts: Iterable<SimAttempt>;
  logger: LiveWriterLogger;
  /** Epoch milliseconds; defaults to Date.now. */
  now?: () => number;
  /** Flush on a timer this often (default 1000 ms); null: only on flush() and stop(). */
  flushEveryMs?: number | null;
}

export interface LiveWriterCounts {
  /** Rows inserted as pending. */
  inserted: number;
  /** Rows updated in place to their final status. */
  finished: number;
  /** Inserted rows not updated yet: stuck attempts, and those whose finishedAt has not come. */
  pending: number;
  /** Attempts given up on after MAX_TRIES failed writes: never inserted, or never updated. */
  dropped: number;
  /** Statements that failed (each logged). */
  errors: number;
}

export interface LiveWriter {
  /** Inserts the attempts created by now() and updates those finished by then; never rejects. */
  flush(): Promise<LiveWriterCounts>;
  /**
   * Stops the timer, flushes what is due and returns the final counts; attempts still waiting to
   * be inserted then are dropped, rows still waiting for their update stay pending.
   */
  stop(): Promise<LiveWriterCounts>;
  counts(): LiveWriterCounts;
}

/** A failed statement is retried with the next flush, this many times in all, then given up. */
export const MAX_TRIES = 3;

interface Entry {
  attempt: SimAttempt;
  tries: number;
}

/**
 * Starts writing `attempts` as live traffic. Each flush sends at most one multi-row INSERT (the
 * attempts created since the last flush, as pending) and then one UPDATE ... FROM unnest (the
 * attempts whose finishedAt has come), so an attempt created and finished between two flushes is
 * inserted and updated by the same flush. A failed statement is logged and retried with the next
 * flush; the writer keeps going either way.
 */
export function startLiveWriter(options: LiveWriterOptions): LiveWriter {
  const { db, logger } = options;
  const s = escapeIdentifier(options.schema);
  const now = options.now ?? Date.now;
  const flushEveryMs = options.flushEveryMs === undefined ? 1_000 : options.flushEveryMs;
  if (flushEveryMs !== null && !(Number.isFinite(flushEveryMs) && flushEveryMs > 0)) {
    throw new RangeError(
      `startLiveWriter: flushEveryMs: expected a positive number of milliseconds or null, got ${flushEveryMs}`,
    );
  }

  const source = options.attempts[Symbol.iterator]();
  let next: IteratorResult<SimAttempt, unknown> | null = null;
  let toInsert: Entry[] = [];
  const finishing = new FinishQueue();
  let toUpdate: Entry[] = [];
  let stuck = 0;
  const totals = { inserted: 0, finished: 0, dropped: 0, errors: 0 };

  const counts = (): LiveWriterCounts => ({
    ...totals,
    pending: stuck + finishing.size + toUpdate.length,
  });

  /** Moves the attempts created by `t` from the source to the insert queue. */
  const take = (t: number) => {
    try {
      next ??= source.next();
      while (!next.done && next.value.createdAt <= t) {
        toInsert.push({ attempt: next.value, tries: 0 });
        next = source.next();
      }
    } catch (error) {
      // A generator that threw is finished: write what it gave, expect nothing more.
      logger.warn({ err: error }, 'simulated traffic stopped: its source failed');
      next = { done: true, value: undefined };
    }
  };

  /** Entries whose write failed: those with tries left are kept, the others counted as dropped. */
  const retryOrDrop = (entries: Entry[], error: unknown, what: string): Entry[] => {
    totals.errors += 1;
    const kept: Entry[] = [];
    for (const e of entries) if (++e.tries < MAX_TRIES) kept.push(e);
    totals.dropped += entries.length - kept.length;
    logger.warn(
      { err: error, rows: entries.length, retried: kept.length, dropped: entries.length - kept.length },
      `could not ${what} simulated payment attempts`,
    );
    return kept;
  };

  const insert = async () => {
    if (toInsert.length === 0) return;
    const batch = toInsert;
    toInsert = [];
    const rows = batch.map((e) => e.attempt);
    try {
      await db.query(
        `INSERT INTO ${s}.payment_attempts
           (id, user_id, channel_id, region, status, error_code, latency_ms, created_at, finished_at)
         SELECT id, user_id, channel_id, region, 'pending', NULL, NULL, created_at, NULL
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                AS t(id, user_id, channel_id, region, created_at)`,
        [
          rows.map((a) => a.id),
          rows.map((a) => a.userId),
          rows.map((a) => a.channelId),
          rows.map((a) => a.region),
          rows.map((a) => iso(a.createdAt)),
        ],
      );
    } catch (error) {
      toInsert = retryOrDrop(batch, error, 'insert');
      return;
    }
    totals.inserted += rows.length;
    for (const a of rows) {
      if (a.finishedAt === null) stuck += 1;
      else finishing.push(a);
    }
  };

  const update = async (t: number) => {
    const batch = toUpdate;
    toUpdate = [];
    for (const a of finishing.popUntil(t)) batch.push({ attempt: a, tries: 0 });
    if (batch.length === 0) return;
    const rows = batch.map((e) => e.attempt);
    let updated: number;
    try {
      const result = await db.query(
        `UPDATE ${s}.payment_attempts AS a
            SET status = f.status, error_code = f.error_code, latency_ms = f.latency_ms,
                finished_at = f.finished_at
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
                AS f(id, status, error_code, latency_ms, finished_at)
          WHERE a.id = f.id`,
        [
          rows.map((a) => a.id),
          rows.map((a) => a.status),
          rows.map((a) => a.errorCode),
          rows.map((a) => a.latencyMs),
          rows.map((a) => iso(a.finishedAt!)),
        ],
      );
      updated = result.rowCount ?? rows.length;
    } catch (error) {
      toUpdate = retryOrDrop(batch, error, 'update');
      return;
    }
    totals.finished += updated;
    if (updated < rows.length) {
      // Someone deleted rows under the writer: nothing to retry, but say so.
      totals.dropped += rows.length - updated;
      logger.warn({ rows: rows.length, updated }, 'simulated payment attempts to update were not found');
    }
  };

  let chain: Promise<unknown> = Promise.resolve();
  const flush = (): Promise<LiveWriterCounts> => {
    const run = chain.then(async () => {
      const t = now();
      take(t);
      await insert();
      await update(t);
      return counts();
    });
    // Nothing in a flush throws (failures are logged and counted), but a broken logger must not
    // wedge every later flush behind a rejected one.
    chain = run.catch(() => undefined);
    return run;
  };

  let timer: NodeJS.Timeout | undefined;
  let stopping: Promise<LiveWriterCounts> | undefined;
  const schedule = () => {
    if (flushEveryMs === null || stopping) return;
    timer = setTimeout(() => void flush().then(schedule, schedule), flushEveryMs);
  };
  schedule();

  return {
    flush,
    counts,
    stop() {
      stopping ??= (async () => {
        clearTimeout(timer);
        await flush();
        // Inserts that failed even now will not be tried again.
        totals.dropped += toInsert.length;
        toInsert = [];
        return counts();
      })();
      return stopping;
    },
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Inserted attempts by finishedAt, earliest first (a binary min-heap; ties by id). */
class FinishQueue {
  private readonly heap: SimAttempt[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(a: SimAttempt): void {
    const heap = this.heap;
    heap.push(a);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!earlier(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Removes and returns the attempts with finishedAt <= t, earliest first. */
  popUntil(t: number): SimAttempt[] {
    const due: SimAttempt[] = [];
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.finishedAt! <= t) {
      due.push(heap[0]!);
      const last = heap.pop()!;
      if (heap.length === 0) break;
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let least = i;
        if (left < heap.length && earlier(heap[left]!, heap[least]!)) least = left;
        if (right < heap.length && earlier(heap[right]!, heap[least]!)) least = right;
        if (least === i) break;
        [heap[i], heap[least]] = [heap[least]!, heap[i]!];
        i = least;
      }
    }
    return due;
  }
}

function earlier(a: SimAttempt, b: SimAttempt): boolean {
  return a.finishedAt! < b.finishedAt! || (a.finishedAt === b.finishedAt && a.id < b.id);
}
