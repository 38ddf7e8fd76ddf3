// The payment-health detector: a pure function from attempt counts, the previous state, the
// thresholds and `now` to the next state and the incidents that opened or resolved. No I/O and
// no clock of its own, so the live worker and the backtest run exactly this code.
//
// Per (channel, region) and per kind (failure share, slow share) it:
//  1. picks the shortest window holding enough attempts (busy channels are judged on seconds,
//     quiet ones on minutes);
//  2. compares the Wilson lower bound of the share with the pair's own learned baseline plus a
//     margin, so a handful of failures at a quiet hour proves nothing;
//  3. opens an incident only after the pair stayed degraded for `confirmSeconds` while the most
//     recent attempts still look bad (a finished blip does not count), and resolves it only after
//     `resolveSeconds` below half the margin (hysteresis, so a flapping channel does not flap
//     incidents).
import { rankBackupChannels } from './backups.ts';
import type { Counts, PairSeries, SignalSeries } from './series.ts';
import { normalQuantile, wilsonInterval } from './stats.ts';
import { thresholdsFor, type PaymentHealthSettings, type PaymentHealthThresholds } from './thresholds.ts';
import type {
  Assessment,
  BaselineState,
  Evidence,
  IncidentChange,
  IncidentKind,
  KindState,
  PairState,
  PaymentChannel,
  PaymentHealthState,
} from './types.ts';

export const DETECTOR = 'payment-health';
export const INCIDENT_KINDS: readonly IncidentKind[] = ['failures', 'slow'];

export interface PaymentHealthSignals {
  series: SignalSeries;
  channels: readonly PaymentChannel[];
}

export interface PaymentHealthFindings {
  state: PaymentHealthState;
  changes: IncidentChange[];
  /** The current assessment of every pair, for `forewarn run` and for ops' eyes. */
  assessments: Map<string, Record<IncidentKind, Assessment>>;
}

export function initialPaymentHealthState(): PaymentHealthState {
  return { evaluatedAt: null, pairs: {} };
}

export function detectPaymentHealth(
  signals: PaymentHealthSignals,
  previous: PaymentHealthState,
  settings: PaymentHealthSettings,
  now: number,
): PaymentHealthFindings {
  const keys = new Set<string>([...signals.series.keys(), ...Object.keys(previous.pairs)]);
  const sortedKeys = [...keys].sort();
  const assessments = new Map<string, Record<IncidentKind, Assessment>>();
  const nextPairs: Record<string, PairState> = {};

  for (const key of sortedKeys) {
    const prior = previous.pairs[key];
    const [channel, region] = prior ? [prior.channel, prior.region] : splitKey(key);
    const thresholds = thresholdsFor(settings, channel, region);
    const series = signals.series.get(key);
    const pairState = prior ?? newPairState(channel, region);
    assessments.set(key, {
      failures: assess(
        series,
        thresholds,
        'failures',
        baselineRate(pairState.baseline, thresholds, 'failures'),
        now,
      ),
      slow: assess(series, thresholds, 'slow', baselineRate(pairState.baseline, thresholds, 'slow'), now),
    });
    nextPairs[key] = pairState;
  }

  const changes: IncidentChange[] = [];
  const opening: Array<{ key: string; kind: IncidentKind; assessment: Assessment & { status: 'degraded' } }> =
    [];
  for (const key of sortedKeys) {
    const pair = nextPairs[key]!;
    const thresholds = thresholdsFor(settings, pair.channel, pair.region);
    const assessed = assessments.get(key)!;
    const kinds = { ...pair.kinds };
    for (const kind of INCIDENT_KINDS) {
      const { next, transition } = step(kinds[kind], assessed[kind], thresholds, now);
      kinds[kind] = next;
      if (transition === 'open')
        opening.push({ key, kind, assessment: assessed[kind] as Assessment & { status: 'degraded' } });
      if (transition === 'resolve') {
        const open = pair.kinds[kind].open!;
        changes.push({
          type: 'resolved',
          detector: DETECTOR,
          subject: { channel: pair.channel, region: pair.region },
          kind,
          openedAt: open.openedAt,
          at: now,
          evidence: evidenceOf(assessed[kind], thresholds)!,
          openEvidence: open.evidence,
          backupChannels: open.backupChannels,
        });
      }
    }
    nextPairs[key] = { ...pair, kinds };
  }

  // Backups are ranked once every pair's state for this tick is known, so that two channels
  // failing together in a region never name each other.
  for (const { key, kind, assessment } of opening) {
    const pair = nextPairs[key]!;
    const thresholds = thresholdsFor(settings, pair.channel, pair.region);
    const backupChannels = rankBackupChannels({
      failing: pair.channel,
      region: pair.region,
      channels: signals.channels,
      settings,
      series: signals.series,
      isHealthy: (candidateKey) => isHealthyNow(nextPairs[candidateKey], assessments.get(candidateKey)),
      now,
    });
    const evidence = evidenceOf(assessment, thresholds)!;
    const openedAt = now;
    nextPairs[key] = {
      ...pair,
      kinds: { ...pair.kinds, [kind]: { ...pair.kinds[kind], open: { openedAt, evidence, backupChannels } } },
    };
    changes.push({
      type: 'opened',
      detector: DETECTOR,
      subject: { channel: pair.channel, region: pair.region },
      kind,
      at: now,
      evidence,
      backupChannels,
    });
  }

  const lastEvaluatedAt = previous.evaluatedAt;
  for (const key of sortedKeys) {
    const pair = nextPairs[key]!;
    const thresholds = thresholdsFor(settings, pair.channel, pair.region);
    const quiet = INCIDENT_KINDS.every(
      (kind) => pair.kinds[kind].open === null && pair.kinds[kind].degradedSince === null,
    );
    const assessed = assessments.get(key)!;
    // Learn only from traffic that looks normal now: a slide that is not proven yet must not
    // become the new normal before it is caught. The gate is the lower bound, not the rate, so
    // that a quiet pair's chance clusters of failures still count and its baseline is unbiased.
    const normal = INCIDENT_KINDS.every((kind) => {
      const a = assessed[kind];
      return a.status === 'unknown' || (a.status !== 'degraded' && a.lower <= a.recoveredBelow);
    });
    if (quiet && normal) {
      nextPairs[key] = {
        ...pair,
        baseline: learn(pair.baseline, signals.series.get(key), thresholds, lastEvaluatedAt, now),
      };
    }
  }

  changes.sort((a, b) => (a.type === b.type ? 0 : a.type === 'resolved' ? -1 : 1));
  return { state: { evaluatedAt: now, pairs: nextPairs }, changes, assessments };
}

