// The error-spikes detector, pure: a tick's occurrences of error codes, each code's counts from
// earlier ticks and the open incidents in, each code's new counts and the incidents to open or
// resolve out. No I/O, no clock of its own.
//
// Two rules, each at most one open incident per code:
//  - count: a code that is normally rare (its usual count per window, over the baseline weeks
//    before the window, is below the threshold) reaching the threshold in the rolling window;
//    it resolves when the rolling count falls under threshold x resolveRatio;
//  - surge: a code whose count in the recent window is at least minCount, at least `factor`
//    times what its baseline expects and, at `confidence`, more than a Poisson count at the
//    baseline's rate would reach; it resolves when the recent count is back within what the
//    baseline explains at `resolveConfidence`.
// A steady code is its own baseline and opens nothing; expected codes never open, and an open
// incident of a code that became expected resolves.
import {
  CountsBuilder,
  compareIds,
  copyCounts,
  emptyCounts,
  isEmpty,
  topPlaces,
  viewOf,
  type CodeCounts,
  type PlacedOccurrences,
} from './counts.ts';
import { poissonUpperTail } from './poisson.ts';
import { DAY, HOUR, horizonsAt, MINUTE, type ErrorSpikesThresholds, type Horizons } from './settings.ts';

export const DETECTOR = 'error-spikes';
export const RULES = ['count', 'surge'] as const;
export type Rule = (typeof RULES)[number];
/** Ticks are evaluated at whole minutes. */
export const BUCKET_MS = MINUTE;

/** Occurrences by code, creation bucket, channel and region, and example attempt ids by code. */
export interface TickOccurrences {
  occurrences: PlacedOccurrences[];
  examples: Record<string, string[]>;
}

/** Occurrences read this tick: `settled` ones join the code's counts, `recent` ones only this tick's view. */
export interface ErrorSpikesSignals {
  /**
   * The reading the stored counts belong to: when the reader had to read the whole range again
   * (first tick, changed windows, a long gap), a new epoch, and counts of an older one are dropped.
   */
  epoch: number;
  /**
   * Counts are known from here: the first full reading's start, or the platform's first attempt
   * when that is later. Time before it is not held against a code (nor for it).
   */
  knownFrom: number;
  settled: TickOccurrences;
  recent: TickOccurrences;
  /** Stored counts of the codes to evaluate (codes seen this tick, open ones, the sweep's page). */
  counts: Record<string, CodeCounts>;
  /** Codes whose stored counts were read without new occurrences (the sweep): evaluated too. */
  swept: string[];
  /** The incidents open now. */
  open: Array<{ code: string; rule: Rule; openedAt: number }>;
}

/** The detector-wide state (forewarn.detector_state): codes keep theirs in forewarn.subject_state. */
export interface ErrorSpikesState {
  v: 1;
}

export function initialErrorSpikesState(): ErrorSpikesState {
  return { v: 1 };
}

export function upgradeState(stored: ErrorSpikesState): ErrorSpikesState {
  return stored && stored.v === 1 ? stored : initialErrorSpikesState();
}

export interface SpikeEvidence {
  /** Occurrences in the rule's window now. */
  countNow: number;
  /**
   * What the code usually has in a window of that length: count, its mean over the baseline
   * weeks; surge, what its baseline rate expects (at least minBaselinePerHour).
   */
  countBefore: number;
  windowMinutes: number;
  /** Minutes of history countBefore rests on. */
  baselineMinutes: number;
  /** count: the threshold; surge: the smallest count that opens. */
  openAt: number;
  /** The count is calm again at or under this (count: under threshold x resolveRatio, exclusive). */
  calmAt: number;
  /** surge: P(a count this high | the baseline); null for count. */
  pValue: number | null;
  topChannels: Array<{ channel: string; count: number }>;
  topRegions: Array<{ region: string; count: number }>;
  /** Newest first. */
  exampleAttemptIds: string[];
}

