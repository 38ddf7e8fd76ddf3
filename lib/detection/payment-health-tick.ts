// One live payment-health pass: read the tick's signals from the platform, run the pure detector
// against the stored state, and write incidents, outbox events and the new state in one
// transaction. The detector job and `forewarn run payment-health` both call this.
import {
  BUCKET_MS,
  DETECTOR,
  detectPaymentHealth,
  initialPaymentHealthState,
  lookback,
  pairKey,
  settledFromFor,
  upgradeState,
  type IncidentChange,
  type PaymentHealthFindings,
  type PaymentHealthState,
} from '../../detectors/payment-health/index.ts';
import type { Config } from '../config/schema.ts';
import { inTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import {
  readDetectorState,
  recordDetectorRun,
  recordIncidentChange,
  saveDetectorState,
  type RecordedChange,
  type StoredState,
} from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import {
  readInvalidAttempts,
  readPairSignalsIncremental,
  readTopErrorCodes,
  signalQueryFor,
  type WindowCache,
} from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import type { InvalidRowReporter } from '../platform/invalid-rows.ts';
import { feedAlertDrafts } from '../notifications/feed-alerts.ts';
import { insertNotifications } from '../notifications/store.ts';

/**
 * What each process's last committed tick saved, by the pool it saved through: the next tick on
 * the same pool reuses it while the stored row still has its version, instead of reading and
 * parsing megabytes of state and cache back (another replica's tick changes the version).
 */
const rememberedTicks = new WeakMap<Pool, StoredState<PaymentHealthState, WindowCache>>();

export interface DetectionContext {
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  config: () => Config;
  logger: Logger;
  workerId: string;
  invalidRows: InvalidRowReporter;
}

export interface TickResult {
  tickAt: number;
  outcome: 'evaluated' | 'stale' | 'refused';
  /** Why a tick was refused. */
  detail?: string;
  changes: IncidentChange[];
  recorded: RecordedChange[];
  findings: PaymentHealthFindings | null;
  skippedRows: number;
  /** Pairs whose change could not be recorded; they are tried again next tick. */
  failedPairs: string[];
  /** Ops notifications the tick recorded itself (a data-feed fault), for the delivery queue. */
  opsNotificationIds: string[];
}

/** The platform database's clock: every tick is judged against it, never the process's own. */
export async function platformNow(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now: number }>(
    `SELECT floor(date_part('epoch', now()) * 1000)::float8 AS now`,
  );
  return Number(rows[0]!.now);
}

/**
 * Evaluates the tick at `tickAt` (rounded down to a bucket). A tick not newer than the stored
 * state is recorded as stale and changes nothing, so a duplicate or late job is harmless. A tick
 * ahead of the platform database's clock by more than `maxClockSkewSeconds` is refused (unless a
 * dry run), so a replica whose clock runs fast cannot push the state into the future.
 * With `dryRun`, everything is computed and nothing is written.
 */
