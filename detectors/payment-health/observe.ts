// The observation model in memory: when each part of an attempt's outcome becomes known, and a
// streaming builder that turns attempts (in creation order) into the signal set of each tick.
// lib/platform/payment-attempts.ts computes the very same numbers in SQL for live ticks; a test
// checks the two agree. Backtests and unit tests use this one, so they need no database.
import {
  addTally,
  BUCKET_MS,
  copyTally,
  emptyTally,
  latencyBin,
  pairKey,
  type PairSignals,
  type SignalSet,
  type Tally,
} from './signals.ts';

export type AttemptStatus = 'succeeded' | 'failed' | 'pending' | 'timeout';

/** A payment attempt as the platform stores it (times in epoch ms). */
export interface ObservedAttempt {
  channel: string;
  region: string;
  userId: string;
  status: AttemptStatus;
  createdAt: number;
  /** Null while pending; a final row without it is read as finished at created_at (+ latency). */
  finishedAt: number | null;
  latencyMs: number | null;
  errorCode: string | null;
}

export interface Outcome {
  /** When its finish became known; null if it did not finish within the settle horizon. */
  finishKnownAt: number | null;
  failed: boolean;
  /**
   * When its speed is judged: at the slow threshold, when every attempt created alongside it is
   * judged too. (Judging the fast ones at their finish would leave a window's young slow ones
   * out and bias its slow share low.)
   */
  speedKnownAt: number;
  slow: boolean;
  /** The latency bin of a success, or null, and when it is counted: at its finish, but not before the slow threshold, for the same reason. */
  latencyBin: number | null;
  latencyKnownAt: number | null;
}

/** The contract's reading of a row: when it finished, if it did. */
export function effectiveFinish(a: ObservedAttempt): number | null {
  if (a.status === 'pending') return null;
  const at = a.finishedAt ?? a.createdAt + (a.status === 'succeeded' ? (a.latencyMs ?? 0) : 0);
  return Math.max(at, a.createdAt);
}

export function outcomeOf(a: ObservedAttempt, slowAfterMs: number, settleMs: number): Outcome {
  const finish = effectiveFinish(a);
  const finishKnownAt = finish !== null && finish <= a.createdAt + settleMs ? finish : null;
  const slowAt = a.createdAt + slowAfterMs;
  const fast = finishKnownAt !== null && finishKnownAt <= slowAt;
  const succeeded = a.status === 'succeeded' && finishKnownAt !== null;
  return {
    finishKnownAt,
    failed: a.status === 'failed' || a.status === 'timeout',
    speedKnownAt: slowAt,
    slow: !fast,
    latencyBin: succeeded ? latencyBin(a.latencyMs ?? finishKnownAt - a.createdAt) : null,
    latencyKnownAt: succeeded ? Math.max(finishKnownAt, slowAt) : null,
  };
}

export interface SignalBuilderOptions {
  /** Window lengths in seconds, shortest first. */
  lengths: readonly number[];
  settleMs: number;
  slowAfterMs: (channel: string, region: string) => number;
  /** How many distinct bad users to keep per pair and kind (the largest minUsers). */
  maxUsers: number;
}

/** One attempt whose finish or speed is not known yet. */
interface Pending {
  pair: PairTrack;
  bucket: number;
  createdAt: number;
  userId: string;
  errorCode: string | null;
  outcome: Outcome;
}

interface PairTrack {
  channel: string;
  region: string;
  slowAfterMs: number;
  buckets: Map<number, Tally>;
  /** Error codes of known failures per bucket, for the evidence of an incident. */
  codes: Map<number, Map<string, number>>;
  sums: Tally[];
  badUsers: { failures: Array<[string, number]>; slow: Array<[string, number]> };
  lastCreatedAt: number | null;
}

/**
 * Builds each tick's signals from attempts streamed in creation order, with memory bounded by the
 * longest window: per pair, 5-second buckets of what is known so far, running sums per window,
 * and a queue of outcomes not yet known. Call `add` for every attempt created before a tick, then
 * `at(tick)`; ticks must not go backwards.
 */
export class SignalBuilder {
  private readonly options: SignalBuilderOptions;
  private readonly pairs = new Map<string, PairTrack>();
  /** Finishes and speeds not yet known, by the 5-second slot in which they become known. */
  private readonly finishes = new Map<number, Pending[]>();
  private readonly speeds = new Map<number, Pending[]>();
  private readonly latencies = new Map<number, Pending[]>();
  private processedSlot = -Infinity;
  private evictedBelow = -Infinity;
  private readonly keepMs: number;
  private now = -Infinity;

  constructor(options: SignalBuilderOptions) {
    this.options = options;
    const longest = Math.max(...options.lengths) * 1000;
    this.keepMs = longest + options.settleMs + BUCKET_MS;
  }