/**
 * Judges one kind of one pair. The shortest window holding enough attempts is the current view:
 * it decides whether the pair is healthy. The pair is degraded when some window holding enough
 * attempts (the longer ones have more power at low rates) proves the share above the threshold,
 * while the current view and the most recent attempts do not look healthy, so that a finished
 * blip still inside a long window does not count.
 */
export function assess(
  series: PairSeries | undefined,
  thresholds: PaymentHealthThresholds,
  kind: IncidentKind,
  baseline: number,
  now: number,
): Assessment {
  if (!series) return { status: 'unknown', baseline };
  const limits = thresholds[kind];
  const z = normalQuantile(thresholds.confidence);
  const margin = Math.max(limits.minIncrease, baseline * limits.relativeIncrease);
  const threshold = Math.min(1, baseline + margin);
  const recoveredBelow = baseline + margin / 2;
  let current: Extract<Assessment, { counts: Counts }> | undefined;
  let proof: Extract<Assessment, { counts: Counts }> | undefined;
  for (const window of thresholds.windows) {
    const counts = series.between(now - window.seconds * 1000, now);
    if (counts.attempts < window.minAttempts) continue;
    const bad = badOf(counts, kind);
    const { lower, upper } = wilsonInterval(bad, counts.attempts, z);
    const rate = bad / counts.attempts;
    const view = {
      status: 'uncertain' as const,
      currentHealthy: false,
      baseline,
      windowSeconds: window.seconds,
      counts,
      bad,
      rate,
      lower,
      upper,
      threshold,
      recoveredBelow,
    };
    current ??= view;
    if (bad >= limits.minCount && lower > threshold) {
      proof = view;
      break;
    }
  }
  if (!current) return { status: 'unknown', baseline };
  const currentHealthy = current.rate <= recoveredBelow;
  if (!proof) return { ...current, currentHealthy, status: currentHealthy ? 'healthy' : 'uncertain' };
  const recent = series.between(now - thresholds.recentSeconds * 1000, now);
  // The most recent attempts must still look as bad as the threshold (when there are enough of
  // them to tell): a finished blip, or the quiet half of flapping, is proven but not happening.
  const stillHappening =
    recent.attempts < thresholds.recentMinAttempts || badOf(recent, kind) / recent.attempts > threshold;
  if (currentHealthy || !stillHappening) return { ...current, currentHealthy, status: 'uncertain' };
  return { ...proof, currentHealthy, status: 'degraded' };
}

type Transition = 'open' | 'resolve' | null;

