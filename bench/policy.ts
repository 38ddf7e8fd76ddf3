// Benchmark: what the delivery policy costs a fan-out. The same in-app fan-out of one cause to
// BENCH_POLICY_USERS users, with the policy given work to do (stored preferences for 10% of them,
// half opted out; an in-app cap of 50 a day, counted against messages already sent today) and
// without it (no preference rows, no caps), each in a fresh process, alternating in pairs.
import { fanOutsInFreshProcess, POLICY_CAP, WARM_UP, type FanoutRun } from './fanout.ts';
import { figure, median, positiveIntFromEnv, type BenchResult, type Figure } from './support.ts';

/** The issue's target: the fan-out with the policy at most this much slower than without. */
const TARGET_SLOWER = 0.15;

export async function benchPolicy(): Promise<BenchResult> {
  const audience = positiveIntFromEnv('BENCH_POLICY_USERS', 100_000);
  const rounds = positiveIntFromEnv('BENCH_POLICY_ROUNDS', 3);
  const withPolicy: FanoutRun[] = [];
  const without: FanoutRun[] = [];
  // The machine's speed drifts between runs: each round runs both variants back to back, and
  // the order flips every round, so that neither always runs first.
  for (let round = 0; round < rounds; round++) {
    for (const policy of round % 2 === 0 ? [true, false] : [false, true]) {
      const [run] = await fanOutsInFreshProcess([
        { audience: WARM_UP, channel: 'inapp', warmUp: true, policy },
        { audience, channel: 'inapp', policy },
      ]);
      (policy ? withPolicy : without).push(run!);
    }
  }
  const figures: Figure[] = [];
  const n = audience.toLocaleString('en-US');
  for (const [name, runs] of [
    ['without the policy', without],
    ['with the policy', withPolicy],
  ] as const) {
    const seconds = median(runs.map((r) => r.seconds));
    figures.push(
      figure(`in-app to ${n} users, ${name}: all recorded in (median)`, seconds, 's'),
      figure(`in-app to ${n} users, ${name}: rate`, audience / seconds, 'recipients/s'),
      figure(`in-app to ${n} users, ${name}: peak RSS (median)`, median(runs.map((r) => r.peakRssMb)), 'MiB'),
      figure(
        `in-app to ${n} users, ${name}: peak live heap (median)`,
        median(runs.map((r) => r.peakLiveHeapMb)),
        'MiB',
      ),
      figure(`in-app to ${n} users, ${name}: withheld`, median(runs.map((r) => r.withheld)), 'messages'),
    );
  }
  const ratios = withPolicy.map((r, i) => r.seconds / without[i]!.seconds);
  const ratio = median(ratios);
  figures.push(figure('with the policy / without: time (median of the rounds)', 100 * ratio, '%'));
  return {
    name: 'delivery policy: one in-app fan-out with and without it',
    figures,
    notes: [
      `target: under ${100 * TARGET_SLOWER}% slower with the policy: ${ratio < 1 + TARGET_SLOWER ? 'met' : 'NOT met'} (${Math.round(100 * (ratio - 1))}%)`,
      `each round, with / without: ${ratios.map((r) => `${Math.round(100 * r)}%`).join(', ')}; seconds with: ${withPolicy
        .map((r) => r.seconds.toFixed(2))
        .join(', ')}; without: ${without.map((r) => r.seconds.toFixed(2)).join(', ')}`,
      `with the policy: preferences stored for 1 user in 10 (half opted out of service in-app: withheld), notifications.caps inapp perDay ${POLICY_CAP}; 1 user in 10 already got 3 in-app messages today and 1 in 1,000 got ${POLICY_CAP} (capped: cancelled). Without: the same messages sent today, no preferences, no caps`,
      `${rounds} rounds, the order flipping each round; each fan-out in a fresh process after a ${WARM_UP.toLocaleString('en-US')}-user warm-up of the same variant`,
    ],
  };
}
