// Platform shapes for bench/detection.ts: a platform of any number of channel × region pairs with
// steady traffic at its daily peak. Volumes are skewed the way a real platform's are: a few busy
// pairs see hundreds of attempts a minute, most see a few, some hardly any.
import { referencePlatform, type Platform, type SimChannel, type TrafficPair } from '../sim/platform.ts';
import { mulberry32 } from '../sim/random.ts';
import { normalQuantile } from '../detectors/payment-health/stats.ts';

/** Mean attempts per minute per pair of the synthetic platforms: 50,000 a minute at 5,000 pairs. */
export const MEAN_PER_PAIR_PER_MINUTE = 10;

// Spread of ln(attempts per minute) across pairs. With 1.5, at 5,000 pairs the busiest pair sees
// ~600 a minute, the ten busiest over ~250, the median pair ~3 and the quietest one an hour.
const VOLUME_SIGMA = 1.5;
const MEDIAN_LATENCY_MS = [1_200, 1_500, 2_000, 2_500, 3_500, 4_000];
const FAILURE_RATES = [0.02, 0.025, 0.03, 0.05, 0.08];

/**
 * A platform of `pairs` pairs whose traffic holds its peak all day (so an hour of history looks
 * like any other). 30 pairs: the reference platform's own pairs (~1,600 attempts a minute at its
 * peak); any other count: `pairs` synthetic pairs with MEAN_PER_PAIR_PER_MINUTE on average, over
 * about √(2·pairs) regions and half as many channels, each offered everywhere.
 */
export function benchPlatform(pairs: number): Platform {
  if (!Number.isInteger(pairs) || pairs < 1) {
    throw new RangeError(`benchPlatform: pairs: expected a positive integer, got ${pairs}`);
  }
  const reference = referencePlatform();
  const flat = { ...reference.dailyCycle, hourly: reference.dailyCycle.hourly.map(() => 1) };
  if (pairs === reference.pairs.length) return { ...reference, dailyCycle: flat };

  const regionCount = Math.ceil(Math.sqrt(2 * pairs));
  const channelCount = Math.ceil(pairs / regionCount);
  const regions = Array.from({ length: regionCount }, (_, i) => ({
    code: `XR-${String(i + 1).padStart(3, '0')}`,
    name: `Region ${i + 1}`,
    timezone: 'Asia/Shanghai',
  }));
  const channels = Array.from({ length: channelCount }, (_, i): SimChannel => ({
    id: `pay_${String(i + 1).padStart(3, '0')}`,
    displayName: `Pay ${i + 1}`,
    regions: ['*'],
    enabled: true,
    priority: (i + 1) * 10,
    declineCodes: ['INSUFFICIENT_FUNDS', 'CARD_DECLINED', 'PAY_CANCELLED_BY_USER'],
    systemCodes: ['SYSTEM_ERROR', 'GATEWAY_UNAVAILABLE'],
  }));

  // Volumes at evenly spaced quantiles of a log-normal, scaled to the mean, then dealt to the
  // pairs in a fixed shuffled order so that busy pairs are spread over channels and regions.
  const quantiles = Array.from({ length: pairs }, (_, i) =>
    Math.exp(VOLUME_SIGMA * normalQuantile((i + 0.5) / pairs)),
  );
  const scale = (MEAN_PER_PAIR_PER_MINUTE * pairs) / quantiles.reduce((sum, q) => sum + q, 0);
  const order = shuffled(pairs, 7);
  const trafficPairs: TrafficPair[] = [];
  for (let i = 0; i < pairs; i++) {
    const channel = Math.floor(i / regionCount);
    const region = i % regionCount;
    trafficPairs.push({
      channel: channels[channel]!.id,
      region: regions[region]!.code,
      peakPerMinute: quantiles[order[i]!]! * scale,
      failureRate: FAILURE_RATES[i % FAILURE_RATES.length]!,
      pendingRate: 0.002,
      latency: {
        medianMs: MEDIAN_LATENCY_MS[channel % MEDIAN_LATENCY_MS.length]!,
        sigma: 0.5,
        tailShare: 0.004,
        tailMinMs: 8_000,
        tailMaxMs: 60_000,
      },
    });
  }
  return { channels, regions, pairs: trafficPairs, dailyCycle: flat };
}

/** Attempts per minute of a platform at its peak, over all pairs. */
export function peakPerMinute(platform: Platform): number {
  return platform.pairs.reduce((sum, p) => sum + p.peakPerMinute, 0);
}

/** 0 .. n-1 in a deterministic random order (Fisher-Yates). */
function shuffled(n: number, seed: number): number[] {
  const random = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
