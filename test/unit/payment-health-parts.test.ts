// The detector's building blocks and rules, each on hand-made signals with a fixed clock:
// statistics, the observation model, backups that must be proven, fresh evidence, continuous
// confirmation, silence, a lasting level becoming the new normal, baselines that a slide below
// the threshold cannot poison, and settings under which a pair could never alert.
import { describe, expect, it } from 'vitest';
import { rankBackupChannels } from '../../detectors/payment-health/backups.ts';
import {
  detectPaymentHealth,
  emptyTally,
  initialPaymentHealthState,
  latencyBin,
  LATENCY_EDGES_MS,
  outcomeOf,
  quantileOfBins,
  SignalBuilder,
  settingsProblems,
  type PairSignals,
  type PaymentChannel,
  type PaymentHealthSettings,
  type PaymentHealthState,
  type SignalSet,
  type Tally,
} from '../../detectors/payment-health/index.ts';
import { normalQuantile, wilsonInterval } from '../../detectors/payment-health/stats.ts';
import { LARGE_SAMPLE, windowConfidence } from '../../detectors/payment-health/thresholds.ts';
import { shippedSettings } from '../support/traces.ts';

const NOW = Date.UTC(2026, 2, 2, 6, 0); // a fixed clock: 14:00 in Beijing
const MINUTE = 60_000;
const LENGTHS = [15, 30, 120, 300, 900, 3600];

describe('statistics', () => {
  it('gives the textbook normal quantiles', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.99)).toBeCloseTo(2.326348, 5);
    expect(normalQuantile(0.9999)).toBeCloseTo(3.719016, 4);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 5);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });

  it('computes Wilson bounds that widen at small counts and stay inside [0, 1]', () => {
    // 95%: 8 of 10 → [0.4902, 0.9433] (Wilson 1927, as tabulated by Newcombe 1998).
    const { lower, upper } = wilsonInterval(8, 10, 1.959964);
    expect(lower).toBeCloseTo(0.4902, 3);
    expect(upper).toBeCloseTo(0.9433, 3);
    expect(wilsonInterval(3, 3, 3.719).lower).toBeLessThan(wilsonInterval(300, 300, 3.719).lower);
    expect(wilsonInterval(0, 50, 3).lower).toBe(0);
    expect(wilsonInterval(0, 0, 3)).toEqual({ lower: 0, upper: 1 });
  });

  it('holds a longer window to a lower confidence in proportion to its length, only at large counts', () => {
    const t = shippedSettings; // confidence 0.9999 for its shortest window, 15 s
    expect(windowConfidence(t, 15, 500)).toBeCloseTo(0.9999, 10);
    expect(windowConfidence(t, 300, 500)).toBeCloseTo(0.998, 10);
    expect(windowConfidence(t, 900, 500)).toBeCloseTo(0.994, 10);
    expect(windowConfidence(t, 3600, 500)).toBe(0.99); // 0.976, floored
    expect(windowConfidence(t, 300, LARGE_SAMPLE - 1)).toBe(0.9999);
    expect(windowConfidence(t, 3600, 12)).toBe(0.9999);
  });

  it('bins latencies on whole-number edges and reads quantiles back within their bin', () => {
    expect(latencyBin(0)).toBe(0);
    expect(latencyBin(249)).toBe(0);
    expect(latencyBin(250)).toBe(1);
    expect(latencyBin(LATENCY_EDGES_MS[5]!)).toBe(6);
    expect(latencyBin(LATENCY_EDGES_MS[5]! - 1)).toBe(5);
    expect(latencyBin(10_000_000)).toBe(LATENCY_EDGES_MS.length);
    const bins = emptyTally().latency;
    bins[latencyBin(1_000)] = 100; // all in [1000, 1414)
    const median = quantileOfBins(bins, 0.5);
    expect(median).toBeGreaterThanOrEqual(1_000);
    expect(median).toBeLessThan(1_414);
  });
});

