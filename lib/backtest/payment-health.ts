// Replaying the payment-health detector over stored history, tick by tick, with the detector and
// the bucket query that run live. The history is read once (one aggregate query over the whole
// range, not one per tick), then every tick is a few prefix-sum subtractions. Nothing is sent or
// written.
import type { DETECTOR } from '../../detectors/payment-health/index.ts';
import {
  BUCKET_MS,
  buildSeries,
  lookback,
  replayPaymentHealth,
  type Evidence,
  type IncidentKind,
  type PaymentHealthSettings,
  type PaymentSubject,
} from '../../detectors/payment-health/index.ts';
import type { Queryable } from '../db/pool.ts';
import { readAttemptBuckets, readInvalidAttempts, slowAfterRules } from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';

export interface BacktestOptions {
  platformDb: Queryable;
  schema: string;
  settings: PaymentHealthSettings;
  fromMs: number;
  toMs: number;
  stepMs: number;
  warmupMs: number;
  onProgress?: (progress: { ticksDone: number; ticksTotal: number }) => void;
}

export interface BacktestIncident {
  detector: typeof DETECTOR;
  subject: PaymentSubject;
  openedAt: string;
  resolvedAt: string | null;
  kind: IncidentKind;
  evidence: Evidence;
  backupChannels: string[];
}

export interface BacktestReport {
  incidents: BacktestIncident[];
  ticks: number;
  bucketRows: number;
  skippedRows: number;
  /** The first skipped rows, with why, for the log. */
  skippedSample: Array<{ table: string; id: string; reason: string }>;
  readMs: number;
  replayMs: number;
}

export async function backtestPaymentHealth(options: BacktestOptions): Promise<BacktestReport> {
  const { settings, fromMs, toMs, stepMs } = options;
  if (stepMs <= 0 || stepMs % BUCKET_MS !== 0) {
    throw new RangeError(`step: expected a positive multiple of ${BUCKET_MS / 1000}s, got ${stepMs / 1000}s`);
  }
  const firstTick = Math.ceil((fromMs - options.warmupMs) / stepMs) * stepMs;
  const { windowMs } = lookback(settings);
  const readStarted = performance.now();
  const query = {
    schema: options.schema,
    fromMs: firstTick - windowMs,
    toMs: toMs + 1,
    slowAfter: slowAfterRules(settings),
  };
  const [rows, channels, invalid] = await Promise.all([
    readAttemptBuckets(options.platformDb, query),
    readPaymentChannels(options.platformDb, options.schema),
    readInvalidAttempts(options.platformDb, query, 100),
  ]);
  const series = buildSeries(rows, query.fromMs, query.toMs);
  const readMs = performance.now() - readStarted;

  const replayStarted = performance.now();
  const replay = replayPaymentHealth({
    series,
    channels: channels.channels,
    settings,
    firstTick,
    lastTick: toMs,
    stepMs,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  // Incidents that opened and resolved within the warm-up are outside the asked range.
  const inRange = replay.incidents
    .filter((i) => i.resolvedAt === null || i.resolvedAt >= fromMs)
    .map((i): BacktestIncident => ({
      detector: i.detector,
      subject: i.subject,
      openedAt: new Date(i.openedAt).toISOString(),
      resolvedAt: i.resolvedAt === null ? null : new Date(i.resolvedAt).toISOString(),
      kind: i.kind,
      evidence: i.evidence,
      backupChannels: i.backupChannels,
    }));
  return {
    incidents: inRange,
    ticks: replay.ticks,
    bucketRows: rows.length,
    skippedRows: invalid.count + channels.invalid.length,
    skippedSample: [
      ...invalid.sample.map((r) => ({ table: 'payment_attempts', ...r })),
      ...channels.invalid.map((r) => ({ table: 'payment_channels', ...r })),
    ],
    readMs,
    replayMs: performance.now() - replayStarted,
  };
}
