// Runs the detector tick by tick over a series: the core of `forewarn backtest`, and how unit
// tests drive the detector through a whole synthetic day.
import { DETECTOR, detectPaymentHealth, initialPaymentHealthState } from './detect.ts';
import type { SignalSeries } from './series.ts';
import type { PaymentHealthSettings } from './thresholds.ts';
import type { Evidence, IncidentKind, PaymentChannel, PaymentHealthState, PaymentSubject } from './types.ts';

export interface ReplayedIncident {
  detector: typeof DETECTOR;
  subject: PaymentSubject;
  kind: IncidentKind;
  /** Epoch ms; resolvedAt is null while still open at the last tick. */
  openedAt: number;
  resolvedAt: number | null;
  evidence: Evidence;
  backupChannels: string[];
}

export interface ReplayOptions {
  series: SignalSeries;
  channels: readonly PaymentChannel[];
  settings: PaymentHealthSettings;
  /** Ticks at firstTick, firstTick + stepMs, ... up to and including lastTick. */
  firstTick: number;
  lastTick: number;
  stepMs: number;
  initialState?: PaymentHealthState;
  onProgress?: (progress: { ticksDone: number; ticksTotal: number }) => void;
}

export function replayPaymentHealth(options: ReplayOptions): {
  incidents: ReplayedIncident[];
  ticks: number;
  state: PaymentHealthState;
} {
  const { series, channels, settings, firstTick, lastTick, stepMs } = options;
  const ticksTotal = Math.max(0, Math.floor((lastTick - firstTick) / stepMs) + 1);
  const open = new Map<string, ReplayedIncident>();
  const incidents: ReplayedIncident[] = [];
  let state = options.initialState ?? initialPaymentHealthState();
  let ticksDone = 0;
  for (let now = firstTick; now <= lastTick; now += stepMs) {
    const findings = detectPaymentHealth({ series, channels }, state, settings, now);
    state = findings.state;
    for (const change of findings.changes) {
      const key = `${change.subject.channel}:${change.subject.region}:${change.kind}`;
      if (change.type === 'opened') {
        const incident: ReplayedIncident = {
          detector: DETECTOR,
          subject: change.subject,
          kind: change.kind,
          openedAt: change.at,
          resolvedAt: null,
          evidence: change.evidence,
          backupChannels: change.backupChannels,
        };
        open.set(key, incident);
        incidents.push(incident);
      } else {
        const incident = open.get(key);
        if (incident) incident.resolvedAt = change.at;
        open.delete(key);
      }
    }
    ticksDone++;
    if (options.onProgress && ticksDone % 100 === 0) options.onProgress({ ticksDone, ticksTotal });
  }
  options.onProgress?.({ ticksDone, ticksTotal });
  return { incidents, ticks: ticksDone, state };
}