describe('observation model', () => {
  const attempt = (over: Partial<Parameters<typeof outcomeOf>[0]>) => ({
    channel: 'alipay',
    region: 'CN-GD',
    userId: 'u1',
    status: 'succeeded' as const,
    createdAt: NOW,
    finishedAt: NOW + 1_000,
    latencyMs: 1_000,
    errorCode: null,
    ...over,
  });

  it('knows a finish at finished_at, within the settle horizon only; a final row without it at created_at (+ latency)', () => {
    expect(outcomeOf(attempt({}), 15_000, 300_000)).toMatchObject({
      finishKnownAt: NOW + 1_000,
      failed: false,
      slow: false,
    });
    expect(
      outcomeOf(attempt({ status: 'failed', finishedAt: null, latencyMs: null }), 15_000, 300_000)
        .finishKnownAt,
    ).toBe(NOW);
    expect(outcomeOf(attempt({ finishedAt: null, latencyMs: 2_500 }), 15_000, 300_000).finishKnownAt).toBe(
      NOW + 2_500,
    );
    expect(
      outcomeOf(attempt({ status: 'timeout', finishedAt: NOW + 30_000 }), 15_000, 300_000),
    ).toMatchObject({
      finishKnownAt: NOW + 30_000,
      failed: true,
      slow: true,
    });
    // Finished after the horizon: pending for good, so a live tick and a backtest agree.
    expect(outcomeOf(attempt({ finishedAt: NOW + 300_001 }), 15_000, 300_000)).toMatchObject({
      finishKnownAt: null,
      slow: true,
    });
    expect(outcomeOf(attempt({ status: 'pending', finishedAt: null }), 15_000, 300_000)).toMatchObject({
      finishKnownAt: null,
      speedKnownAt: NOW + 15_000,
      slow: true,
      latencyBin: null,
    });
  });

  it('counts by creation time what is known at each tick: a timeout joins its window 30 s later', () => {
    const builder = new SignalBuilder({
      lengths: [15, 60],
      settleMs: 300_000,
      maxUsers: 3,
      slowAfterMs: () => 15_000,
    });
    builder.add(
      attempt({
        status: 'timeout',
        createdAt: NOW,
        finishedAt: NOW + 30_000,
        latencyMs: null,
        errorCode: 'GATEWAY_TIMEOUT',
      }),
    );
    builder.add(attempt({ userId: 'u2', createdAt: NOW + 1_000, finishedAt: NOW + 2_000 }));
    const at = (now: number) => builder.at(now, now - 300_000).pairs.get('alipay:CN-GD')!;
    const t10 = at(NOW + 10_000);
    expect(t10.windows[0]).toMatchObject({ created: 2, finished: 1, failures: 0, timed: 0 });
    const t20 = at(NOW + 20_000);
    expect(t20.windows[0]).toMatchObject({ created: 0 }); // both were created more than 15 s ago
    expect(t20.windows[1]).toMatchObject({ created: 2, finished: 1, timed: 2, slow: 1, confirmed: 1 });
    const t30 = at(NOW + 30_000);
    expect(t30.windows[1]).toMatchObject({ finished: 2, failures: 1 });
    expect(t30.badUsers.failures).toEqual([NOW]);
    expect(builder.topErrorCodes('alipay', 'CN-GD', NOW - 1)).toEqual([
      { code: 'GATEWAY_TIMEOUT', count: 1 },
    ]);
    expect(() => builder.add(attempt({ createdAt: NOW }))).toThrow(/creation order/);
  });
});

// ---- hand-made signals ----------------------------------------------------------------------

interface PairSpec {
  /** Tallies per window length (seconds); unset lengths are empty. */
  windows?: Record<number, Partial<Tally>>;
  settled?: Partial<Tally>;
  badUsers?: { failures?: number[]; slow?: number[] };
  lastCreatedAt?: number | null;
}

function tally(t: Partial<Tally> = {}): Tally {
  return { ...emptyTally(), ...t, latency: t.latency ?? emptyTally().latency };
}

/** A steady share over every window: `perMinute` attempts, `failureRate` of them failed. */
function steady(perMinute: number, failureRate: number, now = NOW): PairSpec {
  const windows: Record<number, Partial<Tally>> = {};
  for (const seconds of LENGTHS) {
    const n = Math.round((perMinute * seconds) / 60);
    const failures = Math.round(n * failureRate);
    windows[seconds] = { created: n, finished: n, failures, timed: n, slow: 0 };
  }
  const times = [1, 2, 3].map((i) => now - 1_000 * i);
  return {
    windows,
    settled: { finished: perMinute / 4, failures: (perMinute / 4) * failureRate, timed: perMinute / 4 },
    badUsers: { failures: failureRate > 0 ? times : [], slow: [] },
  };
}

