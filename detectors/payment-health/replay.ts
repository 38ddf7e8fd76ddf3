// Runs the detector tick by tick over attempts streamed in creation order: the core of
// `forewarn backtest`, and how unit tests drive the detector through a whole synthetic day.
// Memory is bounded by the longest window, whatever the length of the history.
import {
  DETECTOR,
  detectPaymentHealth,
  initialPaymentHealthState,
  type PaymentHealthFindings,
} from './detect.ts';
import { SignalBuilder, type ObservedAttempt } from './observe.ts';
import { BUCKET_MS, pairKey, settledFromFor } from './signals.ts';
import { lookback, thresholdsFor, windowLengths, type PaymentHealthSettings } from './thresholds.ts';
import type {
  Evidence,
  IncidentKind,
  PaymentChannel,
  PaymentHealthState,
  PaymentSubject,
  ResolveReason,
} from './types.ts';

export interface ReplayedIncident {
  detector: typeof DETECTOR;
  subject: PaymentSubject;
  kind: IncidentKind;
  /** Epoch ms; resolvedAt is null while still open at the last tick. */
  openedAt: number;
  resolvedAt: number | null;
  resolveReason: ResolveReason | null;
  evidence: Evidence;
  backupChannels: string[];
  /** The first tick of the degraded run that opened it; null when it came open with the state. */
  firstDegradedAt: number | null;
}

export interface ReplayOptions {
  channels: readonly PaymentChannel[];
  settings: PaymentHealthSettings;
  /** Ticks at firstTick, firstTick + stepMs, ... up to and including lastTick (multiples of 5 s). */
  firstTick: number;
  lastTick: number;
  stepMs: number;
  /** State to start from, e.g. the live daemon's; its baselines are kept, its open incidents too. */
  initialState?: PaymentHealthState;
  onProgress?: (progress: { ticksDone: number; ticksTotal: number }) => void;
  /** Sees every tick's findings (the backtest report's series). */
  onTick?: (now: number, findings: PaymentHealthFindings) => void;
}

export interface ReplayResult {
  incidents: ReplayedIncident[];
  /** Ticks at which most pairs went silent at once, and at which data came back. */
  feed: Array<{ at: number; silent: boolean }>;
  ticks: number;
  state: PaymentHealthState;
}

/** A replay fed attempt by attempt; `finish()` runs the remaining ticks. */
export class Replay {
  private readonly options: ReplayOptions;
  private readonly builder: SignalBuilder;
  private readonly windowMs: number;
  private readonly settleMs: number;
  private readonly open = new Map<string, ReplayedIncident>();
  private readonly incidents: ReplayedIncident[] = [];
  private readonly feed: Array<{ at: number; silent: boolean }> = [];
  private state: PaymentHealthState;
  private nextTick: number;
  private ticksDone = 0;
  private readonly ticksTotal: number;

  constructor(options: ReplayOptions) {
    const { settings, firstTick, lastTick, stepMs } = options;
    if (stepMs <= 0 || stepMs % BUCKET_MS !== 0 || firstTick % BUCKET_MS !== 0) {
      throw new RangeError(
        `replay: expected a step and first tick on whole multiples of ${BUCKET_MS / 1000}s, got step ${stepMs} ms, first tick ${firstTick}`,
      );
    }
    this.options = options;
    const look = lookback(settings);
    this.windowMs = look.windowMs;
    this.settleMs = look.settleMs;
    this.builder = new SignalBuilder({
      lengths: windowLengths(settings),
      settleMs: look.settleMs,
      maxUsers: look.maxUsers,
      slowAfterMs: (channel, region) => thresholdsFor(settings, channel, region).slow.slowAfterMs,
    });
    this.state = options.initialState ?? initialPaymentHealthState();
    this.nextTick = firstTick;
    this.ticksTotal = Math.max(0, Math.floor((lastTick - firstTick) / stepMs) + 1);
    for (const [key, pair] of Object.entries(this.state.pairs)) {
      for (const kind of ['failures', 'slow'] as const) {
        const o = pair.kinds[kind]?.open;
        if (o)
          this.remember(
            `${key}:${kind}`,
            { channel: pair.channel, region: pair.region },
            kind,
            o.openedAt,
            o.evidence,
            o.backupChannels,
            null,
          );
      }
    }
  }

  /** Adds one attempt; attempts must come in creation order. Ticks up to its creation run first. */
  add(attempt: ObservedAttempt): void {
    while (this.nextTick <= this.options.lastTick && this.nextTick <= attempt.createdAt) this.tick();
    if (attempt.createdAt <= this.options.lastTick) this.builder.add(attempt);
  }

  finish(): ReplayResult {
    while (this.nextTick <= this.options.lastTick) this.tick();
    this.options.onProgress?.({ ticksDone: this.ticksDone, ticksTotal: this.ticksTotal });
    return { incidents: this.incidents, feed: this.feed, ticks: this.ticksDone, state: this.state };
  }

  private tick(): void {
    const now = this.nextTick;
    const settledFrom = settledFromFor(this.state.evaluatedAt, now, this.settleMs, this.windowMs);
    const set = this.builder.at(now, settledFrom);
    const findings = detectPaymentHealth(
      { set, channels: this.options.channels },
      this.state,
      this.options.settings,
      now,
    );
    const previous = this.state;
    this.state = findings.state;
    this.options.onTick?.(now, findings);
    if (findings.feed.started || findings.feed.ended)
      this.feed.push({ at: now, silent: findings.feed.started });
    for (const change of findings.changes) {
      const key = `${change.subject.channel}:${change.subject.region}:${change.kind}`;
      if (change.type === 'opened') {
        const evidence = {
          ...change.evidence,
          topErrorCodes: this.builder.topErrorCodes(
            change.subject.channel,
            change.subject.region,
            now - change.evidence.windowSeconds * 1000,
          ),
        };
        // The degraded run that this tick confirmed began at the previous state's degradedSince.
        const pair = previous.pairs[pairKey(change.subject.channel, change.subject.region)];
        const run = pair?.kinds[change.kind]?.degradedSince ?? null;
        this.remember(
          key,
          change.subject,
          change.kind,
          change.at,
          evidence,
          change.backupChannels,
          run ?? change.at,
        );
      } else {
        const incident = this.open.get(key);
        if (incident) {
          incident.resolvedAt = change.at;
          incident.resolveReason = change.reason;
        }
        this.open.delete(key);
      }
    }
    this.ticksDone++;
    this.nextTick += this.options.stepMs;
    if (this.options.onProgress && this.ticksDone % 1000 === 0)
      this.options.onProgress({ ticksDone: this.ticksDone, ticksTotal: this.ticksTotal });
  }

  private remember(
    key: string,
    subject: PaymentSubject,
    kind: IncidentKind,
    openedAt: number,
    evidence: Evidence,
    backupChannels: string[],
    firstDegradedAt: number | null,
  ): void {
    const incident: ReplayedIncident = {
      detector: DETECTOR,
      subject,
      kind,
      openedAt,
      resolvedAt: null,
      resolveReason: null,
      evidence,
      backupChannels,
      firstDegradedAt,
    };
    this.open.set(key, incident);
    this.incidents.push(incident);
  }
}

/** Replays attempts given in creation order (any iterable, e.g. a generator). */
export function replayPaymentHealth(
  attempts: Iterable<ObservedAttempt>,
  options: ReplayOptions,
): ReplayResult {
  const replay = new Replay(options);
  for (const a of attempts) replay.add(a);
  return replay.finish();
}
