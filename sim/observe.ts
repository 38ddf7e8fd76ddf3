// In-memory reference of forewarn's observation model: turns simulated attempts into the bucket
// rows the payment-health detector reads, exactly as the SQL over payment_attempts does, so unit
// tests and backtests run without a database.
import { BUCKET_MS } from '../detectors/payment-health/series.ts';
import type { BucketRow } from '../detectors/payment-health/series.ts';
import type { SimAttempt } from './traffic.ts';

export interface ObserveOptions {
  /** When an unconfirmed attempt starts to count as slow, per pair. */
  slowAfterMs: (channel: string, region: string) => number;
  /** Only attempts observed in [fromMs, toMs) count. */
  fromMs: number;
  toMs: number;
  /** Defaults to the detector's BUCKET_MS. */
  bucketMs?: number;
}

interface PairAccumulator {
  channel: string;
  region: string;
  slowAfterMs: number;
  buckets: Map<number, BucketRow>;
}

/**
 * Bucket rows of the attempts observed in [fromMs, toMs), sorted by channel, region and bucket.
 *
 * An attempt is observed when its outcome is known or it has waited too long to matter: failures
 * and timeouts at creation, successes at confirmation (or at the slow threshold, if later), and
 * pending attempts once they pass the slow threshold. Younger attempts are not counted yet, so a
 * burst of fresh, still-unconfirmed attempts never looks like a slow channel.
 */
export function bucketRowsFromAttempts(attempts: Iterable<SimAttempt>, opts: ObserveOptions): BucketRow[] {
  const bucketMs = opts.bucketMs ?? BUCKET_MS;
  const pairs = new Map<string, Map<string, PairAccumulator>>();

  for (const a of attempts) {
    let byRegion = pairs.get(a.channelId);
    if (!byRegion) pairs.set(a.channelId, (byRegion = new Map()));
    let pair = byRegion.get(a.region);
    if (!pair) {
      pair = {
        channel: a.channelId,
        region: a.region,
        slowAfterMs: opts.slowAfterMs(a.channelId, a.region),
        buckets: new Map(),
      };
      byRegion.set(a.region, pair);
    }

    let observedAt: number;
    let failure = false;
    let slow = false;
    switch (a.status) {
      case 'failed':
      case 'timeout':
        observedAt = a.createdAt;
        failure = true;
        break;
      case 'succeeded':
        observedAt = a.createdAt + Math.min(a.latencyMs ?? 0, pair.slowAfterMs);
        slow = a.latencyMs !== null && a.latencyMs > pair.slowAfterMs;
        break;
      case 'pending':
        observedAt = a.createdAt + pair.slowAfterMs;
        slow = true;
        break;
    }
    if (observedAt < opts.fromMs || observedAt >= opts.toMs) continue;

    const bucket = Math.floor(observedAt / bucketMs);
    let row = pair.buckets.get(bucket);
    if (!row) {
      row = {
        channel: pair.channel,
        region: pair.region,
        bucket,
        attempts: 0,
        failures: 0,
        slow: 0,
        latencySumMs: 0,
        latencyCount: 0,
      };
      pair.buckets.set(bucket, row);
    }
    row.attempts += 1;
    if (failure) row.failures += 1;
    if (slow) row.slow += 1;
    if (a.status === 'succeeded' && a.latencyMs !== null) {
      row.latencySumMs += a.latencyMs;
      row.latencyCount += 1;
    }
  }

  const rows: BucketRow[] = [];
  for (const channel of [...pairs.keys()].sort()) {
    const byRegion = pairs.get(channel)!;
    for (const region of [...byRegion.keys()].sort()) {
      const buckets = byRegion.get(region)!.buckets;
      for (const bucket of [...buckets.keys()].sort((x, y) => x - y)) rows.push(buckets.get(bucket)!);
    }
  }
  return rows;
}
