// Attempt counts per (channel, region) in 5-second buckets of observation time, with prefix sums
// so that any window is two subtractions. Live detection and backtests both build this from the
// same bucket rows (lib/platform/payment-attempts.ts), so the detector sees identical signals.

export const BUCKET_MS = 5_000;

/** What is known about a pair's attempts in some span of time. */
export interface Counts {
  /** Attempts whose outcome was observable in the span (young pending attempts are not yet). */
  attempts: number;
  /** Failed or timed out. */
  failures: number;
  /** Confirmed later than the slow threshold, or still pending past it. */
  slow: number;
  /** Sum and count of confirmation latencies of succeeded attempts, for evidence. */
  latencySumMs: number;
  latencyCount: number;
}

/** One aggregated row: a pair's counts in the bucket starting at `bucket * BUCKET_MS`. */
export interface BucketRow extends Counts {
  channel: string;
  region: string;
  bucket: number;
}

export const zeroCounts: Readonly<Counts> = Object.freeze({
  attempts: 0,
  failures: 0,
  slow: 0,
  latencySumMs: 0,
  latencyCount: 0,
});

const FIELDS = 5;

/** Prefix sums of one pair's buckets over [firstBucket, firstBucket + length). */
export class PairSeries {
  readonly channel: string;
  readonly region: string;
  private readonly firstBucket: number;
  /** cumulative[(i * FIELDS) + f] = sum of field f over buckets [firstBucket, firstBucket + i). */
  private readonly cumulative: Float64Array;
  private readonly length: number;

  constructor(channel: string, region: string, firstBucket: number, perBucket: Float64Array) {
    this.channel = channel;
    this.region = region;
    this.firstBucket = firstBucket;
    this.length = perBucket.length / FIELDS;
    this.cumulative = new Float64Array(perBucket.length + FIELDS);
    for (let i = 0; i < this.length; i++) {
      for (let f = 0; f < FIELDS; f++) {
        this.cumulative[(i + 1) * FIELDS + f] = this.cumulative[i * FIELDS + f]! + perBucket[i * FIELDS + f]!;
      }
    }
  }

  /** Counts of attempts observed in [fromMs, toMs); both ends are rounded down to buckets. */
  between(fromMs: number, toMs: number): Counts {
    const from = this.index(fromMs);
    const to = this.index(toMs);
    if (to <= from) return zeroCounts;
    const c = this.cumulative;
    const a = from * FIELDS;
    const b = to * FIELDS;
    return {
      attempts: c[b]! - c[a]!,
      failures: c[b + 1]! - c[a + 1]!,
      slow: c[b + 2]! - c[a + 2]!,
      latencySumMs: c[b + 3]! - c[a + 3]!,
      latencyCount: c[b + 4]! - c[a + 4]!,
    };
  }

  private index(ms: number): number {
    const i = Math.floor(ms / BUCKET_MS) - this.firstBucket;
    return Math.min(Math.max(i, 0), this.length);
  }
}

export type SignalSeries = ReadonlyMap<string, PairSeries>;

export function pairKey(channel: string, region: string): string {
  return `${channel}:${region}`;
}

/** Builds every pair's series from bucket rows in any order, covering [fromMs, toMs). */
export function buildSeries(rows: Iterable<BucketRow>, fromMs: number, toMs: number): SignalSeries {
  const firstBucket = Math.floor(fromMs / BUCKET_MS);
  const length = Math.max(0, Math.ceil(toMs / BUCKET_MS) - firstBucket);
  const perPair = new Map<string, { channel: string; region: string; data: Float64Array }>();
  for (const row of rows) {
    const i = row.bucket - firstBucket;
    if (i < 0 || i >= length) continue;
    const key = pairKey(row.channel, row.region);
    let pair = perPair.get(key);
    if (!pair) {
      pair = { channel: row.channel, region: row.region, data: new Float64Array(length * FIELDS) };
      perPair.set(key, pair);
    }
    const at = i * FIELDS;
    pair.data[at] = pair.data[at]! + row.attempts;
    pair.data[at + 1] = pair.data[at + 1]! + row.failures;
    pair.data[at + 2] = pair.data[at + 2]! + row.slow;
    pair.data[at + 3] = pair.data[at + 3]! + row.latencySumMs;
    pair.data[at + 4] = pair.data[at + 4]! + row.latencyCount;
  }
  const series = new Map<string, PairSeries>();
  for (const [key, pair] of perPair)
    series.set(key, new PairSeries(pair.channel, pair.region, firstBucket, pair.data));
  return series;
}
