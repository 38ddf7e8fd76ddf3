// Replaying the payment-health detector over stored history, tick by tick, with the detector and
// the observation model that run live. The rows are streamed in creation order (COPY), so a month
// of history is read once with memory bounded by the longest window. Nothing is sent or written.
import type { PoolClient } from 'pg';
import {
  BUCKET_MS,
  lookback,
  Replay,
  upgradeState,
  type DETECTOR,
  type Evidence,
  type IncidentKind,
  type PaymentHealthSettings,
  type PaymentHealthState,
  type PaymentSubject,
  type ResolveReason,
} from '../../detectors/payment-health/index.ts';
import type { Pool } from '../db/pool.ts';
import { readInvalidAttempts, streamAttempts } from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';

export interface BacktestOptions {
  platformDb: Pool;
  schema: string;
  settings: PaymentHealthSettings;
  fromMs: number;
  toMs: number;
  stepMs: number;
  warmupMs: number;
  /**
   * The live daemon's stored state, when there is one: the replay starts from its learned
   * baselines (not its incidents). Without it, the warm-up is stretched to a baseline half-life
   * so that baselines are learned rather than assumed.
   */
  storedState?: PaymentHealthState | null;
  onProgress?: (progress: { ticksDone: number; ticksTotal: number }) => void;
}

export interface BacktestIncident {
  detector: typeof DETECTOR;
  subject: PaymentSubject;
  openedAt: string;
  resolvedAt: string | null;
  resolveReason: ResolveReason | null;
  kind: IncidentKind;
  evidence: Evidence;
  backupChannels: string[];
}

export interface BacktestReport {
  incidents: BacktestIncident[];
  ticks: number;
  /** Attempts read (warm-up included). */
  attemptsRead: number;
  warmupMs: number;
  baselinesFrom: 'stored state' | 'warm-up';
  skippedRows: number;
  /** The first skipped rows, with why, for the log. */
  skippedSample: Array<{ table: string; id: string; reason: string }>;
  /** Reading and replaying, interleaved: the replay consumes the stream as it arrives. */
  elapsedMs: number;
}

export async function backtestPaymentHealth(options: BacktestOptions): Promise<BacktestReport> {
  const { settings, fromMs, toMs, stepMs } = options;
  if (stepMs <= 0 || stepMs % BUCKET_MS !== 0) {
    throw new RangeError(`step: expected a positive multiple of ${BUCKET_MS / 1000}s, got ${stepMs / 1000}s`);
  }
  const useStored = options.storedState !== null && options.storedState !== undefined;
  const warmupMs = useStored
    ? options.warmupMs
    : Math.max(options.warmupMs, settings.baseline.halfLifeMinutes * 60_000);
  const firstTick = Math.ceil((fromMs - warmupMs) / stepMs) * stepMs;
  const stored = useStored ? baselinesOnly(options.storedState!, firstTick) : null;
  const lastTick = Math.floor(toMs / BUCKET_MS) * BUCKET_MS;
  const [channels, invalid] = await Promise.all([
    readPaymentChannels(options.platformDb, options.schema),
    readInvalidAttempts(options.platformDb, { schema: options.schema, fromMs: firstTick, toMs }, 100),
  ]);
  const replay = new Replay({
    channels: channels.channels,
    settings,
    firstTick,
    lastTick,
    stepMs,
    ...(stored ? { initialState: stored } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });

  const started = performance.now();
  let attemptsRead = 0;
  const client: PoolClient = await options.platformDb.connect();
  try {
    // The first tick, without state, reads a whole window and a settled slice before it.
    const { windowMs, settleMs } = lookback(settings);
    for await (const attempt of streamAttempts(
      client,
      options.schema,
      firstTick - settleMs - windowMs,
      lastTick,
    )) {
      replay.add(attempt);
      attemptsRead++;
    }
  } finally {
    client.release();
  }
  const result = replay.finish();
  const totalMs = performance.now() - started;

  // Incidents that opened and resolved within the warm-up are outside the asked range.
  const inRange = result.incidents
    .filter((i) => i.resolvedAt === null || i.resolvedAt >= fromMs)
    .map((i): BacktestIncident => ({
      detector: i.detector,
      subject: i.subject,
      openedAt: new Date(i.openedAt).toISOString(),
      resolvedAt: i.resolvedAt === null ? null : new Date(i.resolvedAt).toISOString(),
      resolveReason: i.resolveReason,
      kind: i.kind,
      evidence: i.evidence,
      backupChannels: i.backupChannels,
    }));
  return {
    incidents: inRange,
    ticks: result.ticks,
    attemptsRead,
    warmupMs,
    baselinesFrom: stored ? 'stored state' : 'warm-up',
    skippedRows: invalid.count + channels.invalid.length,
    skippedSample: [
      ...invalid.sample.map((r) => ({ table: 'payment_attempts', ...r })),
      ...channels.invalid.map((r) => ({ table: 'payment_channels', ...r })),
    ],
    elapsedMs: totalMs,
  };
}

/** The learned baselines of a stored state, without its incidents, timers or clock. */
function baselinesOnly(state: PaymentHealthState, firstTick: number): PaymentHealthState {
  const upgraded = upgradeState(state);
  const pairs: PaymentHealthState['pairs'] = {};
  for (const [key, pair] of Object.entries(upgraded.pairs)) {
    const idle = {
      degradedSince: null,
      lastDegradedAt: null,
      healthySince: null,
      open: null,
      resolvedAt: null,
    };
    // Seen as of the replay's start: a pair not seen (null) is forgotten by the first tick.
    pairs[key] = {
      ...pair,
      kinds: { failures: idle, slow: idle },
      lastSeenAt: firstTick,
      lastAbnormalAt: null,
    };
  }
  return { evaluatedAt: null, pairs, feedSilentSince: null };
}