  add(a: ObservedAttempt): void {
    if (a.createdAt < this.now) {
      throw new RangeError(
        `SignalBuilder.add: attempt created at ${a.createdAt} (epoch ms) is older than the last tick ${this.now}; expected attempts in creation order`,
      );
    }
    const key = pairKey(a.channel, a.region);
    let pair = this.pairs.get(key);
    if (!pair) {
      pair = {
        channel: a.channel,
        region: a.region,
        slowAfterMs: this.options.slowAfterMs(a.channel, a.region),
        buckets: new Map(),
        codes: new Map(),
        sums: this.options.lengths.map(() => emptyTally()),
        badUsers: { failures: [], slow: [] },
        lastCreatedAt: null,
      };
      this.pairs.set(key, pair);
    }
    const outcome = outcomeOf(a, pair.slowAfterMs, this.options.settleMs);
    const bucket = Math.floor(a.createdAt / BUCKET_MS);
    const pending: Pending = {
      pair,
      bucket,
      createdAt: a.createdAt,
      userId: a.userId,
      errorCode: a.errorCode,
      outcome,
    };
    // Its creation is known at once: it precedes the next tick, so it lies in every window then.
    pair.lastCreatedAt = a.createdAt;
    let tally = pair.buckets.get(bucket);
    if (!tally) pair.buckets.set(bucket, (tally = emptyTally()));
    tally.created++;
    for (const sum of pair.sums) sum.created++;
    // Known by the next tick at the latest: never in a slot that has been drained already (a
    // final row without finished_at is known at its creation, which may be the last tick).
    const next = this.processedSlot + 1;
    if (outcome.finishKnownAt !== null) schedule(this.finishes, outcome.finishKnownAt, next, pending);
    schedule(this.speeds, outcome.speedKnownAt, next, pending);
    if (outcome.latencyKnownAt !== null) schedule(this.latencies, outcome.latencyKnownAt, next, pending);
  }

  /** The signal set at `now` (a multiple of 5 s), with the settled slice from `settledFrom`. */
  at(now: number, settledFrom: number): SignalSet {
    if (now < this.now) throw new RangeError('SignalBuilder.at: ticks must not go backwards');
    const { lengths, settleMs } = this.options;
    const prev = this.now;
    const nowBucket = Math.floor(now / BUCKET_MS);
    const longest = Math.max(...lengths) * 1000;
    // Buckets that left a window take out what the window had of them. On the first tick the
    // windows are summed afresh: creations were counted into every window as they came.
    if (prev === -Infinity) {
      for (const pair of this.pairs.values()) {
        lengths.forEach((seconds, i) => {
          const sum = emptyTally();
          for (const [b, t] of pair.buckets)
            if (b >= nowBucket - seconds / 5 && b < nowBucket) addTally(sum, t);
          pair.sums[i] = sum;
        });
      }
    } else {
      const prevBucket = Math.floor(prev / BUCKET_MS);
      for (const pair of this.pairs.values()) {
        lengths.forEach((seconds, i) => {
          const from = prevBucket - seconds / 5;
          const to = nowBucket - seconds / 5;
          if (to - from > pair.buckets.size) {
            for (const [b, t] of pair.buckets) if (b >= from && b < to) addTally(pair.sums[i]!, t, -1);
          } else {
            for (let b = from; b < to; b++) {
              const t = pair.buckets.get(b);
              if (t) addTally(pair.sums[i]!, t, -1);
            }
          }
        });
      }
    }
    this.now = now;
    // What became known at or before now: the slots up to now's (now is a multiple of a slot).
    const nowSlot = Math.floor(now / BUCKET_MS);
    for (const [slots, apply] of [
      [this.finishes, (p: Pending) => this.finish(p, nowBucket)],
      [this.speeds, (p: Pending) => this.speed(p, nowBucket)],
      [this.latencies, (p: Pending) => this.latency(p, nowBucket)],
    ] as const) {
      const due =
        this.processedSlot === -Infinity || nowSlot - this.processedSlot > slots.size
          ? [...slots.keys()].filter((slot) => slot <= nowSlot).sort((x, y) => x - y)
          : Array.from({ length: nowSlot - this.processedSlot }, (_, i) => this.processedSlot + 1 + i);
      for (const slot of due) {
        const list = slots.get(slot);
        if (!list) continue;
        slots.delete(slot);
        for (const p of list) apply(p);
      }
    }
    this.processedSlot = nowSlot;

    const settledTo = Math.floor((now - settleMs) / BUCKET_MS);
    const settledFromBucket = Math.floor(settledFrom / BUCKET_MS);
    const pairs = new Map<string, PairSignals>();
    // A pair is in the set while it has attempts in the longest window or the settled slice, as
    // the SQL reader sees it; bad users older than the longest window are not reported.
    const fromBucket = Math.min(nowBucket - longest / BUCKET_MS, settledFromBucket);
    for (const [key, pair] of this.pairs) {
      let present = false;
      for (const b of pair.buckets.keys()) {
        if (b >= fromBucket && b < nowBucket) {
          present = true;
          break;
        }
      }
      if (!present) continue;
      const settled = emptyTally();
      for (let b = settledFromBucket; b < settledTo; b++) {
        const t = pair.buckets.get(b);
        if (t) addTally(settled, t);
      }
      const last =
        pair.lastCreatedAt !== null && pair.lastCreatedAt >= now - longest ? pair.lastCreatedAt : null;
      pairs.set(key, {
        channel: pair.channel,
        region: pair.region,
        windows: pair.sums.map(copyTally),
        settled,
        badUsers: {
          failures: pair.badUsers.failures.map(([, at]) => at).filter((at) => at >= now - longest),
          slow: pair.badUsers.slow.map(([, at]) => at).filter((at) => at >= now - longest),
        },
        lastCreatedAt: last,
      });
    }
    // Forget buckets older than any window or settled slice can reach.
    const oldest = Math.floor((now - this.keepMs) / BUCKET_MS);
    const from = this.evictedBelow === -Infinity ? -Infinity : this.evictedBelow;
    for (const pair of this.pairs.values()) {
      if (from === -Infinity || oldest - from > pair.buckets.size) {
        for (const b of pair.buckets.keys()) if (b < oldest) pair.buckets.delete(b);
        for (const b of pair.codes.keys()) if (b < oldest) pair.codes.delete(b);
      } else {
        for (let b = from; b < oldest; b++) {
          pair.buckets.delete(b);
          pair.codes.delete(b);
        }
      }
    }
    this.evictedBelow = oldest;
    // A pair with nothing left to count or to learn is forgotten.
    for (const [key, pair] of this.pairs)
      if (pair.buckets.size === 0 && !pairs.has(key)) this.pairs.delete(key);
    return { now, lengths, settledFrom, pairs };
  }

