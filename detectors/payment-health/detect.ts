// The payment-health detector: a pure function from the tick's signals, the previous state, the
// thresholds and `now` to the next state and the incidents that opened or resolved. No I/O and
// no clock of its own, so the live worker and the backtest run exactly this code.
//
// Per (channel, region) and per kind (failure share, slow share) it:
//  1. walks its windows shortest first: the first with enough attempts is the current view; a
//     window that looks healthy makes the longer ones' evidence stale (an ended outage still in
//     the hour window proves nothing now); a window may prove the pair degraded when the Wilson
//     lower bound of its share exceeds the learned baseline plus a margin, with bad attempts
//     from enough distinct users and one of them recent;
//  2. opens an incident after `confirmSeconds` of degraded ticks without a gap longer than
//     `maxGapSeconds`, and resolves it after `resolveSeconds` of health, or when the pair has
//     gone silent (no longer observed), or when its level lasted `relearnAfterMinutes` (a new
//     normal);
//  3. learns its baselines only from settled attempts created after the last tick at which it
//     looked anything but clearly normal, so a slide below the threshold is never learned.
import { rankBackupChannels } from './backups.ts';
import { normalQuantile, wilsonInterval } from './stats.ts';
import {
  emptyTally,
  LATENCY_BINS,
  LATENCY_EDGES_MS,
  windowOf,
  type PairSignals,
  type SignalSet,
  type Tally,
} from './signals.ts';
import {
  thresholdAt,
  thresholdsFor,
  type PaymentHealthSettings,
  type PaymentHealthThresholds,
  windowConfidence,
} from './thresholds.ts';
import type {
  Assessment,
  BaselineState,
  Evidence,
  IncidentChange,
  IncidentKind,
  KindState,
  LatencyView,
  PairState,
  PaymentChannel,
  PaymentHealthState,
  ResolveReason,
  ShareView,
} from './types.ts';

export const DETECTOR = 'payment-health';
export const INCIDENT_KINDS: readonly IncidentKind[] = ['failures', 'slow'];

export interface PaymentHealthSignals {
  set: SignalSet;
  channels: readonly PaymentChannel[];
}

export interface PaymentHealthFindings {
  state: PaymentHealthState;
  changes: IncidentChange[];
  /** The current assessment of every pair, for `forewarn run` and for ops' eyes. */
  assessments: Map<string, Record<IncidentKind, Assessment>>;
  /**
   * Most pairs went silent at once: a data-feed fault. `started` and `ended` are set on the ticks
   * it begins and ends, so it is reported once; meanwhile no incident resolves as unobserved.
   */
  feed: {
    silent: boolean;
    started: boolean;
    ended: boolean;
    /** Since when it has been (or was, on the tick it ended) silent. */
    since: number | null;
    /** Pairs with no attempt for their silence time, of the pairs seen in the last day. */
    silentPairs: number;
    seenPairs: number;
  };
}

export function initialPaymentHealthState(): PaymentHealthState {
  return { evaluatedAt: null, pairs: {}, feedSilentSince: null };
}

const DAY_MS = 86_400_000;