interface ChangeBase {
  detector: typeof DETECTOR;
  subjectKey: string;
  subject: { code: string };
  code: string;
  kind: Rule;
  at: number;
  evidence: SpikeEvidence;
}
export interface SpikeOpened extends ChangeBase {
  type: 'opened';
}
export interface SpikeResolved extends ChangeBase {
  type: 'resolved';
  /** calmed: the count fell back; expected: the code is listed in expectedCodes now. */
  reason: 'calmed' | 'expected';
  openedAt: number;
}
export type SpikeChange = SpikeOpened | SpikeResolved;

export interface CodeAssessment {
  code: string;
  count: SpikeEvidence;
  surge: SpikeEvidence;
  open: Rule[];
}

export interface ErrorSpikesFindings {
  state: ErrorSpikesState;
  /** Each evaluated code's counts to save (null: nothing left to remember, delete its row). */
  saved: Array<{ code: string; counts: CodeCounts | null }>;
  changes: SpikeChange[];
  /** Evaluated codes with occurrences in the count window, busiest first. */
  assessments: CodeAssessment[];
}

function groupByCode<T extends { code: string }>(list: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of list) {
    let group = out.get(item.code);
    if (!group) out.set(item.code, (group = []));
    group.push(item);
  }
  return out;
}

function addOccurrences(
  builder: CountsBuilder,
  occurrences: readonly PlacedOccurrences[] | undefined,
  examples: readonly string[] | undefined,
  exampleLimit: number,
): void {
  for (const o of occurrences ?? []) {
    builder.count(o.at, o.n);
    builder.place(o.at, { [o.channel]: o.n }, { [o.region]: o.n });
  }
  if (examples) builder.noteExamples(examples, exampleLimit);
}