  /** The most frequent error codes of the pair's known failures created in [fromMs, now). */
  topErrorCodes(
    channel: string,
    region: string,
    fromMs: number,
    limit = 3,
  ): Array<{ code: string; count: number }> {
    const pair = this.pairs.get(pairKey(channel, region));
    if (!pair) return [];
    const from = Math.floor(fromMs / BUCKET_MS);
    const to = Math.floor(this.now / BUCKET_MS);
    const totals = new Map<string, number>();
    for (const [b, codes] of pair.codes) {
      if (b < from || b >= to) continue;
      for (const [code, n] of codes) totals.set(code, (totals.get(code) ?? 0) + n);
    }
    return rankCodes(totals, limit);
  }

  /** The tallies a newly known outcome of `bucket` goes into: the bucket's, and the windows holding it. */
  private targets(pair: PairTrack, bucket: number, nowBucket: number): Tally[] {
    const tally = pair.buckets.get(bucket)!;
    const targets = [tally];
    const lengths = this.options.lengths;
    for (let i = 0; i < lengths.length; i++) {
      if (bucket >= nowBucket - lengths[i]! / 5) targets.push(pair.sums[i]!);
    }
    return targets;
  }

  private finish(p: Pending, nowBucket: number): void {
    const { pair, bucket, outcome } = p;
    for (const t of this.targets(pair, bucket, nowBucket)) {
      t.finished++;
      if (outcome.failed) t.failures++;
    }
    if (!outcome.failed) return;
    noteBadUser(pair.badUsers.failures, p.userId, p.createdAt, this.options.maxUsers);
    if (p.errorCode !== null) {
      let codes = pair.codes.get(bucket);
      if (!codes) pair.codes.set(bucket, (codes = new Map()));
      codes.set(p.errorCode, (codes.get(p.errorCode) ?? 0) + 1);
    }
  }

  private latency(p: Pending, nowBucket: number): void {
    const bin = p.outcome.latencyBin!;
    for (const t of this.targets(p.pair, p.bucket, nowBucket)) {
      t.confirmed++;
      t.latency[bin]!++;
    }
  }

  private speed(p: Pending, nowBucket: number): void {
    const { pair, bucket, outcome } = p;
    for (const t of this.targets(pair, bucket, nowBucket)) {
      t.timed++;
      if (outcome.slow) t.slow++;
    }
    if (outcome.slow) noteBadUser(pair.badUsers.slow, p.userId, p.createdAt, this.options.maxUsers);
  }
}

function schedule(slots: Map<number, Pending[]>, at: number, earliest: number, p: Pending): void {
  const slot = Math.max(Math.ceil(at / BUCKET_MS), earliest);
  const list = slots.get(slot);
  if (list) list.push(p);
  else slots.set(slot, [p]);
}

/** Codes by count, most first, ties by code: the order the SQL reader uses too. */
export function rankCodes(
  totals: ReadonlyMap<string, number>,
  limit: number,
): Array<{ code: string; count: number }> {
  return [...totals]
    .map(([code, count]) => ({ code, count }))
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0))
    .slice(0, limit);
}

/** Keeps the latest bad creation time of up to `max` distinct users, newest first. */
export function noteBadUser(list: Array<[string, number]>, userId: string, at: number, max: number): void {
  const i = list.findIndex(([u]) => u === userId);
  if (i >= 0) {
    if (list[i]![1] >= at) return;
    list.splice(i, 1);
  }
  let j = 0;
  while (j < list.length && list[j]![1] >= at) j++;
  if (j >= max) return;
  list.splice(j, 0, [userId, at]);
  if (list.length > max) list.length = max;
}
