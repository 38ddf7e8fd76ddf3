// The tick runner: one live pass of any registered detector. It refuses a tick too far ahead of
// the platform database's clock, locks the detector's state row for the tick's transaction, skips
// (and records as stale) a tick not newer than the stored state, then reads the signals, runs the
// pure detector and records its findings through the detector's own functions, saves the new
// state and the run record, all in one transaction. A dry run computes everything in a
// transaction that is rolled back. The detection jobs and `forewarn run <detector>` call this.
import type { z } from 'zod';
import { inTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import {
  recordDetectorRun,
  type CauseChange,
  type RecordedChange,
  type StoredState,
} from '../incidents/store.ts';
import {
  configKeyOf,
  type DetectedChange,
  type DetectionContext,
  type DetectorBaseSettings,
  type DetectorDefinition,
  type Recording,
  type TickResult,
} from './detector.ts';
import { runPass } from './paged.ts';
import { loadState, saveState } from './state.ts';

/**
 * What each process's last committed tick saved, by detector and by the pool it saved through:
 * the next tick on the same pool reuses it while the stored row still has its version, instead of
 * reading and parsing megabytes of state and cache back (another replica's tick changes the version).
 */
const rememberedTicks = new Map<string, WeakMap<Pool, StoredState<unknown, unknown>>>();

/** The platform database's clock: every tick is judged against it, never the process's own. */
export async function platformNow(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: number }>(
    `SELECT floor(date_part('epoch', now()) * 1000)::float8 AS now`,
  );
  return Number(rows[0]!.now);
}

/**
 * Evaluates the tick at `tickAt` (rounded down to the detector's bucket). A tick not newer than
 * the stored state is recorded as stale and changes nothing, so a duplicate or late job is
 * harmless. A tick ahead of the platform database's clock by more than `maxClockSkewSeconds` is
 * refused (unless a dry run), so a replica whose clock runs fast cannot push the state into the
 * future. With `dryRun`, everything is computed and nothing is written.
 */
export async function runTick<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  State,
  Cache,
  Signals,
  Findings,
  Change extends DetectedChange,
  Prepared,
  SubjectSignals,
  SubjectState,
  Tally,
  Fact,
