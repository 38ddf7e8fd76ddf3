// What the payment-health detector sees of a pair at one tick: counts of attempts in windows of
// creation time that end at `now`, each counted only for what was known of it at `now`.
//
// An attempt is known in steps. Its finish (and so whether it failed) is known once it has
// finished, and only if it finished within the settle horizon: an attempt still pending then is
// judged as pending for good, so a live tick and a backtest of the stored rows agree. Its speed
// is judged at the slow threshold (slow if not finished by then), and a success's latency is
// counted at its finish but not before the slow threshold, so that no window leaves out its
// young slow attempts while counting its young fast ones.
// Counting by creation time keeps an outage's evidence within the outage: a 30 s blip whose
// timeouts are reported 30 s later is still 30 s of bad attempts.

export const BUCKET_MS = 5_000;

/**
 * Upper edges of the latency bins (ms): bin 0 holds latencies below 250 ms, bin i those in
 * [edge[i-1], edge[i]), the last bin those from 64 s. Edges grow by √2 and are whole numbers,
 * so the SQL reader and the in-memory one put every latency in the same bin.
 */
export const LATENCY_EDGES_MS: readonly number[] = Array.from({ length: 17 }, (_, i) =>
  Math.round(250 * Math.SQRT2 ** i),
);
export const LATENCY_BINS = LATENCY_EDGES_MS.length + 1;

/** The bin of a latency: how many edges are at or below it. */
export function latencyBin(ms: number): number {
  let bin = 0;
  while (bin < LATENCY_EDGES_MS.length && LATENCY_EDGES_MS[bin]! <= ms) bin++;
  return bin;
}

/** What is known, at one moment, of the attempts created in some span of time. */
export interface Tally {
  /** Attempts created in the span, known or not. */
  created: number;
  /** Finished (final status known): the failure share's denominator. */
  finished: number;
  /** Finished as failed or timeout. */
  failures: number;
  /** Past the slow threshold (speed judged): the slow share's denominator. */
  timed: number;
  /** Not finished within the slow threshold. */
  slow: number;
  /** Succeeded and past the slow threshold, with a latency, binned in `latency`. */
  confirmed: number;
  latency: number[];
}

export function emptyTally(): Tally {
  return {
    created: 0,
    finished: 0,
    failures: 0,
    timed: 0,
    slow: 0,
    confirmed: 0,
    latency: new Array<number>(LATENCY_BINS).fill(0),
  };
}

export function addTally(into: Tally, other: Tally, sign = 1): void {
  into.created += sign * other.created;
  into.finished += sign * other.finished;
  into.failures += sign * other.failures;
  into.timed += sign * other.timed;
  into.slow += sign * other.slow;
  into.confirmed += sign * other.confirmed;
  for (let i = 0; i < LATENCY_BINS; i++) into.latency[i]! += sign * (other.latency[i] ?? 0);
}

export function copyTally(t: Tally): Tally {
  return { ...t, latency: [...t.latency] };
}

export interface PairSignals {
  channel: string;
  region: string;
  /** One tally per window length of the signal set, for attempts created in [now - length, now). */
  windows: readonly Tally[];
  /** Attempts that settled since the last tick (created in [settledFrom, now - settle)): what baselines learn. */
  settled: Tally;
  /**
   * Per kind, the creation times of the latest bad attempt of up to K distinct users, newest
   * first (K is the largest minUsers in force): how many users the bad attempts of a window
   * come from, and how fresh the newest one is.
   */
  badUsers: { failures: readonly number[]; slow: readonly number[] };
  /** Creation time of the pair's newest attempt in the longest window, or null if none. */
  lastCreatedAt: number | null;
}

export interface SignalSet {
  now: number;
  /** Window lengths in seconds, shortest first, matching every PairSignals.windows. */
  lengths: readonly number[];
  settledFrom: number;
  pairs: ReadonlyMap<string, PairSignals>;
}

export function pairKey(channel: string, region: string): string {
  return `${channel}:${region}`;
}

/** The tally of a window length, or an empty one if the set does not hold that length. */
export function windowOf(set: SignalSet, pair: PairSignals, seconds: number): Tally {
  const i = set.lengths.indexOf(seconds);
  return i < 0 ? EMPTY : pair.windows[i]!;
}

const EMPTY: Tally = Object.freeze(emptyTally()) as Tally;

/**
 * Where the settled slice of this tick starts: right after the last tick's, or, without one (a
 * first tick, or after a long gap), one longest window before the horizon.
 */
export function settledFromFor(
  evaluatedAt: number | null,
  now: number,
  settleMs: number,
  windowMs: number,
): number {
  const earliest = now - settleMs - windowMs;
  const from = evaluatedAt === null ? earliest : evaluatedAt - settleMs;
  return Math.min(Math.max(from, earliest), now - settleMs);
}