export function detectPaymentHealth(
  signals: PaymentHealthSignals,
  previousState: PaymentHealthState,
  settings: PaymentHealthSettings,
  now: number,
): PaymentHealthFindings {
  const previous = upgradeState(previousState);
  const { set } = signals;
  const sortedKeys = [...new Set<string>([...set.pairs.keys(), ...Object.keys(previous.pairs)])].sort();
  const offered = offeredPairs(signals.channels);
  const assessments = new Map<string, Record<IncidentKind, Assessment>>();
  const nextPairs: Record<string, PairState> = {};

  for (const key of sortedKeys) {
    const sig = set.pairs.get(key);
    const prior = previous.pairs[key];
    const [channel, region] = prior ? [prior.channel, prior.region] : [sig!.channel, sig!.region];
    // A pair neither seen for a day nor open is forgotten: state stays the size of live traffic.
    if (!sig && prior && isIdle(prior) && (prior.lastSeenAt ?? 0) < now - DAY_MS) continue;
    const t = thresholdsFor(settings, channel, region);
    const pair = prior ?? newPairState(channel, region);
    const lastSeenAt = maxOrNull(pair.lastSeenAt, sig?.lastCreatedAt ?? null);
    assessments.set(key, {
      failures: assessShare(
        set,
        sig,
        t,
        'failures',
        baselineRate(pair.baseline, t, 'failures'),
        now,
        pair.kinds.failures.resolvedAt,
      ),
      slow: assessSlow(set, sig, t, pair.baseline, now, pair.kinds.slow.resolvedAt),
    });
    nextPairs[key] = { ...pair, lastSeenAt };
  }

  const silent = silentPairs(nextPairs, settings, now);
  const seenPairs = countRecentlySeen(nextPairs, now);
  const silentSeen = [...silent].filter(
    (key) => (nextPairs[key]!.lastSeenAt ?? -Infinity) >= now - DAY_MS,
  ).length;
  // Most pairs silent at once: one fault of the feed, not that many quiet channels.
  const feedSilent = silentSeen >= 2 && silentSeen * 2 > seenPairs;
  const feedSilentSince = feedSilent ? (previous.feedSilentSince ?? now) : null;

  const changes: IncidentChange[] = [];
  const opening: Array<{ key: string; kind: IncidentKind }> = [];
  for (const key of assessments.keys()) {
    const pair = nextPairs[key]!;
    const t = thresholdsFor(settings, pair.channel, pair.region);
    const assessed = assessments.get(key)!;
    const tickGap = previous.evaluatedAt !== null && now - previous.evaluatedAt > t.maxGapSeconds * 1000;
    const kinds = { ...pair.kinds };
    let baseline = pair.baseline;
    for (const kind of INCIDENT_KINDS) {
      const state = tickGap ? restartRuns(kinds[kind]) : kinds[kind];
      const open = state.open;
      const gone = !offered.has(key) || (!feedSilent && silent.has(key));
      if (open && gone) {
        kinds[kind] = { ...idleKind(), resolvedAt: now };
        changes.push(
          resolution(pair, kind, open, 'unobserved', noEvidence(assessed[kind], t, open.evidence), now),
        );
        continue;
      }
      if (open && relearnable(open, t, kind, now)) {
        kinds[kind] = { ...idleKind(), resolvedAt: now };
        baseline = relearned(baseline, kind, open.during);
        changes.push(
          resolution(pair, kind, open, 'relearned', evidenceOf(assessed[kind], t) ?? open.evidence, now),
        );
        continue;
      }
      const { next, transition } = step(state, assessed[kind], t, now);
      kinds[kind] = transition === 'resolve' ? { ...next, resolvedAt: now } : next;
      if (transition === 'open') opening.push({ key, kind });
      if (transition === 'resolve')
        changes.push(resolution(pair, kind, open!, 'recovered', evidenceOf(assessed[kind], t)!, now));
    }
    nextPairs[key] = { ...pair, baseline, kinds };
  }

  // One incident per pair at a time for users' sake: slowness is not opened while failures are
  // open or confirming, and both confirming at once open as failures.
  const toOpen = opening.filter(({ key, kind }) => {
    if (kind === 'failures') return true;
    const failures = nextPairs[key]!.kinds.failures;
    return (
      failures.open === null &&
      failures.degradedSince === null &&
      !opening.some((o) => o.key === key && o.kind === 'failures')
    );
  });
  for (const { key, kind } of opening) {
    if (toOpen.some((o) => o.key === key && o.kind === kind)) continue;
    // Held back: its confirmation starts again each tick, so it opens only once failures are over.
    const pair = nextPairs[key]!;
    pair.kinds = { ...pair.kinds, [kind]: { ...pair.kinds[kind], degradedSince: now, lastDegradedAt: now } };
  }

  // Backups are ranked once every pair's state for this tick is known, so that two channels
  // failing together in a region never name each other.
  for (const { key, kind } of toOpen) {
    const pair = nextPairs[key]!;
    const t = thresholdsFor(settings, pair.channel, pair.region);
    const backupChannels = rankBackupChannels({
      failing: pair.channel,
      region: pair.region,
      channels: signals.channels,
      settings,
      set,
      isHealthyNow: (candidate) => isHealthyNow(nextPairs[candidate], assessments.get(candidate)),
      baselineOf: (candidate) => {
        const p = nextPairs[candidate]!;
        return baselineRate(p.baseline, thresholdsFor(settings, p.channel, p.region), 'failures');
      },
    });
    const evidence = evidenceOf(assessments.get(key)![kind], t)!;
    pair.kinds = {
      ...pair.kinds,
      [kind]: {
        ...idleKind(),
        resolvedAt: pair.kinds[kind].resolvedAt,
        open: { openedAt: now, evidence, backupChannels, during: noDuring() },
      },
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

  for (const key of assessments.keys()) {
    const pair = nextPairs[key]!;
    const t = thresholdsFor(settings, pair.channel, pair.region);
    const settled = set.pairs.get(key)?.settled;
    const sig = set.pairs.get(key);
    const abnormal = INCIDENT_KINDS.some((kind) => {
      const k = pair.kinds[kind];
      const a = assessments.get(key)![kind];
      if (k.open !== null || k.degradedSince !== null || a.status === 'degraded') return true;
      return a.status !== 'unknown' && sig !== undefined && clearlyAbove(set, sig, t, kind, a.recoveredBelow);
    });
    const lastAbnormalAt = abnormal ? now : pair.lastAbnormalAt;
    let { baseline } = pair;
    const kinds = { ...pair.kinds };
    if (settled) {
      if (lastAbnormalAt === null || lastAbnormalAt < set.settledFrom) {
        baseline = learn(baseline, settled, t, previous.evaluatedAt, now);
      }
      for (const kind of INCIDENT_KINDS) {
        const open = kinds[kind].open;
        if (open)
          kinds[kind] = { ...kinds[kind], open: { ...open, during: addDuring(open.during, settled) } };
      }
    }
    nextPairs[key] = { ...pair, baseline, kinds, lastAbnormalAt };
  }

  changes.sort((a, b) => (a.type === b.type ? 0 : a.type === 'resolved' ? -1 : 1));
  return {
    state: { evaluatedAt: now, pairs: nextPairs, feedSilentSince },
    changes,
    assessments,
    feed: {
      silent: feedSilent,
      started: feedSilent && previous.feedSilentSince === null,
      ended: !feedSilent && previous.feedSilentSince !== null,
      since: feedSilentSince ?? previous.feedSilentSince,
      silentPairs: silentSeen,
      seenPairs,
    },
  };
}

/**
 * Judges one share of one pair (see the module comment). Exported for unit tests and for the
 * backups' proof.
 */
export function assessShare(
  set: SignalSet,
  sig: PairSignals | undefined,
  t: PaymentHealthThresholds,
  kind: IncidentKind,
  baseline: number,
  now: number,
  /** The last resolution: a window reaching back before it cannot prove (it holds the ended incident). */
  notBefore: number | null = null,
): Assessment {
  if (!sig) return { status: 'unknown', baseline };
  const limits = t[kind];
  const threshold = Math.min(1, thresholdAt(baseline, limits));
  const recoveredBelow = baseline + (threshold - baseline) / 2;
  const badTimes = sig.badUsers[kind];
  let current: ShareView | undefined;
  let proof: ShareView | undefined;
  for (const window of t.windows) {
    const tally = windowOf(set, sig, window.seconds);
    const { attempts, bad } = shareOf(tally, kind);
    if (attempts < window.minAttempts) continue;
    const confidence = windowConfidence(t, window.seconds, attempts);
    const { lower, upper } = wilsonInterval(bad, attempts, normalQuantile(confidence));
    const rate = bad / attempts;
    const users = countSince(badTimes, now - window.seconds * 1000);
    const view: ShareView = {
      windowSeconds: window.seconds,
      attempts,
      bad,
      rate,
      lower,
      upper,
      confidence,
      users,
    };
    current ??= view;
    // A window that looks healthy is fresher than any longer one: what they still hold is over.
    if (rate <= recoveredBelow) break;
    const afterResolution = notBefore === null || now - window.seconds * 1000 >= notBefore;
    if (bad >= limits.minCount && users >= limits.minUsers && lower > threshold && afterResolution) {
      proof = view;
      break;
    }
  }
  if (!current) return { status: 'unknown', baseline };
  const currentHealthy = current.rate <= recoveredBelow;
  const fresh = badTimes.length > 0 && badTimes[0]! >= now - t.freshSeconds * 1000;
  // The most recent attempts (the shortest window from recentSeconds on holding recentMinAttempts
  // of them) must still look as bad as the threshold: a finished blip, or the quiet half of
  // flapping, is proven but not happening. A pair too quiet for that relies on freshness.
  const recent = recentShare(set, sig, t, kind);
  const latest = latestShare(set, sig, t, kind);
  const stillHappening = latest === null || latest.bad / latest.attempts > threshold;
  // Towards resolving, a few failures in the current view are noise; a relapse that the most
  // recent attempts show (too few yet to be the current view) is not.
  const recovering =
    current.rate <= threshold &&
    wilsonInterval(current.bad, current.attempts, RECOVERY_NOISE_Z).lower <= recoveredBelow &&
    (recent === null || recent.bad / recent.attempts <= threshold);
  const degraded = proof !== undefined && fresh && stillHappening && !currentHealthy;
  // Proven, but the latest attempts are back at most halfway to the threshold: what was proven
  // is over. (Merely under the threshold is not enough: around the threshold, as in a slide,
  // the latest few attempts fall under it at every other tick.)
  const lapsed = proof !== undefined && latest !== null && latest.bad / latest.attempts <= recoveredBelow;
  return {
    status: degraded ? 'degraded' : currentHealthy ? 'healthy' : 'uncertain',
    currentHealthy,
    recovering,
    lapsed,
    baseline,
    threshold,
    recoveredBelow,
    view: degraded ? proof! : current,
    latency: null,
  };
}

/** The slow share, and the latency of confirmations against the pair's own learned median. */
function assessSlow(
  set: SignalSet,
  sig: PairSignals | undefined,
  t: PaymentHealthThresholds,
  baseline: BaselineState,
  now: number,
  notBefore: number | null,
): Assessment {
  const share = assessShare(set, sig, t, 'slow', baselineRate(baseline, t, 'slow'), now, notBefore);
  const latency = sig ? assessLatency(set, sig, t, baseline) : null;
  if (!latency) return share;
  // Degraded when, at the configured confidence, more than half of confirmations are that slow;
  // healthy again once at most a quarter are (hysteresis).
  const latencyDegraded = latency.lower > 0.5;
  const latencyHealthy = latency.above <= latency.confirmed / 4;
  if (share.status === 'unknown') {
    return {
      status: latencyDegraded ? 'degraded' : latencyHealthy ? 'healthy' : 'uncertain',
      currentHealthy: latencyHealthy,
      recovering: latencyHealthy,
      lapsed: false,
      baseline: share.baseline,
      threshold: Math.min(1, thresholdAt(share.baseline, t.slow)),
      recoveredBelow: share.baseline,
      view: null,
      latency,
    };
  }
  const currentHealthy = share.currentHealthy && latencyHealthy;
  const degraded = share.status === 'degraded' || (latencyDegraded && !currentHealthy);
  return {
    ...share,
    status: degraded ? 'degraded' : currentHealthy ? 'healthy' : 'uncertain',
    currentHealthy,
    recovering: share.recovering && latencyHealthy,
    latency,
  };
}

/** The shortest short window with enough confirmations, judged against the learned median. */
function assessLatency(
  set: SignalSet,
  sig: PairSignals,
  t: PaymentHealthThresholds,
  baseline: BaselineState,
): LatencyView | null {
  const limits = t.latency;
  const learned = sum(baseline.latency);
  if (learned < limits.minBaseline) return null;
  const baselineMs = quantileOfBins(baseline.latency, 0.5);
  const limitMs = Math.max(baselineMs * limits.factor, baselineMs + limits.minIncreaseMs);
  // Only bins entirely at or above the limit count, so the test never overstates.
  let firstBin = 0;
  while (firstBin < LATENCY_BINS && binLowerEdge(firstBin) < limitMs) firstBin++;
  const z = normalQuantile(t.confidence);
  for (const window of t.windows) {
    if (window.seconds > limits.maxWindowSeconds) break;
    const tally = windowOf(set, sig, window.seconds);
    if (tally.confirmed < limits.minConfirmed) continue;
    let above = 0;
    for (let i = firstBin; i < LATENCY_BINS; i++) above += tally.latency[i]!;
    const { lower } = wilsonInterval(above, tally.confirmed, z);
    return {
      windowSeconds: window.seconds,
      confirmed: tally.confirmed,
      above,
      lower,
      medianMs: Math.round(quantileOfBins(tally.latency, 0.5)),
      baselineMs: Math.round(baselineMs),
      limitMs: Math.round(limitMs),
    };
  }
  return null;
}

type Transition = 'open' | 'resolve' | null;

/**
 * One kind's state machine. Opening: degraded ticks lasting `confirmSeconds`, none more than
 * `maxGapSeconds` after the last; healthy ticks end the run, and so do ticks whose latest
 * attempts are back at most halfway though a longer window proves trouble; other uncertain ones (the share above halfway but not
 * proven, or a proof without fresh evidence) neither extend nor end it. Resolving: the current view recovering for
 * `resolveSeconds` without a break.
 */
function step(
  state: KindState,
  assessment: Assessment,
  t: PaymentHealthThresholds,
  now: number,
): { next: KindState; transition: Transition } {
  if (assessment.status === 'unknown') return { next: state, transition: null };
  if (state.open === null) {
    if (assessment.status === 'healthy')
      return { next: { ...state, degradedSince: null, lastDegradedAt: null }, transition: null };
    // Latest attempts back at most halfway under a longer window's proof (a blip that window
    // still holds) start confirmation again; other uncertain ticks neither extend nor end it.
    if (assessment.status === 'uncertain' && assessment.lapsed)
      return { next: { ...state, degradedSince: null, lastDegradedAt: null }, transition: null };
    if (assessment.status === 'uncertain') return { next: state, transition: null };
    const continues =
      state.degradedSince !== null &&
      state.lastDegradedAt !== null &&
      now - state.lastDegradedAt <= t.maxGapSeconds * 1000;
    const degradedSince = continues ? state.degradedSince! : now;
    if (now - degradedSince >= t.confirmSeconds * 1000) {
      // `open` is filled in by the caller once backups are ranked.
      return { next: { ...idleKind(), resolvedAt: state.resolvedAt }, transition: 'open' };
    }
    return { next: { ...state, degradedSince, lastDegradedAt: now }, transition: null };
  }
  if (!assessment.recovering) return { next: { ...state, healthySince: null }, transition: null };
  const healthySince = state.healthySince ?? now;
  if (now - healthySince >= t.resolveSeconds * 1000) return { next: idleKind(), transition: 'resolve' };
  return { next: { ...state, healthySince }, transition: null };
}

function restartRuns(state: KindState): KindState {
  return { ...state, degradedSince: null, lastDegradedAt: null, healthySince: null };
}

/** Healthy enough to suggest: nothing open or confirming, and both kinds healthy this tick. */
function isHealthyNow(
  pair: PairState | undefined,
  assessed: Record<IncidentKind, Assessment> | undefined,
): boolean {
  if (!pair || !assessed) return false;
  return INCIDENT_KINDS.every(
    (kind) =>
      pair.kinds[kind].open === null &&
      pair.kinds[kind].degradedSince === null &&
      assessed[kind].status === 'healthy',
  );
}

/** Decayed settled counts, so the baseline follows slow change but never an episode. */
function learn(
  baseline: BaselineState,
  settled: Tally,
  t: PaymentHealthThresholds,
  lastEvaluatedAt: number | null,
  now: number,
): BaselineState {
  const elapsed = lastEvaluatedAt === null ? 0 : Math.max(now - lastEvaluatedAt, 0);
  const decay = Math.pow(0.5, elapsed / (t.baseline.halfLifeMinutes * 60_000));
  return {
    finished: baseline.finished * decay + settled.finished,
    failures: baseline.failures * decay + settled.failures,
    timed: baseline.timed * decay + settled.timed,
    slow: baseline.slow * decay + settled.slow,
    latency: baseline.latency.map((v, i) => v * decay + (settled.latency[i] ?? 0)),
  };
}

export function baselineRate(
  baseline: BaselineState,
  t: PaymentHealthThresholds,
  kind: IncidentKind,
): number {
  const prior = t.baseline.priorWeight;
  const [bad, n] =
    kind === 'failures' ? [baseline.failures, baseline.finished] : [baseline.slow, baseline.timed];
  const rate = (bad + prior * t[kind].expectedRate) / (n + prior);
  return Math.min(rate, t.baseline.maxRate);
}

/** A lasting level that is not an outage (at most baseline.maxRate) becomes the pair's normal. */
function relearnable(
  open: { openedAt: number; during: { finished: number; failures: number; timed: number; slow: number } },
  t: PaymentHealthThresholds,
  kind: IncidentKind,
  now: number,
): boolean {
  if (now - open.openedAt < t.relearnAfterMinutes * 60_000) return false;
  const [bad, n] =
    kind === 'failures'
      ? [open.during.failures, open.during.finished]
      : [open.during.slow, open.during.timed];
  return n >= t.windows[0]!.minAttempts && bad / n <= t.baseline.maxRate;
}

function relearned(
  baseline: BaselineState,
  kind: IncidentKind,
  during: { finished: number; failures: number; timed: number; slow: number },
): BaselineState {
  return kind === 'failures'
    ? { ...baseline, finished: during.finished, failures: during.failures }
    : { ...baseline, timed: during.timed, slow: during.slow };
}

function resolution(
  pair: PairState,
  kind: IncidentKind,
  open: NonNullable<KindState['open']>,
  reason: ResolveReason,
  evidence: Evidence,
  now: number,
): IncidentChange {
  return {
    type: 'resolved',
    detector: DETECTOR,
    subject: { channel: pair.channel, region: pair.region },
    kind,
    openedAt: open.openedAt,
    at: now,
    reason,
    evidence,
    openEvidence: open.evidence,
    backupChannels: open.backupChannels,
  };
}

function evidenceOf(assessment: Assessment, t: PaymentHealthThresholds): Evidence | null {
  if (assessment.status === 'unknown') return null;
  const { view, latency } = assessment;
  if (!view && !latency) return null;
  const byLatency = !view || (assessment.status === 'degraded' && view.lower <= assessment.threshold);
  const share: ShareView =
    byLatency && latency
      ? {
          windowSeconds: latency.windowSeconds,
          attempts: latency.confirmed,
          bad: latency.above,
          rate: latency.above / latency.confirmed,
          lower: latency.lower,
          upper: 1,
          confidence: t.confidence,
          users: 0,
        }
      : view!;
  return {
    windowSeconds: share.windowSeconds,
    attempts: share.attempts,
    bad: share.bad,
    rate: round(share.rate),
    lowerBound: round(share.lower),
    upperBound: round(share.upper),
    baseline: round(assessment.baseline),
    threshold: round(assessment.threshold),
    confidence: share.confidence,
    users: share.users,
    medianLatencyMs: latency?.medianMs ?? null,
    baselineLatencyMs: latency?.baselineMs ?? null,
    topErrorCodes: [],
  };
}

/** Evidence of a pair that is no longer observed: what is left of it, or nothing. */
function noEvidence(assessment: Assessment, t: PaymentHealthThresholds, opened: Evidence): Evidence {
  return (
    evidenceOf(assessment, t) ?? {
      ...opened,
      windowSeconds: 0,
      attempts: 0,
      bad: 0,
      rate: 0,
      lowerBound: 0,
      upperBound: 1,
      users: 0,
      medianLatencyMs: null,
      topErrorCodes: [],
    }
  );
}

/**
 * Whether some window shows the share, at 95% confidence, above halfway to the threshold: then
 * the pair is not clearly normal and nothing is learned. The tightest window decides, so a slide
 * on a busy pair is caught early, while a quiet pair's chance failures (a wide interval) are
 * learned like its successes and its baseline stays unbiased.
 */
function clearlyAbove(
  set: SignalSet,
  sig: PairSignals,
  t: PaymentHealthThresholds,
  kind: IncidentKind,
  recoveredBelow: number,
): boolean {
  for (const window of t.windows) {
    const { attempts, bad } = shareOf(windowOf(set, sig, window.seconds), kind);
    if (attempts < window.minAttempts) continue;
    if (wilsonInterval(bad, attempts, NORMAL_GATE_Z).lower > recoveredBelow) return true;
  }
  return false;
}

const NORMAL_GATE_Z = normalQuantile(0.975);
/** How sure a relapse must be to break an open incident's healthy run (one-sided 95%). */
const RECOVERY_NOISE_Z = normalQuantile(0.95);

/**
 * The share of the latest attempts, for "still happening": the shortest window from
 * recentSeconds in which recentMinAttempts attempts were created, judged on those of them known
 * by now if that is at least half (else a longer window). Counting created attempts keeps the
 * judgement on the last few attempts of a medium pair, whose known ones alone would often be too
 * few and send it to a long window still holding a blip.
 */
function latestShare(
  set: SignalSet,
  sig: PairSignals,
  t: PaymentHealthThresholds,
  kind: IncidentKind,
): { attempts: number; bad: number } | null {
  for (const seconds of recentLengths(t)) {
    const tally = windowOf(set, sig, seconds);
    if (tally.created < t.recentMinAttempts) continue;
    const share = shareOf(tally, kind);
    if (share.attempts > 0 && share.attempts * 2 >= tally.created) return share;
  }
  return null;
}

function recentShare(
  set: SignalSet,
  sig: PairSignals,
  t: PaymentHealthThresholds,
  kind: IncidentKind,
): { attempts: number; bad: number } | null {
  for (const seconds of recentLengths(t)) {
    const share = shareOf(windowOf(set, sig, seconds), kind);
    if (share.attempts >= t.recentMinAttempts) return share;
  }
  return null;
}

const recentLengthsCache = new WeakMap<PaymentHealthThresholds, number[]>();

function recentLengths(t: PaymentHealthThresholds): number[] {
  let lengths = recentLengthsCache.get(t);
  if (!lengths) {
    lengths = [...new Set([t.recentSeconds, ...t.windows.map((w) => w.seconds)])]
      .filter((s) => s >= t.recentSeconds)
      .sort((a, b) => a - b);
    recentLengthsCache.set(t, lengths);
  }
  return lengths;
}

function shareOf(tally: Tally, kind: IncidentKind): { attempts: number; bad: number } {
  return kind === 'failures'
    ? { attempts: tally.finished, bad: tally.failures }
    : { attempts: tally.timed, bad: tally.slow };
}

function countSince(newestFirst: readonly number[], since: number): number {
  let n = 0;
  while (n < newestFirst.length && newestFirst[n]! >= since) n++;
  return n;
}

/** Pairs whose incidents may resolve as unobserved: no attempt for their silence time. */
function silentPairs(
  pairs: Record<string, PairState>,
  settings: PaymentHealthSettings,
  now: number,
): Set<string> {
  const silent = new Set<string>();
  for (const [key, pair] of Object.entries(pairs)) {
    const t = thresholdsFor(settings, pair.channel, pair.region);
    if (pair.lastSeenAt === null || now - pair.lastSeenAt >= t.silenceMinutes * 60_000) silent.add(key);
  }
  return silent;
}

function countRecentlySeen(pairs: Record<string, PairState>, now: number): number {
  return Object.values(pairs).filter((p) => p.lastSeenAt !== null && p.lastSeenAt >= now - DAY_MS).length;
}

function offeredPairs(channels: readonly PaymentChannel[]): { has(key: string): boolean } {
  const byId = new Map(channels.map((c) => [c.id, c]));
  return {
    has(key: string) {
      const at = key.indexOf(':');
      const channel = byId.get(key.slice(0, at));
      const region = key.slice(at + 1);
      return (
        channel !== undefined &&
        channel.enabled &&
        (channel.regions.includes('*') || channel.regions.includes(region))
      );
    },
  };
}

/** Median (or any quantile) of binned latencies, interpolated geometrically within a bin. */
export function quantileOfBins(bins: readonly number[], q: number): number {
  const total = sum(bins);
  if (total <= 0) return 0;
  let target = q * total;
  for (let i = 0; i < bins.length; i++) {
    const count = bins[i]!;
    if (count > 0 && target <= count) {
      const lo = Math.max(binLowerEdge(i), 125);
      const hi = i < LATENCY_EDGES_MS.length ? LATENCY_EDGES_MS[i]! : lo * Math.SQRT2;
      return lo * Math.pow(hi / lo, target / count);
    }
    target -= count;
  }
  return LATENCY_EDGES_MS[LATENCY_EDGES_MS.length - 1]!;
}

function binLowerEdge(bin: number): number {
  return bin === 0 ? 0 : LATENCY_EDGES_MS[bin - 1]!;
}

function sum(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}

function addDuring(d: { finished: number; failures: number; timed: number; slow: number }, t: Tally) {
  return {
    finished: d.finished + t.finished,
    failures: d.failures + t.failures,
    timed: d.timed + t.timed,
    slow: d.slow + t.slow,
  };
}

function noDuring() {
  return { finished: 0, failures: 0, timed: 0, slow: 0 };
}

function idleKind(): KindState {
  return { degradedSince: null, lastDegradedAt: null, healthySince: null, open: null, resolvedAt: null };
}

function isIdle(pair: PairState): boolean {
  return INCIDENT_KINDS.every((kind) => pair.kinds[kind].open === null);
}

function newPairState(channel: string, region: string): PairState {
  return {
    channel,
    region,
    baseline: { finished: 0, failures: 0, timed: 0, slow: 0, latency: emptyTally().latency },
    kinds: { failures: idleKind(), slow: idleKind() },
    lastSeenAt: null,
    lastAbnormalAt: null,
  };
}

function maxOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/**
 * State stored by an earlier release (baselines of {attempts, failures, slow}, kinds without
 * lastDegradedAt, open incidents without their settled counts) read as this release's shape, so
 * an upgrade in place keeps open incidents and learned baselines.
 */
export function upgradeState(raw: PaymentHealthState): PaymentHealthState {
  const pairs: Record<string, PairState> = {};
  for (const [key, p] of Object.entries(raw.pairs ?? {})) {
    const old = p.baseline as unknown as Partial<BaselineState> & { attempts?: number };
    const baseline: BaselineState = {
      finished: old.finished ?? old.attempts ?? 0,
      failures: old.failures ?? 0,
      timed: old.timed ?? old.attempts ?? 0,
      slow: old.slow ?? 0,
      latency:
        Array.isArray(old.latency) && old.latency.length === LATENCY_BINS
          ? old.latency
          : emptyTally().latency,
    };
    const kinds = {} as Record<IncidentKind, KindState>;
    for (const kind of INCIDENT_KINDS) {
      const k = (p.kinds?.[kind] ?? idleKind()) as Partial<KindState>;
      const open = k.open ? { ...k.open, during: k.open.during ?? noDuring() } : null;
      kinds[kind] = {
        degradedSince: k.degradedSince ?? null,
        lastDegradedAt: k.lastDegradedAt ?? k.degradedSince ?? null,
        healthySince: k.healthySince ?? null,
        open,
        resolvedAt: k.resolvedAt ?? null,
      };
    }
    pairs[key] = {
      channel: p.channel,
      region: p.region,
      baseline,
      kinds,
      lastSeenAt: p.lastSeenAt ?? raw.evaluatedAt ?? null,
      lastAbnormalAt: p.lastAbnormalAt ?? null,
    };
  }
  return { evaluatedAt: raw.evaluatedAt ?? null, pairs, feedSilentSince: raw.feedSilentSince ?? null };
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