function signals(
  now: number,
  pairs: Record<string, PairSpec>,
  settledFrom = now - 300_000 - 15_000,
): SignalSet {
  const map = new Map<string, PairSignals>();
  for (const [key, spec] of Object.entries(pairs)) {
    const [channel, region] = key.split(':') as [string, string];
    map.set(key, {
      channel,
      region,
      windows: LENGTHS.map((l) => tally(spec.windows?.[l])),
      settled: tally(spec.settled),
      badUsers: { failures: spec.badUsers?.failures ?? [], slow: spec.badUsers?.slow ?? [] },
      lastCreatedAt: spec.lastCreatedAt === undefined ? now - 1_000 : spec.lastCreatedAt,
    });
  }
  return { now, lengths: LENGTHS, settledFrom, pairs: map };
}

const CHANNELS: PaymentChannel[] = ['alipay', 'wechat_pay', 'unionpay', 'quiet', 'other'].map((id, i) => ({
  id,
  displayName: id,
  regions: ['*'],
  enabled: true,
  priority: i,
}));

/** Runs ticks every 15 s; `at(now)` gives each tick's signals. */
function run(
  from: number,
  to: number,
  at: (now: number) => Record<string, PairSpec>,
  options: {
    state?: PaymentHealthState;
    settings?: PaymentHealthSettings;
    channels?: PaymentChannel[];
    step?: number;
  } = {},
) {
  let state = options.state ?? initialPaymentHealthState();
  const changes = [];
  const feed = [];
  for (let now = from; now <= to; now += options.step ?? 15_000) {
    const f = detectPaymentHealth(
      { set: signals(now, at(now)), channels: options.channels ?? CHANNELS },
      state,
      options.settings ?? shippedSettings,
      now,
    );
    state = f.state;
    changes.push(...f.changes);
    if (f.feed.started || f.feed.ended) feed.push({ at: now, started: f.feed.started });
  }
  return { state, changes, feed };
}

/** A busy pair (400 a minute) failing at `rate` from `start`, else at 2%. */
function busy(now: number, start: number, rate: number, end = Infinity): PairSpec {
  return now >= start && now < end ? steady(400, rate, now) : steady(400, 0.02, now);
}

