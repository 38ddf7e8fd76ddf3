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
  type PaymentHealthFindings,
  type ReplayedIncident,
} from '../../detectors/payment-health/index.ts';
import type { Pool } from '../db/pool.ts';
import { readInvalidAttempts, streamAttempts } from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import { SeriesRecorder, type ReportLayout, type ReportPart } from './report-series.ts';

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
  /** Record the HTML report's series (see lib/backtest/report-series.ts). */
  report?: { buckets?: number };
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
  /** The HTML report's part, when asked for. */
  report?: ReportPart;
}

/** What the report draws per channel × region: the failure share and the latency, with their limits. */
export const REPORT_LAYOUT: ReportLayout = {
  subjectNoun: 'channel × region',
  charts: [
    {
      title: 'Failure share (failed and timed-out attempts)',
      unit: 'share',
      series: [
        { label: 'failure share', role: 'observed' },
        { label: 'baseline', role: 'baseline' },
        { label: 'threshold', role: 'threshold' },
      ],
      kinds: ['failures'],
    },
    {
      title: 'Confirmation latency (median)',
      unit: 'ms',
      series: [
        { label: 'median latency', role: 'observed' },
        { label: 'learned median', role: 'baseline' },
        { label: 'slow limit', role: 'threshold' },
      ],
      kinds: ['slow'],
    },
  ],
};
const REPORT_SERIES = REPORT_LAYOUT.charts.reduce((n, c) => n + c.series.length, 0);

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
  const recorder = options.report
    ? new SeriesRecorder({
        fromMs,
        toMs,
        stepMs,
        seriesCount: REPORT_SERIES,
        ...(options.report.buckets ? { buckets: options.report.buckets } : {}),
      })
    : null;
  const replay = new Replay({
    ...(recorder ? { onTick: (now: number, f: PaymentHealthFindings) => recordTick(recorder, now, f) } : {}),
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
    ...(recorder
      ? {
          report: {
            layout: REPORT_LAYOUT,
            incidents: result.incidents
              .filter((i) => i.resolvedAt === null || i.resolvedAt >= fromMs)
              .map(reportIncident),
            subjects: recorder.series(),
          },
        }
      : {}),
  };
}

export function subjectLabel(subject: PaymentSubject): string {
  return `${subject.channel} × ${subject.region}`;
}

/** One tick of every pair: its failure share and latency against their baselines and limits. */
function recordTick(recorder: SeriesRecorder, now: number, findings: PaymentHealthFindings): void {
  for (const [key, kinds] of findings.assessments) {
    const pair = findings.state.pairs[key];
    if (!pair) continue;
    const f = kinds.failures;
    const s = kinds.slow;
    const latency = s.status === 'unknown' ? null : s.latency;
    recorder.add(
      subjectLabel(pair),
      now,
      [
        f.status === 'unknown' ? null : (f.view?.rate ?? null),
        f.baseline,
        f.status === 'unknown' ? null : f.threshold,
        latency?.medianMs ?? null,
        latency?.baselineMs ?? null,
        latency?.limitMs ?? null,
      ],
      f.status === 'degraded' || s.status === 'degraded',
    );
  }
}

function reportIncident(i: ReplayedIncident): ReportPart['incidents'][number] {
  return {
    subject: subjectLabel(i.subject),
    kind: i.kind,
    openedAt: i.openedAt,
    resolvedAt: i.resolvedAt,
    resolveReason: i.resolveReason,
    firstDegradedAt: i.firstDegradedAt,
    evidence: evidenceText(i.kind, i.evidence),
    backups: i.backupChannels,
  };
}

function pct(share: number): string {
  return `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;
}

/** The numbers that opened an incident, in one line for ops. */
export function evidenceText(kind: IncidentKind, e: Evidence): string {
  const what = kind === 'failures' ? 'failed' : 'slow';
  let text =
    `${e.bad}/${e.attempts} ${what} in ${e.windowSeconds}s (${pct(e.rate)}), from ${e.users} users; ` +
    `lower bound ${pct(e.lowerBound)} vs threshold ${pct(e.threshold)} (baseline ${pct(e.baseline)})`;
  if (e.medianLatencyMs !== null && e.baselineLatencyMs !== null)
    text += `; median ${Math.round(e.medianLatencyMs)} ms vs ${Math.round(e.baselineLatencyMs)} ms learned`;
  const codes = e.topErrorCodes ?? [];
  if (codes.length > 0) text += `; codes ${codes.map((c) => `${c.code} ×${c.count}`).join(', ')}`;
  return text;
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
