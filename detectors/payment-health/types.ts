// The payment-health detector's data: its signals' companions, its persisted state (plain JSON,
// stored by the worker between ticks) and the incident changes it emits.

/** A row of the platform's payment_channels table. */
export interface PaymentChannel {
  id: string;
  displayName: string;
  /** Regions where the channel is offered; '*' means everywhere. */
  regions: readonly string[];
  enabled: boolean;
  /** Lower is preferred when two backups are equally healthy. */
  priority: number;
}

export type IncidentKind = 'failures' | 'slow';

/** What one window says about one share of a pair. */
export interface ShareView {
  windowSeconds: number;
  attempts: number;
  bad: number;
  rate: number;
  /** Wilson bounds of the rate at `confidence` (see windowConfidence). */
  lower: number;
  upper: number;
  confidence: number;
  /** Distinct users behind the bad attempts (counted up to the largest minUsers). */
  users: number;
}

/** Confirmation latency of a window against the pair's learned median. */
export interface LatencyView {
  windowSeconds: number;
  confirmed: number;
  /** Confirmations at or above `limitMs`, and the Wilson bounds of their share. */
  above: number;
  lower: number;
  medianMs: number;
  baselineMs: number;
  limitMs: number;
}

export type Assessment =
  | { status: 'unknown'; baseline: number }
  | {
      /**
       * degraded: proven above the threshold on fresh evidence and still happening; healthy: the
       * current view is back near the baseline; uncertain: anything in between.
       */
      status: 'degraded' | 'healthy' | 'uncertain';
      /** The shortest window with enough attempts is back near the baseline. */
      currentHealthy: boolean;
      /**
       * What an open incident needs to count towards its resolution: the current view is not
       * above the threshold, and not significantly above the halfway mark (a few failures among
       * a short window's attempts are noise, not a relapse), and the most recent attempts are
       * not above the threshold.
       */
      recovering: boolean;
      /** Proven by a window, but the latest attempts are back at most halfway: it is over. */
      lapsed: boolean;
      baseline: number;
      threshold: number;
      recoveredBelow: number;
      /** The proving window when degraded by the share, else the current view. */
      view: ShareView | null;
      latency: LatencyView | null;
    };

export interface ErrorCodeCount {
  code: string;
  count: number;
}

/** The numbers that justified opening or resolving an incident. */
export interface Evidence {
  windowSeconds: number;
  attempts: number;
  /** Failed and timed-out attempts for `failures`, slow ones for `slow`. */
  bad: number;
  rate: number;
  /** Wilson bounds of the rate at `confidence`. */
  lowerBound: number;
  upperBound: number;
  /** The pair's learned normal rate, and the rate the lower bound had to exceed. */
  baseline: number;
  threshold: number;
  confidence: number;
  /** Distinct users behind the bad attempts (counted up to the largest minUsers). */
  users: number;
  /** Median confirmation latency in the window and the pair's learned median, when known. */
  medianLatencyMs: number | null;
  baselineLatencyMs: number | null;
  /** The most frequent error codes of the window's failures, filled in by the reader. */
  topErrorCodes: ErrorCodeCount[];
}

/** Settled counts of an open incident's time: its level, should it last and become the new normal. */
export interface DuringCounts {
  finished: number;
  failures: number;
  timed: number;
  slow: number;
}

export interface OpenIncident {
  openedAt: number;
  evidence: Evidence;
  backupChannels: string[];
  during: DuringCounts;
}

export interface KindState {
  /** Start of the current run of degraded ticks, while not yet confirmed. */
  degradedSince: number | null;
  /** The last degraded tick: a longer gap since starts confirmation again. */
  lastDegradedAt: number | null;
  /** Start of the current run of healthy ticks, while an incident is open. */
  healthySince: number | null;
  open: OpenIncident | null;
  /** When the last incident resolved: no window reaching back before it may prove a new one. */
  resolvedAt: number | null;
}

/** Exponentially decayed settled counts of normal traffic. */
export interface BaselineState {
  finished: number;
  failures: number;
  timed: number;
  slow: number;
  /** Decayed counts of confirmations per latency bin. */
  latency: number[];
}

export interface PairState {
  channel: string;
  region: string;
  baseline: BaselineState;
  kinds: Record<IncidentKind, KindState>;
  /** Creation time of the newest attempt seen. */
  lastSeenAt: number | null;
  /** The last tick at which the pair did not look clearly normal: only later traffic is learned. */
  lastAbnormalAt: number | null;
}

export interface PaymentHealthState {
  /** The `now` of the last evaluation, in epoch milliseconds. */
  evaluatedAt: number | null;
  pairs: Record<string, PairState>;
  /** Since when most pairs have been silent at once (a data-feed fault), or null. */
  feedSilentSince: number | null;
}

export interface PaymentSubject {
  channel: string;
  region: string;
}

/**
 * Why an incident resolved: the pair recovered; it is no longer observed (silent, disabled, or
 * no longer offered: users get no recovery notice); or its level lasted and became its new normal.
 */
export type ResolveReason = 'recovered' | 'unobserved' | 'relearned';

export type IncidentChange =
  | {
      type: 'opened';
      detector: 'payment-health';
      subject: PaymentSubject;
      kind: IncidentKind;
      at: number;
      evidence: Evidence;
      backupChannels: string[];
    }
  | {
      type: 'resolved';
      detector: 'payment-health';
      subject: PaymentSubject;
      kind: IncidentKind;
      openedAt: number;
      at: number;
      reason: ResolveReason;
      /** The numbers that resolved it (no attempts when it is no longer observed); `openEvidence` those that opened it. */
      evidence: Evidence;
      openEvidence: Evidence;
      backupChannels: string[];
    };