>(
  detector: DetectorDefinition<
    Id,
    S,
    State,
    Cache,
    Signals,
    Findings,
    Change,
    Prepared,
    SubjectSignals,
    SubjectState,
    Tally,
    Fact
  >,
  settings: z.infer<S>,
  ctx: DetectionContext,
  tickAt: number,
  options: { dryRun?: boolean } = {},
): Promise<TickResult<Findings, Change>> {
  const id = detector.id;
  const startedAt = Date.now();
  const now = Math.floor(tickAt / detector.bucketMs) * detector.bucketMs;
  const log = ctx.logger.child({ component: 'detector', detector: id });
  const empty = {
    changes: [],
    recorded: [],
    changeCount: 0,
    eventIds: [],
    findings: null,
    failedSubjects: [],
    opsNotificationIds: [],
  };
  let remembered = rememberedTicks.get(id);
  if (!remembered) rememberedTicks.set(id, (remembered = new WeakMap()));

  const dbNow = await platformNow(ctx.platformDb);
  const aheadMs = now - dbNow;
  if (!options.dryRun && aheadMs > settings.maxClockSkewSeconds * 1000) {
    const detail = `tick ${new Date(now).toISOString()} is ${Math.round(aheadMs / 1000)} s ahead of the platform database's clock (${new Date(dbNow).toISOString()}); at most ${settings.maxClockSkewSeconds} s expected (detectors.${configKeyOf(id)}.maxClockSkewSeconds). Check this replica's clock; a future time needs --dry-run.`;
    log.error(
      {
        tickAt: new Date(now).toISOString(),
        databaseNow: new Date(dbNow).toISOString(),
        code: 'FW_CLOCK_SKEW',
      },
      detail,
    );
    await recordDetectorRun(ctx.db, {
      detector: id,
      tickAt,
      outcome: 'refused',
      startedAt,
      worker: ctx.workerId,
      changes: 0,
      skippedRows: 0,
      detail,
    });
    return { tickAt: now, outcome: 'refused', detail, skippedRows: 0, ...empty };
  }

  const { prepared, skippedRows: preparedSkipped } = detector.prepare
    ? await detector.prepare(ctx, settings)
    : { prepared: undefined as Prepared, skippedRows: 0 };
  const memory = options.dryRun
    ? undefined
    : (remembered.get(ctx.db) as StoredState<State, Cache> | undefined);

  let committed: RecordedChange<Change & CauseChange>[] | undefined;
  const work = async (
    client: PoolClient,
  ): Promise<TickResult<Findings, Change> & { saved?: StoredState<State, Cache> }> => {
    const stored = await loadState<State, Cache>(client, detector, {
      lock: !options.dryRun,
      remembered: memory,
    });
    if (stored.evaluatedAt !== null && stored.evaluatedAt >= now) {
      await recordDetectorRun(client, {
        detector: id,
        tickAt,
        outcome: 'stale',
        startedAt,
        worker: ctx.workerId,
        changes: 0,
        skippedRows: preparedSkipped,
      });
      log.warn(
        { tickAt: new Date(now).toISOString(), evaluatedAt: new Date(stored.evaluatedAt).toISOString() },
        'tick is not newer than the stored state; skipped',
      );
      return { tickAt: now, outcome: 'stale', skippedRows: preparedSkipped, ...empty };
    }
    const previous = detector.upgradeState(stored.state);
    const reading = await detector.read(ctx, {
      settings,
      now,
      evaluatedAt: stored.evaluatedAt,
      cache: stored.cache,
      prepared,
    });
    const skippedRows = preparedSkipped + reading.skippedRows;
    const tick = { signals: reading.signals, previous, settings, now, log };
    const recording = detector.pass
      ? // A paged detector's findings are its pass's (definePagedDetector declares them so).
        ((await runPass(
          client,
          ctx,
          { id, pass: detector.pass },
          { ...tick, dryRun: options.dryRun },
        )) as unknown as Recording<State, Findings, Change>)
      : await detector.record(client, ctx, {
          ...tick,
          findings: detector.detect(reading.signals, previous, settings, now),
        });
    const saved = await saveState(client, detector, stored, {
      state: recording.state,
      cache: reading.cache,
      evaluatedAt: now,
    });
    await recordDetectorRun(client, {
      detector: id,
      tickAt,
      outcome: 'evaluated',
      startedAt,
      worker: ctx.workerId,
      changes: recording.kept.length + (recording.omitted?.changes ?? 0),
      skippedRows,
    });
    return {
      tickAt: now,
      outcome: 'evaluated',
      changes: options.dryRun ? recording.proposed : recording.kept,
      recorded: (committed = recording.recorded),
      changeCount: options.dryRun
        ? recording.proposed.length
        : recording.kept.length + (recording.omitted?.changes ?? 0),
      eventIds: [...recording.recorded.map((r) => r.eventId), ...(recording.omitted?.eventIds ?? [])],
      findings: recording.findings,
      skippedRows,
      failedSubjects: recording.failedSubjects,
      opsNotificationIds: recording.opsNotificationIds,
      saved,
    };
  };

  const { saved, ...result } = options.dryRun
    ? await inDryRun(ctx.db, work)
    : await inTransaction(ctx.db, work);
  // Only once committed: a rolled-back tick must leave nothing remembered.
  if (saved && !options.dryRun) remembered.set(ctx.db, saved);
  if (!options.dryRun && committed) detector.committed?.(log, committed, result.changeCount);
  return result;
}

/** Runs the work in a transaction that is always rolled back. */
async function inDryRun<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await work(client);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