/**
 * One kind's state machine. Opening: a run of degraded ticks lasting `confirmSeconds`; healthy
 * ticks end the run, uncertain ones (a longer window still proves trouble that the current view
 * no longer shows, as between the flaps of a flapping channel) neither extend nor end it.
 * Resolving: the current view healthy for `resolveSeconds` without a break.
 */
function step(
  state: KindState,
  assessment: Assessment,
  thresholds: PaymentHealthThresholds,
  now: number,
): { next: KindState; transition: Transition } {
  if (assessment.status === 'unknown') return { next: state, transition: null };
  if (state.open === null) {
    if (assessment.status === 'healthy') return { next: { ...state, degradedSince: null }, transition: null };
    if (assessment.status === 'uncertain') return { next: state, transition: null };
    const degradedSince = state.degradedSince ?? now;
    if (now - degradedSince >= thresholds.confirmSeconds * 1000) {
      // `open` is filled in by the caller once backups are ranked.
      return { next: { degradedSince: null, healthySince: null, open: null }, transition: 'open' };
    }
    return { next: { ...state, degradedSince }, transition: null };
  }
  if (!assessment.currentHealthy) return { next: { ...state, healthySince: null }, transition: null };
  const healthySince = state.healthySince ?? now;
  if (now - healthySince >= thresholds.resolveSeconds * 1000) {
    return { next: { degradedSince: null, healthySince: null, open: null }, transition: 'resolve' };
  }
  return { next: { ...state, healthySince }, transition: null };
}

/** Healthy enough to suggest: nothing open, nothing confirming, not degraded this tick. */
function isHealthyNow(
  pair: PairState | undefined,
  assessed: Record<IncidentKind, Assessment> | undefined,
): boolean {
  if (!pair || !assessed) return false;
  return INCIDENT_KINDS.every(
    (kind) =>
      pair.kinds[kind].open === null &&
      pair.kinds[kind].degradedSince === null &&
      assessed[kind].status !== 'degraded',
  );
}

/** Decayed counts of healthy traffic, so the baseline follows slow change but not an outage. */
function learn(
  baseline: BaselineState,
  series: PairSeries | undefined,
  thresholds: PaymentHealthThresholds,
  lastEvaluatedAt: number | null,
  now: number,
): BaselineState {
  const longestMs = thresholds.windows[thresholds.windows.length - 1]!.seconds * 1000;
  const elapsed = Math.min(Math.max(now - (lastEvaluatedAt ?? now - longestMs), 0), longestMs);
  if (elapsed === 0) return baseline;
  const decay = Math.pow(0.5, elapsed / (thresholds.baseline.halfLifeMinutes * 60_000));
  const counts = series ? series.between(now - elapsed, now) : undefined;
  const attempts = counts?.attempts ?? 0;
  return {
    attempts: baseline.attempts * decay + attempts,
    failures: baseline.failures * decay + (counts?.failures ?? 0),
    slow: baseline.slow * decay + (counts?.slow ?? 0),
  };
}

export function baselineRate(
  baseline: BaselineState,
  thresholds: PaymentHealthThresholds,
  kind: IncidentKind,
): number {
  const prior = thresholds.baseline.priorWeight;
  const bad = kind === 'failures' ? baseline.failures : baseline.slow;
  const rate = (bad + prior * thresholds[kind].expectedRate) / (baseline.attempts + prior);
  return Math.min(rate, thresholds.baseline.maxRate);
}

function evidenceOf(assessment: Assessment, thresholds: PaymentHealthThresholds): Evidence | null {
  if (assessment.status === 'unknown') return null;
  const { counts } = assessment;
  return {
    windowSeconds: assessment.windowSeconds,
    attempts: counts.attempts,
    bad: assessment.bad,
    rate: round(assessment.rate),
    lowerBound: round(assessment.lower),
    upperBound: round(assessment.upper),
    baseline: round(assessment.baseline),
    threshold: round(assessment.threshold),
    confidence: thresholds.confidence,
    meanLatencyMs: counts.latencyCount > 0 ? Math.round(counts.latencySumMs / counts.latencyCount) : null,
  };
}

function badOf(counts: Counts, kind: IncidentKind): number {
  return kind === 'failures' ? counts.failures : counts.slow;
}

function newPairState(channel: string, region: string): PairState {
  const idle: KindState = { degradedSince: null, healthySince: null, open: null };
  return {
    channel,
    region,
    baseline: { attempts: 0, failures: 0, slow: 0 },
    kinds: { failures: idle, slow: idle },
  };
}

function splitKey(key: string): [string, string] {
  const at = key.indexOf(':');
  return [key.slice(0, at), key.slice(at + 1)];
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