describe('detector rules', () => {
  it('opens only after confirmSeconds of degraded ticks, and restarts confirmation after a gap longer than maxGapSeconds', () => {
    const start = NOW;
    const { changes } = run(start - 10 * MINUTE, start + 30_000, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6),
    }));
    expect(changes).toEqual([]); // 30 s < confirmSeconds (45)
    const opened = run(start - 10 * MINUTE, start + 45_000, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6),
    }));
    expect(opened.changes.map((c) => [c.type, c.at - start])).toEqual([['opened', 45_000]]);

    // Degraded at 23:59, then nothing for hours (a stopped scheduler): the run starts again.
    const before = run(start - 10 * MINUTE, start + 30_000, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6),
    }));
    const later = start + 7 * 60 * MINUTE;
    const after = run(later, later + 30_000, () => ({ 'alipay:CN-GD': steady(400, 0.6) }), {
      state: before.state,
    });
    expect(after.changes).toEqual([]);
  });

  it('resolves through noise in the short window after recovery, while a relapse keeps it open', () => {
    const start = NOW;
    const end = start + 2 * MINUTE;
    // After the outage every other tick's short window holds 8 failures in 100: above the halfway
    // mark (6%), but below the threshold (10%) and within the noise of a 2% pair.
    const after = (now: number, every: number, rate: number) =>
      steady(400, Math.floor((now - end) / 15_000) % every === every - 1 ? rate : 0.02, now);
    const noisy = run(start - 10 * MINUTE, end + 5 * MINUTE, (now) => ({
      'alipay:CN-GD': now < end ? busy(now, start, 0.6) : after(now, 2, 0.08),
    }));
    expect(noisy.changes.map((c) => c.type)).toEqual(['opened', 'resolved']);
    expect(noisy.changes[1]!.at - end).toBeLessThanOrEqual(150_000);
    // A relapse to 20% every fourth tick is no noise: the incident stays open.
    const relapsing = run(start - 10 * MINUTE, end + 10 * MINUTE, (now) => ({
      'alipay:CN-GD': now < end ? busy(now, start, 0.6) : after(now, 4, 0.2),
    }));
    expect(relapsing.changes.map((c) => c.type)).toEqual(['opened']);
  });

  it('restarts confirmation when the latest attempts no longer bear a proof out (a blip a 2-min window still holds)', () => {
    // A pair of about 20 a minute: its 2-minute window holds a blip's 15 failures of 40 (proven),
    // and its last 30 s hold 10 attempts, all known. Enough of them created to be judged, though
    // too few known ones at times to be the current view.
    const medium = (latestBad: number, latestKnown: number): PairSpec => ({
      windows: {
        15: { created: 5, finished: Math.min(5, latestKnown), failures: Math.min(5, latestBad), timed: 0 },
        30: { created: 10, finished: latestKnown, failures: latestBad, timed: 5 },
        120: { created: 40, finished: 40, failures: 15, timed: 35 },
        300: { created: 100, finished: 100, failures: 18, timed: 95 },
        900: { created: 300, finished: 300, failures: 27, timed: 295 },
        3600: { created: 1200, finished: 1200, failures: 80, timed: 1195 },
      },
      settled: { finished: 5, failures: 0.2, timed: 5 },
      badUsers: { failures: [NOW - 40_000, NOW - 41_000, NOW - 42_000], slow: [] },
    });
    // The latest 10 all fine at every other tick, 7 of 10 known at the others (too few: a longer
    // window judges): the blip's proof never holds for confirmSeconds in a row.
    const over = run(NOW, NOW + 3 * MINUTE, (now) => ({
      'unionpay:CN-GD': medium(0, Math.floor((now - NOW) / 15_000) % 2 === 0 ? 10 : 4),
    }));
    expect(over.changes).toEqual([]);
    // Still failing among the latest attempts: it opens once confirmed.
    const ongoing = run(NOW, NOW + 3 * MINUTE, () => ({ 'unionpay:CN-GD': medium(6, 6) }));
    expect(ongoing.changes.map((c) => c.type)).toEqual(['opened']);
  });

  it('opens on fresh evidence only: an ended outage still in the hour window opens nothing', () => {
    // A quiet pair whose hour window holds 30 failures of 40, none in the last freshSeconds.
    const old: PairSpec = {
      windows: {
        3600: { created: 40, finished: 40, failures: 30, timed: 40 },
        900: { created: 6, finished: 6, timed: 6 },
      },
      badUsers: { failures: [NOW - 20 * MINUTE, NOW - 21 * MINUTE, NOW - 22 * MINUTE] },
    };
    expect(run(NOW - 5 * MINUTE, NOW + 5 * MINUTE, () => ({ 'quiet:CN-GD': old })).changes).toEqual([]);
    // The same window with a failure a minute ago is evidence.
    const fresh: PairSpec = {
      ...old,
      badUsers: { failures: [NOW - MINUTE, NOW - 21 * MINUTE, NOW - 22 * MINUTE] },
    };
    const opened = run(NOW - 5 * MINUTE, NOW + 5 * MINUTE, (now) => ({
      'quiet:CN-GD': {
        ...fresh,
        badUsers: { failures: [now - MINUTE, now - 21 * MINUTE, now - 22 * MINUTE] },
      },
    }));
    expect(opened.changes.map((c) => c.type)).toEqual(['opened']);
  });

  it('a shorter window that looks healthy makes a longer one’s proof stale', () => {
    const spec: PairSpec = {
      windows: {
        900: { created: 30, finished: 30, failures: 0, timed: 30 }, // healthy now
        3600: { created: 60, finished: 60, failures: 30, timed: 60 }, // the outage, half an hour ago
      },
      badUsers: { failures: [NOW - 60_000, NOW - 70_000, NOW - 80_000] },
    };
    expect(run(NOW - 5 * MINUTE, NOW + 10 * MINUTE, () => ({ 'quiet:CN-GD': spec })).changes).toEqual([]);

    // The current view (2 min) is not healthy, 5 min looks healthy, 15 min would prove: stale.
    const between: PairSpec = {
      windows: {
        120: { created: 30, finished: 30, failures: 4, timed: 30 },
        300: { created: 80, finished: 80, failures: 5, timed: 80 },
        900: { created: 200, finished: 200, failures: 60, timed: 200 },
        3600: { created: 400, finished: 400, failures: 70, timed: 400 },
      },
    };
    const at = (now: number): PairSpec => ({
      ...between,
      badUsers: { failures: [now - 5_000, now - 6_000, now - 7_000] },
    });
    expect(run(NOW - 5 * MINUTE, NOW + 10 * MINUTE, (now) => ({ 'quiet:CN-GD': at(now) })).changes).toEqual(
      [],
    );
  });

  it('restarts confirmation when degraded ticks are further apart than maxGapSeconds', () => {
    // Degraded for 15 s, then 2 minutes between the threshold and halfway to it (uncertain),
    // then degraded again: the run starts again and needs its full 45 s.
    const start = NOW;
    const signal = (now: number): PairSpec => {
      const t = now - start;
      if (t < 0) return steady(400, 0.02, now);
      if (t <= 15_000 || t >= 165_000) return steady(400, 0.6, now);
      return steady(400, 0.09, now);
    };
    const { changes } = run(start - 10 * MINUTE, start + 5 * MINUTE, (now) => ({
      'alipay:CN-GD': signal(now),
    }));
    expect(changes.map((c) => [c.type, c.at - start])).toEqual([['opened', 210_000]]);
  });

  it('restarts the healthy run after a gap between ticks longer than maxGapSeconds', () => {
    const start = NOW;
    const opened = run(start - 10 * MINUTE, start + 2 * MINUTE, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6),
    }));
    expect(opened.changes.map((c) => c.type)).toEqual(['opened']);
    // Healthy for 60 s, then no ticks for 10 minutes, then healthy again: 120 s more are needed.
    const healthy = (now: number) => ({ 'alipay:CN-GD': steady(400, 0.02, now) });
    const before = run(start + 2 * MINUTE + 15_000, start + 3 * MINUTE + 15_000, healthy, {
      state: opened.state,
    });
    expect(before.changes).toEqual([]);
    const after = run(start + 13 * MINUTE, start + 16 * MINUTE, healthy, { state: before.state });
    expect(after.changes.map((c) => [c.type, c.at - start - 13 * MINUTE])).toEqual([['resolved', 120_000]]);
  });

  it('never re-opens on evidence from before the last resolution', () => {
    // A busy pair's outage opens and resolves; then the pair turns quiet, and only its hour
    // window, which still holds the outage, would prove anything.
    const start = NOW;
    const outage = run(start - 10 * MINUTE, start + 8 * MINUTE, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6, start + 3 * MINUTE),
    }));
    expect(outage.changes.map((c) => c.type)).toEqual(['opened', 'resolved']);
    const quietNow = (now: number): PairSpec => ({
      windows: {
        900: { created: 12, finished: 12, failures: 2, timed: 12 },
        3600: { created: 200, finished: 200, failures: 60, timed: 200 },
      },
      badUsers: { failures: [now - 10_000, now - 20_000, now - 30_000] },
    });
    const after = run(
      start + 8 * MINUTE + 15_000,
      start + 40 * MINUTE,
      (now) => ({ 'alipay:CN-GD': quietNow(now) }),
      {
        state: outage.state,
      },
    );
    expect(after.changes).toEqual([]);
  });

  it('needs bad attempts from minUsers distinct users', () => {
    const spec = (users: number[]): PairSpec => ({
      windows: {
        900: { created: 12, finished: 12, failures: 8, timed: 12 },
        3600: { created: 40, finished: 40, failures: 8, timed: 40 },
      },
      badUsers: { failures: users },
    });
    const one = run(NOW - 5 * MINUTE, NOW + 5 * MINUTE, (now) => ({ 'quiet:CN-GD': spec([now - 10_000]) }));
    expect(one.changes).toEqual([]);
    const three = run(NOW - 5 * MINUTE, NOW + 5 * MINUTE, (now) => ({
      'quiet:CN-GD': spec([now - 10_000, now - 20_000, now - 30_000]),
    }));
    expect(three.changes.map((c) => c.type)).toEqual(['opened']);
  });

  it('compares confirmation latency with the pair’s own learned median', () => {
    const bins = (ms: number, n: number) => {
      const b = emptyTally().latency;
      b[latencyBin(ms)] = n;
      return b;
    };
    // The pair learned a median of about 1 s from a day of traffic; now confirmations take 12 s.
    const state = run(NOW - 60 * MINUTE, NOW - 15_000, () => ({
      'alipay:CN-GD': {
        ...steady(400, 0.02),
        settled: { finished: 100, failures: 2, timed: 100, confirmed: 98, latency: bins(1_000, 98) },
      },
    })).state;
    const slowNow: PairSpec = {
      ...steady(400, 0.02),
      windows: Object.fromEntries(
        LENGTHS.map((l) => {
          const n = Math.round((400 * l) / 60);
          return [
            l,
            {
              created: n,
              finished: n,
              failures: 0,
              timed: n,
              slow: 0,
              confirmed: n,
              latency: bins(12_000, n),
            },
          ];
        }),
      ),
    };
    const { changes } = run(NOW, NOW + 2 * MINUTE, () => ({ 'alipay:CN-GD': slowNow }), { state });
    expect(changes.map((c) => [c.type, c.kind])).toEqual([['opened', 'slow']]);
    expect(changes[0]!.evidence.medianLatencyMs).toBeGreaterThan(10_000);
    expect(changes[0]!.evidence.baselineLatencyMs).toBeLessThan(1_500);
  });

  it('resolves as "no longer observed" when the pair goes silent, at once when its channel is disabled; users are not told', () => {
    const start = NOW;
    const opened = run(start - 10 * MINUTE, start + MINUTE, (now) => ({
      'alipay:CN-GD': busy(now, start, 0.6),
      'wechat_pay:CN-GD': steady(400, 0.02),
      'unionpay:CN-GD': steady(400, 0.02),
    }));
    expect(opened.changes.map((c) => c.type)).toEqual(['opened']);
    // alipay goes silent; the other pairs keep their traffic.
    const silent = run(
      start + MINUTE + 15_000,
      start + 40 * MINUTE,
      (now) => ({
        'alipay:CN-GD': { lastCreatedAt: null },
        'wechat_pay:CN-GD': { ...steady(400, 0.02), lastCreatedAt: now - 1_000 },
        'unionpay:CN-GD': { ...steady(400, 0.02), lastCreatedAt: now - 1_000 },
      }),
      { state: opened.state },
    );
    const resolved = silent.changes.filter((c) => c.type === 'resolved');
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({ reason: 'unobserved', subject: { channel: 'alipay' } });
    // Resolved once the pair had no attempt for silenceMinutes (30), counted from its last one.
    expect(resolved[0]!.at - (start + MINUTE)).toBeGreaterThanOrEqual(29 * MINUTE);

    const disabled = CHANNELS.map((c) => (c.id === 'alipay' ? { ...c, enabled: false } : c));
    const off = run(
      start + MINUTE + 15_000,
      start + 2 * MINUTE,
      (now) => ({ 'alipay:CN-GD': busy(now, start, 0.6) }),
      {
        state: opened.state,
        channels: disabled,
      },
    );
    expect(off.changes.map((c) => [c.type, c.type === 'resolved' ? c.reason : null])).toEqual([
      ['resolved', 'unobserved'],
    ]);
  });

  it('when most pairs go silent at once, reports a data-feed fault once and resolves nothing as unobserved', () => {
    const start = NOW;
    const pairs = ['alipay:CN-GD', 'wechat_pay:CN-GD', 'unionpay:CN-GD', 'other:CN-GD'];
    const opened = run(start - 10 * MINUTE, start + MINUTE, (now) =>
      Object.fromEntries(
        pairs.map((k) => [k, k === 'alipay:CN-GD' ? busy(now, start, 0.6) : steady(400, 0.02)]),
      ),
    );
    const stalled = run(
      start + MINUTE + 15_000,
      start + 60 * MINUTE,
      () => Object.fromEntries(pairs.map((k) => [k, { lastCreatedAt: null }])),
      { state: opened.state },
    );
    expect(stalled.changes).toEqual([]);
    expect(stalled.feed).toHaveLength(1);
    expect(stalled.feed[0]!.started).toBe(true);
    expect(stalled.state.pairs['alipay:CN-GD']!.kinds.failures.open).not.toBeNull();
  });

  it('takes a lasting level below baseline.maxRate as the new normal after relearnAfterMinutes, and does not re-open on it', () => {
    const start = NOW;
    const level = (now: number): PairSpec => ({
      ...busy(now, start, 0.25),
      settled:
        now >= start
          ? { finished: 100, failures: 25, timed: 100 }
          : { finished: 100, failures: 2, timed: 100 },
    });
    const { changes, state } = run(start - 10 * MINUTE, start + 200 * MINUTE, (now) => ({
      'alipay:CN-GD': level(now),
    }));
    expect(changes.map((c) => [c.type, c.type === 'resolved' ? c.reason : null])).toEqual([
      ['opened', null],
      ['resolved', 'relearned'],
    ]);
    const resolvedAt = changes[1]!.at;
    expect(resolvedAt - changes[0]!.at).toBeGreaterThanOrEqual(180 * MINUTE);
    expect(resolvedAt - changes[0]!.at).toBeLessThan(181 * MINUTE);
    const baseline = state.pairs['alipay:CN-GD']!.baseline;
    expect(baseline.failures / baseline.finished).toBeGreaterThan(0.2);
  });

  it('never learns a slide below the threshold: traffic judged uncertain is left out of the baseline', () => {
    const learnedAt = (rate: number) =>
      run(NOW - 60 * MINUTE, NOW, () => ({
        'alipay:CN-GD': {
          ...steady(400, rate),
          settled: { finished: 100, failures: rate * 100, timed: 100 },
        },
      })).state.pairs['alipay:CN-GD']!.baseline;
    const normal = learnedAt(0.02);
    expect(normal.finished).toBeGreaterThan(0);
    // 9%: above halfway to the threshold (about 7%), below the threshold (about 11%).
    const sliding = learnedAt(0.09);
    expect(sliding.finished).toBe(0);
  });

  it('never lists an unproven or confirming backup; names none when none qualifies', () => {
    const set = signals(NOW, {
      'alipay:CN-GD': steady(400, 0.9),
      'wechat_pay:CN-GD': steady(400, 0.02),
      'unionpay:CN-GD': steady(400, 0.02),
      // 34 successes, but 6 failures of 40: its failure share is not proven below its threshold.
      'other:CN-GD': { windows: { 300: { created: 40, finished: 40, failures: 6, timed: 40 } } },
      'quiet:CN-GD': {
        ...steady(2, 0),
        windows: {
          300: { created: 5, finished: 5, timed: 5 },
          3600: { created: 60, finished: 60, timed: 60 },
        },
      },
    });
    const query = {
      failing: 'alipay',
      region: 'CN-GD',
      channels: CHANNELS,
      settings: shippedSettings,
      set,
      baselineOf: () => 0.02,
    };
    // quiet has not failed lately, but 5 successes in 5 minutes prove nothing; nor do other's.
    expect(rankBackupChannels({ ...query, isHealthyNow: () => true })).toEqual(['wechat_pay', 'unionpay']);
    expect(rankBackupChannels({ ...query, isHealthyNow: (key) => key !== 'wechat_pay:CN-GD' })).toEqual([
      'unionpay',
    ]);
    expect(rankBackupChannels({ ...query, isHealthyNow: () => false })).toEqual([]);
    // With a high threshold (a 40% baseline) the bound alone would admit quiet's 5 successes;
    // backup.minSuccesses still keeps it out.
    expect(rankBackupChannels({ ...query, baselineOf: () => 0.4, isHealthyNow: () => true })).not.toContain(
      'quiet',
    );
    const one = { ...shippedSettings, backup: { ...shippedSettings.backup, maxListed: 1 } };
    expect(rankBackupChannels({ ...query, settings: one, isHealthyNow: () => true })).toHaveLength(1);
  });
});

describe('settings that would blind a pair', () => {
  it('refuses a baseline cap and margins under which the threshold reaches 1, naming where', () => {
    expect(settingsProblems(shippedSettings)).toEqual([]);
    const blind: PaymentHealthSettings = {
      ...shippedSettings,
      overrides: {
        ...shippedSettings.overrides,
        channels: { ...shippedSettings.overrides.channels, bank_card: { baseline: { maxRate: 0.5 } } },
      },
    };
    const problems = settingsProblems(blind);
    expect(problems.map((p) => p.path.join('.'))).toContain('overrides.channels.bank_card.failures');
    expect(problems[0]!.found).toBe('0.5 + 0.5 = 1');
  });
});