export function detectErrorSpikes(
  signals: ErrorSpikesSignals,
  previous: ErrorSpikesState,
  settings: ErrorSpikesThresholds,
  now: number,
): ErrorSpikesFindings {
  const h = horizonsAt(settings, now);
  const expected = new Set(settings.expectedCodes);
  const settled = groupByCode(signals.settled.occurrences);
  const recent = groupByCode(signals.recent.occurrences);
  const openByCode = new Map<string, Map<Rule, number>>();
  for (const o of signals.open) {
    let rules = openByCode.get(o.code);
    if (!rules) openByCode.set(o.code, (rules = new Map()));
    rules.set(o.rule, o.openedAt);
  }
  const codes = new Set<string>([
    ...settled.keys(),
    ...recent.keys(),
    ...openByCode.keys(),
    ...signals.swept,
  ]);

  const saved: ErrorSpikesFindings['saved'] = [];
  const changes: SpikeChange[] = [];
  const assessments: CodeAssessment[] = [];
  const exampleLimit = settings.evidence.exampleIds;
  for (const code of [...codes].sort()) {
    const stored = signals.counts[code];
    const base =
      stored && stored.v === 1 && stored.epoch === signals.epoch ? stored : emptyCounts(signals.epoch);
    const builder = new CountsBuilder(base, h);
    addOccurrences(builder, settled.get(code), signals.settled.examples[code], exampleLimit);
    const kept = builder.done();
    saved.push({ code, counts: isEmpty(kept) ? null : kept });

    const viewBuilder = new CountsBuilder(copyCounts(kept), h);
    addOccurrences(viewBuilder, recent.get(code), signals.recent.examples[code], exampleLimit);
    const seen = viewBuilder.done();
    const count = countEvidence(seen, signals.knownFrom, settings, h);
    const surge = surgeEvidence(seen, signals.knownFrom, settings, h);
    const open = openByCode.get(code) ?? new Map<Rule, number>();
    const subject = { detector: DETECTOR, subjectKey: code, subject: { code }, code, at: now } as const;

    // [rule, evidence, opens, calm]
    const rules: Array<[Rule, SpikeEvidence, boolean, boolean]> = [
      [
        'count',
        count.evidence,
        count.rare && count.evidence.countNow >= count.evidence.openAt,
        count.evidence.countNow < count.evidence.calmAt,
      ],
      [
        'surge',
        surge.evidence,
        surge.known && surge.evidence.countNow >= surge.evidence.openAt,
        surge.evidence.countNow <= surge.evidence.calmAt,
      ],
    ];
    for (const [rule, evidence, opens, calm] of rules) {
      const openedAt = open.get(rule);
      if (openedAt !== undefined) {
        if (expected.has(code))
          changes.push({ ...subject, kind: rule, type: 'resolved', reason: 'expected', openedAt, evidence });
        else if (calm)
          changes.push({ ...subject, kind: rule, type: 'resolved', reason: 'calmed', openedAt, evidence });
      } else if (opens && !expected.has(code)) {
        changes.push({ ...subject, kind: rule, type: 'opened', evidence });
      }
    }
    if (count.evidence.countNow > 0 || open.size > 0)
      assessments.push({ code, count: count.evidence, surge: surge.evidence, open: [...open.keys()] });
  }
  assessments.sort((a, b) => b.count.countNow - a.count.countNow || (a.code < b.code ? -1 : 1));
  return { state: upgradeState(previous), saved, changes, assessments };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function examplesOf(c: CodeCounts, limit: number): string[] {
  return [...c.examples].sort((a, b) => compareIds(b, a)).slice(0, limit);
}

function countEvidence(
  c: CodeCounts,
  knownFrom: number,
  settings: ErrorSpikesThresholds,
  h: Horizons,
): { evidence: SpikeEvidence; rare: boolean } {
  const view = viewOf(c);
  const windowMs = settings.count.windowDays * DAY;
  // The baseline weeks that forewarn has counted (a day bucket holds the hours before windowFrom).
  const coveredMs = Math.max(0, h.windowFrom - Math.max(h.baselineFrom, knownFrom));
  const usual = coveredMs > 0 ? (view.beforeWindow * windowMs) / coveredMs : 0;
  const threshold = settings.count.threshold;
  const evidence: SpikeEvidence = {
    countNow: view.inWindow,
    countBefore: round1(usual),
    windowMinutes: settings.count.windowDays * 24 * 60,
    baselineMinutes: Math.round(coveredMs / MINUTE),
    openAt: threshold,
    calmAt: threshold * settings.count.resolveRatio,
    pValue: null,
    ...topPlaces(c.dayPlaces, settings.evidence.topPlaces),
    exampleAttemptIds: examplesOf(c, settings.evidence.exampleIds),
  };
  // A young platform's codes are not known to be rare.
  return { evidence, rare: coveredMs >= settings.count.minHistoryDays * DAY && usual < threshold };
}

/** The smallest count n with P(X >= n | mean) <= alpha. */
function poissonCritical(mean: number, alpha: number): number {
  let lo = 0;
  let hi = Math.max(1, Math.ceil(mean * 2 + 10));
  while (poissonUpperTail(hi, mean) > alpha) hi *= 2;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (poissonUpperTail(mid, mean) <= alpha) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function surgeEvidence(
  c: CodeCounts,
  knownFrom: number,
  settings: ErrorSpikesThresholds,
  h: Horizons,
): { evidence: SpikeEvidence; known: boolean } {
  const view = viewOf(c);
  const s = settings.surge;
  const windowMs = s.windowMinutes * MINUTE;
  const coveredMs = Math.max(0, h.surgeFrom - Math.max(h.windowFrom, knownFrom));
  const rate = coveredMs > 0 ? view.beforeSurge / coveredMs : 0;
  const mean = Math.max(rate, s.minBaselinePerHour / HOUR) * windowMs;
  const openAt = Math.max(
    s.minCount,
    Math.ceil(s.factor * mean - 1e-9),
    poissonCritical(mean, 1 - s.confidence),
  );
  // Calm: at or under the count the baseline reaches with probability 1 - resolveConfidence or more.
  const calmAt = poissonCritical(mean, 1 - s.resolveConfidence) - 1;
  const evidence: SpikeEvidence = {
    countNow: view.inSurgeWindow,
    countBefore: round1(mean),
    windowMinutes: s.windowMinutes,
    baselineMinutes: Math.round(coveredMs / MINUTE),
    openAt,
    calmAt,
    pValue: poissonUpperTail(view.inSurgeWindow, mean),
    ...topPlaces(c.minutePlaces, settings.evidence.topPlaces),
    exampleAttemptIds: examplesOf(c, settings.evidence.exampleIds),
  };
  // Without enough baseline, nothing is known to be unusual.
  return { evidence, known: coveredMs >= s.minBaselineMinutes * MINUTE };
}
