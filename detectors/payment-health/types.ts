// The payment-health detector's data: its signals' companions, its persisted state (plain JSON,
// stored by the worker between ticks) and the incident changes it emits.
import type { Counts } from './series.ts';

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

export type Assessment =
  | { status: 'unknown'; baseline: number }
  | {
      /**
       * degraded: proven above the threshold and still happening; healthy: the current view is
       * back near the baseline and nothing proves otherwise; uncertain: anything in between.
       */
      status: 'degraded' | 'healthy' | 'uncertain';
      /** The shortest window with enough attempts is back near the baseline. */
      currentHealthy: boolean;
      baseline: number;
      windowSeconds: number;
      counts: Counts;
      bad: number;
      rate: number;
      lower: number;
      upper: number;
      threshold: number;
      recoveredBelow: number;
    };

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
  meanLatencyMs: number | null;
}

export interface OpenIncident {
  openedAt: number;
  evidence: Evidence;
  backupChannels: string[];
}

export interface KindState {
  /** Start of the current run of degraded ticks, while not yet confirmed. */
  degradedSince: number | null;
  /** Start of the current run of healthy ticks, while an incident is open. */
  healthySince: number | null;
  open: OpenIncident | null;
}

/** Exponentially decayed counts of healthy traffic. */
export interface BaselineState {
  attempts: number;
  failures: number;
  slow: number;
}

export interface PairState {
  channel: string;
  region: string;
  baseline: BaselineState;
  kinds: Record<IncidentKind, KindState>;
}

export interface PaymentHealthState {
  /** The `now` of the last evaluation, in epoch milliseconds. */
  evaluatedAt: number | null;
  pairs: Record<string, PairState>;
}

export interface PaymentSubject {
  channel: string;
  region: string;
}

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
      /** The numbers that resolved it; `openEvidence` those that opened it. */
      evidence: Evidence;
      openEvidence: Evidence;
      backupChannels: string[];
    };
