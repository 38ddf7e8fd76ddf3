// One live payment-health pass: read the platform's recent attempts, run the pure detector
// against the stored state, and write incidents, outbox events and the new state in one
// transaction. The detector job and `forewarn run payment-health` both call this.
import {
  BUCKET_MS,
  buildSeries,
  DETECTOR,
  detectPaymentHealth,
  initialPaymentHealthState,
  lookback,
  type IncidentChange,
  type PaymentHealthFindings,
  type PaymentHealthState,
} from '../../detectors/payment-health/index.ts';
import type { Config } from '../config/schema.ts';
import { inTransaction, type Pool, type PoolClient } from '../db/pool.ts';
import {
  readDetectorState,
  recordDetectorRun,
  recordIncidentChange,
  saveDetectorState,
  type RecordedChange,
} from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import { readAttemptBuckets, readInvalidAttempts, slowAfterRules } from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import type { InvalidRowReporter } from '../platform/invalid-rows.ts';

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
  outcome: 'evaluated' | 'stale';
  changes: IncidentChange[];
  recorded: RecordedChange[];
  findings: PaymentHealthFindings | null;
  skippedRows: number;
}

/**
 * Evaluates the tick at `tickAt` (rounded down to a bucket). A tick not newer than the stored
 * state is recorded as stale and changes nothing, so a duplicate or late job is harmless.
 * With `dryRun`, everything is computed and nothing is written.
 */
export async function runPaymentHealthTick(
  ctx: DetectionContext,
  tickAt: number,
  options: { dryRun?: boolean } = {},
): Promise<TickResult> {
  const startedAt = Date.now();
  const now = Math.floor(tickAt / BUCKET_MS) * BUCKET_MS;
  const settings = ctx.config().detectors.paymentHealth;
  const { windowMs } = lookback(settings);
  const query = {
    schema: ctx.platformSchema,
    fromMs: now - windowMs,
    toMs: now,
    slowAfter: slowAfterRules(settings),
  };
  const [rows, channelsRead, invalid] = await Promise.all([
    readAttemptBuckets(ctx.platformDb, query),
    readPaymentChannels(ctx.platformDb, ctx.platformSchema),
    readInvalidAttempts(ctx.platformDb, query),
  ]);
  ctx.invalidRows.report('payment_attempts', invalid.sample, invalid.count);
  ctx.invalidRows.report('payment_channels', channelsRead.invalid, channelsRead.invalid.length);
  const skippedRows = invalid.count + channelsRead.invalid.length;
  const series = buildSeries(rows, query.fromMs, query.toMs);
  const log = ctx.logger.child({ component: 'detector', detector: DETECTOR });

  const work = async (client: PoolClient): Promise<TickResult> => {
    const stored = await readDetectorState<PaymentHealthState>(
      client,
      DETECTOR,
      initialPaymentHealthState(),
      {
        lock: !options.dryRun,
      },
    );
    if (stored.evaluatedAt !== null && stored.evaluatedAt >= now) {
      await recordDetectorRun(client, {
        detector: DETECTOR,
        tickAt,
        outcome: 'stale',
        startedAt,
        worker: ctx.workerId,
        changes: 0,
        skippedRows,
      });
      log.warn(
        { tickAt: new Date(now).toISOString(), evaluatedAt: new Date(stored.evaluatedAt).toISOString() },
        'tick is not newer than the stored state; skipped',
      );
      return { tickAt: now, outcome: 'stale', changes: [], recorded: [], findings: null, skippedRows };
    }
    const findings = detectPaymentHealth(
      { series, channels: channelsRead.channels },
      stored.state,
      settings,
      now,
    );
    const recorded: RecordedChange[] = [];
    for (const change of findings.changes) recorded.push(await recordIncidentChange(client, change));
    await saveDetectorState(client, DETECTOR, findings.state, now);
    await recordDetectorRun(client, {
      detector: DETECTOR,
      tickAt,
      outcome: 'evaluated',
      startedAt,
      worker: ctx.workerId,
      changes: findings.changes.length,
      skippedRows,
    });
    return { tickAt: now, outcome: 'evaluated', changes: findings.changes, recorded, findings, skippedRows };
  };

  const result = options.dryRun ? await inDryRun(ctx.db, work) : await inTransaction(ctx.db, work);
  if (!options.dryRun) {
    for (const r of result.recorded) {
      log.info(
        {
          incidentId: r.incidentId,
          change: r.change.type,
          kind: r.change.kind,
          channel: r.change.subject.channel,
          region: r.change.subject.region,
          evidence: r.change.evidence,
          backupChannels: r.change.backupChannels,
        },
        `incident ${r.change.type}`,
      );
    }
  }
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