export async function runPaymentHealthTick(
  ctx: DetectionContext,
  tickAt: number,
  options: { dryRun?: boolean } = {},
): Promise<TickResult> {
  const startedAt = Date.now();
  const now = Math.floor(tickAt / BUCKET_MS) * BUCKET_MS;
  const config = ctx.config().detectors.paymentHealth;
  const settings = config;
  const log = ctx.logger.child({ component: 'detector', detector: DETECTOR });
  const empty = { changes: [], recorded: [], findings: null, failedPairs: [], opsNotificationIds: [] };

  const dbNow = await platformNow(ctx.platformDb);
  const aheadMs = now - dbNow;
  if (!options.dryRun && aheadMs > config.maxClockSkewSeconds * 1000) {
    const detail = `tick ${new Date(now).toISOString()} is ${Math.round(aheadMs / 1000)} s ahead of the platform database's clock (${new Date(dbNow).toISOString()}); at most ${config.maxClockSkewSeconds} s expected (detectors.paymentHealth.maxClockSkewSeconds). Check this replica's clock; a future time needs --dry-run.`;
    log.error(
      {
        tickAt: new Date(now).toISOString(),
        databaseNow: new Date(dbNow).toISOString(),
        code: 'FW_CLOCK_SKEW',
      },
      detail,
    );
    await recordDetectorRun(ctx.db, {
      detector: DETECTOR,
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

  const look = lookback(settings);
  const channelsRead = await readPaymentChannels(ctx.platformDb, ctx.platformSchema);
  ctx.invalidRows.report('payment_channels', channelsRead.invalid, channelsRead.invalid.length);
  const memory = options.dryRun ? undefined : rememberedTicks.get(ctx.db);

  const work = async (
    client: PoolClient,
  ): Promise<TickResult & { saved?: StoredState<PaymentHealthState, WindowCache> }> => {
    const stored = await readDetectorState<PaymentHealthState, WindowCache>(
      client,
      DETECTOR,
      initialPaymentHealthState(),
      { lock: !options.dryRun, remembered: memory },
    );
    if (stored.evaluatedAt !== null && stored.evaluatedAt >= now) {
      await recordDetectorRun(client, {
        detector: DETECTOR,
        tickAt,
        outcome: 'stale',
        startedAt,
        worker: ctx.workerId,
        changes: 0,
        skippedRows: channelsRead.invalid.length,
      });
      log.warn(
        { tickAt: new Date(now).toISOString(), evaluatedAt: new Date(stored.evaluatedAt).toISOString() },
        'tick is not newer than the stored state; skipped',
      );
      return { tickAt: now, outcome: 'stale', skippedRows: channelsRead.invalid.length, ...empty };
    }
    const previous = upgradeState(stored.state);
    const query = signalQueryFor(
      settings,
      ctx.platformSchema,
      now,
      settledFromFor(stored.evaluatedAt, now, look.settleMs, look.windowMs),
    );
    // A cache left by an older tick is only usable when it matches the stored state's tick.
    const evaluatedAt = stored.evaluatedAt;
    const cached = stored.cache;
    const usable =
      cached && evaluatedAt !== null && cached.settledTo === evaluatedAt - look.settleMs ? cached : null;
    // The contract check covers the rows this tick reads as they are now: everything created
    // since the last tick's settled part began (older rows were checked by earlier ticks and no
    // longer change what the detector sees), or the whole lookback without a cache.
    const [{ set, cache }, invalid] = await Promise.all([
      readPairSignalsIncremental(ctx.platformDb, query, usable),
      readInvalidAttempts(ctx.platformDb, {
        schema: ctx.platformSchema,
        fromMs: usable ? usable.settledTo : now - look.windowMs,
        toMs: now,
      }),
    ]);
    ctx.invalidRows.report('payment_attempts', invalid.sample, invalid.count);
    const skippedRows = invalid.count + channelsRead.invalid.length;
    const findings = detectPaymentHealth({ set, channels: channelsRead.channels }, previous, settings, now);
    if (findings.feed.started)
      log.error(
        { code: 'FW_FEED_SILENT' },
        'most payment pairs went silent at once: the platform data feed looks stalled; per-pair silence is not resolved meanwhile',
      );
    if (findings.feed.ended) log.info('payment attempts are arriving again after a data-feed silence');
    const openIncidents = Object.values(findings.state.pairs).reduce(
      (n, p) => n + (p.kinds.failures.open ? 1 : 0) + (p.kinds.slow.open ? 1 : 0),
      0,
    );
    const opsNotificationIds = await insertNotifications(
      client,
      feedAlertDrafts(ctx.config().notifications, DETECTOR, findings.feed, now, openIncidents),
    );

    const recorded: RecordedChange[] = [];
    const failedPairs: string[] = [];
    for (const change of findings.changes) {
      const key = pairKey(change.subject.channel, change.subject.region);
      if (failedPairs.includes(key)) continue;
      try {
        if (change.type === 'opened') {
          change.evidence.topErrorCodes = await readTopErrorCodes(
            ctx.platformDb,
            query,
            change.subject,
            now - change.evidence.windowSeconds * 1000,
          );
        }
        // A savepoint per change: one pair that cannot be recorded leaves the others recorded.
        await client.query('SAVEPOINT pair_change');
        recorded.push(await recordIncidentChange(client, change));
        await client.query('RELEASE SAVEPOINT pair_change');
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT pair_change').catch(() => undefined);
        failedPairs.push(key);
        log.error(
          {
            err: error,
            channel: change.subject.channel,
            region: change.subject.region,
            change: change.type,
            kind: change.kind,
          },
          'could not record an incident change; the pair keeps its previous state and is tried again next tick',
        );
      }
    }
    const state = keepPrevious(findings.state, previous, failedPairs);
    const kept = recorded.map((r) => r.change);
    const saved = await saveDetectorState(client, DETECTOR, { state, cache, evaluatedAt: now });
    await recordDetectorRun(client, {
      detector: DETECTOR,
      tickAt,
      outcome: 'evaluated',
      startedAt,
      worker: ctx.workerId,
      changes: kept.length,
      skippedRows,
    });
    return {
      tickAt: now,
      outcome: 'evaluated',
      changes: options.dryRun ? findings.changes : kept,
      recorded,
      findings: { ...findings, state },
      skippedRows,
      failedPairs,
      opsNotificationIds,
      saved,
    };
  };

  const { saved, ...result } = options.dryRun
    ? await inDryRun(ctx.db, work)
    : await inTransaction(ctx.db, work);
  // Only once committed: a rolled-back tick must leave nothing remembered.
  if (saved && !options.dryRun) rememberedTicks.set(ctx.db, saved);
  if (!options.dryRun) {
    for (const r of result.recorded) {
      log.info(
        {
          incidentId: r.incidentId,
          change: r.change.type,
          kind: r.change.kind,
          channel: r.change.subject.channel,
          region: r.change.subject.region,
          ...(r.change.type === 'resolved' ? { reason: r.change.reason } : {}),
          evidence: r.change.evidence,
          backupChannels: r.change.backupChannels,
        },
        `incident ${r.change.type}`,
      );
    }
  }
  return result;
}

/** The new state, except that pairs whose change failed keep their previous state. */
function keepPrevious(
  next: PaymentHealthState,
  previous: PaymentHealthState,
  keys: string[],
): PaymentHealthState {
  if (keys.length === 0) return next;
  const pairs = { ...next.pairs };
  for (const key of keys) {
    const before = previous.pairs[key];
    if (before) pairs[key] = before;
    else delete pairs[key];
  }
  return { ...next, pairs };
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
