// The simulator: a deterministic, realistic platform whose incidents show up where they are
// scripted, and the in-memory observation model the detector's signals are checked against.
import { describe, expect, it } from 'vitest';
import { MAX_TRIES, startLiveWriter, type LiveWriterDb } from '../../sim/live.ts';
import { copyRow, copyText } from '../../sim/load.ts';
import { observeAll, observed } from '../../sim/observe.ts';
import {
  USERS_REFERENCE_NOW,
  expectedAttempts,
  generateUsers,
  referencePlatform,
  trafficFactor,
  wideRegionPlatform,
} from '../../sim/platform.ts';
import { attemptAsOf, attemptsAsOf, finishedAtOf, generateAttempts } from '../../sim/traffic.ts';
import type { Scenario, SimAttempt, TrafficOptions } from '../../sim/traffic.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;
// 2025-06-01 00:00 in Beijing (UTC+8).
const DAY_START = Date.UTC(2025, 5, 1) - 8 * HOUR;
const platform = referencePlatform();

function attempts(options: Partial<TrafficOptions> & Pick<TrafficOptions, 'from' | 'to'>): SimAttempt[] {
  return [...generateAttempts({ platform, seed: 1, ...options })];
}

function isFailure(a: SimAttempt): boolean {
  return a.status === 'failed' || a.status === 'timeout';
}

describe('referencePlatform', () => {
  it('has 30 distinct traffic pairs on known channels, each offered where it has traffic', () => {
    const keys = new Set(platform.pairs.map((p) => `${p.channel}:${p.region}`));
    expect(keys.size).toBe(30);
    expect(platform.pairs).toHaveLength(30);
    const regionCodes = new Set(platform.regions.map((r) => r.code));
    for (const pair of platform.pairs) {
      const channel = platform.channels.find((c) => c.id === pair.channel);
      expect(channel, pair.channel).toBeDefined();
      expect(channel!.enabled).toBe(true);
      expect(channel!.regions.includes('*') || channel!.regions.includes(pair.region)).toBe(true);
      expect(regionCodes.has(pair.region)).toBe(true);
    }
    expect(platform.channels.find((c) => c.id === 'alipay')?.displayName).toBe('支付宝');
    expect(platform.channels.some((c) => !c.enabled)).toBe(true);
  });

  it('peaks in the evening and bottoms out before dawn, Beijing time', () => {
    const at = (hour: number) => trafficFactor(platform.dailyCycle, DAY_START + hour * HOUR);
    expect(at(20.5)).toBeCloseTo(1, 5);
    expect(at(4.5)).toBeGreaterThanOrEqual(0.2);
    expect(at(4.5)).toBeLessThanOrEqual(0.25);
    expect(expectedAttempts(platform, DAY_START, DAY_START + 24 * HOUR)).toBeGreaterThan(1_350_000);
    expect(expectedAttempts(platform, DAY_START, DAY_START + 24 * HOUR)).toBeLessThan(1_450_000);
  });
});

describe('generateAttempts', () => {
  it('yields the same attempts for the same seed and different ones for another', () => {
    const window = { from: DAY_START + 20 * HOUR, to: DAY_START + 20 * HOUR + 5 * MINUTE };
    const a = attempts({ ...window, seed: 7 });
    const b = attempts({ ...window, seed: 7 });
    const c = attempts({ ...window, seed: 8 });
    expect(a.length).toBeGreaterThan(1_000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('produces about 1.4 million attempts a day with a visible day/night cycle, in created_at order', () => {
    const perHour = new Array<number>(24).fill(0);
    const statuses = new Map<string, number>();
    let total = 0;
    let previous: SimAttempt | null = null;
    let ordered = true;
    let latencyOnlyWhenSucceeded = true;
    for (const a of generateAttempts({ platform, seed: 3, from: DAY_START, to: DAY_START + 24 * HOUR })) {
      total += 1;
      const hour = Math.floor((a.createdAt - DAY_START) / HOUR);
      perHour[hour] = perHour[hour]! + 1;
      statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      if (previous && (a.createdAt < previous.createdAt || a.id !== previous.id + 1)) ordered = false;
      if ((a.latencyMs !== null) !== (a.status === 'succeeded')) latencyOnlyWhenSucceeded = false;
      previous = a;
    }
    expect(ordered).toBe(true);
    expect(latencyOnlyWhenSucceeded).toBe(true);
    expect(total).toBeGreaterThan(1_400_000 * 0.9);
    expect(total).toBeLessThan(1_400_000 * 1.1);
    expect(Math.abs(total / expectedAttempts(platform, DAY_START, DAY_START + 24 * HOUR) - 1)).toBeLessThan(
      0.01,
    );

    const busiest = perHour.indexOf(Math.max(...perHour));
    const quietest = perHour.indexOf(Math.min(...perHour));
    expect([20, 21]).toContain(busiest);
    expect([3, 4, 5]).toContain(quietest);
    const trough = perHour[quietest]! / perHour[busiest]!;
    expect(trough).toBeGreaterThan(0.18);
    expect(trough).toBeLessThan(0.3);

    const share = (status: string) => (statuses.get(status) ?? 0) / total;
    expect(share('pending')).toBeGreaterThan(0.001);
    expect(share('pending')).toBeLessThan(0.004);
    expect(share('failed') + share('timeout')).toBeGreaterThan(0.02);
    expect(share('failed') + share('timeout')).toBeLessThan(0.06);
  });

  it('gives each pair its normal failure share and latency', () => {
    const all = attempts({ from: DAY_START + 19 * HOUR, to: DAY_START + 21 * HOUR });
    const failureShare = (channel: string) => {
      const mine = all.filter((a) => a.channelId === channel);
      return mine.filter(isFailure).length / mine.length;
    };
    expect(failureShare('bank_card')).toBeGreaterThan(0.08);
    expect(failureShare('bank_card')).toBeLessThan(0.13);
    expect(failureShare('alipay')).toBeGreaterThan(0.015);
    expect(failureShare('alipay')).toBeLessThan(0.03);

    const latencies = all
      .filter((a) => a.channelId === 'alipay' && a.status === 'succeeded')
      .map((a) => a.latencyMs!)
      .sort((x, y) => x - y);
    const median = latencies[Math.floor(latencies.length / 2)]!;
    expect(median).toBeGreaterThan(1_000);
    expect(median).toBeLessThan(4_000);
    const slowShare = latencies.filter((l) => l > 15_000).length / latencies.length;
    expect(slowShare).toBeGreaterThan(0);
    expect(slowShare).toBeLessThan(0.01);
  });

  it('numbers attempts from firstId and scales the rate', () => {
    const window = { from: DAY_START + 20 * HOUR, to: DAY_START + 20 * HOUR + 10 * MINUTE };
    const normal = attempts(window);
    const half = attempts({ ...window, rateScale: 0.5, firstId: 1_000 });
    expect(half[0]!.id).toBe(1_000);
    expect(half.length / normal.length).toBeGreaterThan(0.45);
    expect(half.length / normal.length).toBeLessThan(0.55);
    expect(attempts({ ...window, rateScale: 0 })).toEqual([]);
    expect(attempts({ from: window.from, to: window.from })).toEqual([]);
  });

  it('draws users of the attempt region when given users with regions', () => {
    const users = generateUsers(2_000, 5);
    const regionOf = new Map(users.map((u) => [u.id, u.region]));
    const window = { from: DAY_START + 20 * HOUR, to: DAY_START + 20 * HOUR + 2 * MINUTE };
    for (const a of attempts({ ...window, users })) expect(regionOf.get(a.userId)).toBe(a.region);
    const ids = ['only-one'];
    expect(new Set(attempts({ ...window, users: ids }).map((a) => a.userId))).toEqual(new Set(ids));
  });
});

describe('scenarios', () => {
  const from = DAY_START + 20 * HOUR;
  const to = from + 30 * MINUTE;
  const incident = { from: from + 10 * MINUTE, to: from + 20 * MINUTE };

  function run(effect: Scenario['effect'], region = 'CN-GD') {
    const scenario: Scenario = { channel: 'alipay', region, ...incident, effect };
    const baseline = attempts({ from, to });
    const changed = attempts({ from, to, scenarios: [scenario] });
    const inside = changed.filter(
      (a) =>
        a.channelId === 'alipay' &&
        (region === '*' || a.region === region) &&
        a.createdAt >= incident.from &&
        a.createdAt < incident.to,
    );
    const insideIds = new Set(inside.map((a) => a.id));
    return { baseline, changed, inside, insideIds };
  }

  it('changes only the attempts of the scripted pair and window', () => {
    const { baseline, changed, inside, insideIds } = run({ type: 'outage' });
    expect(changed.length).toBe(baseline.length);
    expect(inside.length).toBeGreaterThan(1_000);
    const outside = (a: SimAttempt) => !insideIds.has(a.id);
    expect(changed.filter(outside)).toEqual(baseline.filter(outside));
    expect(baseline.filter((a) => insideIds.has(a.id)).every(isFailure)).toBe(false);
  });

  it('outage: every attempt fails, some as timeouts, with error codes', () => {
    const { inside } = run({ type: 'outage' });
    expect(inside.every(isFailure)).toBe(true);
    const timeouts = inside.filter((a) => a.status === 'timeout').length / inside.length;
    expect(timeouts).toBeGreaterThan(0.2);
    expect(timeouts).toBeLessThan(0.5);
    expect(inside.every((a) => a.errorCode !== null && a.latencyMs === null)).toBe(true);
    const codes = new Set(inside.map((a) => a.errorCode));
    expect(codes).toContain('ACQ.SYSTEM_ERROR');
  });

  it("outage on region '*' takes down every region of the channel", () => {
    const { inside } = run({ type: 'outage' }, '*');
    expect(new Set(inside.map((a) => a.region)).size).toBe(5);
    expect(inside.every(isFailure)).toBe(true);
  });

  it('failureRate: the failure share rises to the given rate', () => {
    const { inside } = run({ type: 'failureRate', rate: 0.3 });
    const share = inside.filter(isFailure).length / inside.length;
    expect(share).toBeGreaterThan(0.27);
    expect(share).toBeLessThan(0.33);
  });

  it('slow: successes confirm after about the given latency', () => {
    const { inside } = run({ type: 'slow', latencyMs: 40_000 });
    const succeeded = inside.filter((a) => a.status === 'succeeded');
    expect(succeeded.length / inside.length).toBeGreaterThan(0.95);
    expect(succeeded.every((a) => a.latencyMs! >= 30_000)).toBe(true);
    const mean = succeeded.reduce((sum, a) => sum + a.latencyMs!, 0) / succeeded.length;
    expect(mean).toBeGreaterThan(37_000);
    expect(mean).toBeLessThan(43_000);
  });

  it('stuckPending: the given share stays pending', () => {
    const { inside } = run({ type: 'stuckPending', share: 0.5 });
    const share = inside.filter((a) => a.status === 'pending').length / inside.length;
    expect(share).toBeGreaterThan(0.46);
    expect(share).toBeLessThan(0.54);
    expect(inside.filter((a) => a.status === 'pending').every((a) => a.latencyMs === null)).toBe(true);
  });

  it('rejects scenarios that could never take effect', () => {
    const bad = (scenario: Scenario) => () => attempts({ from, to, scenarios: [scenario] });
    expect(bad({ channel: 'alipay', region: 'CN-XX', ...incident, effect: { type: 'outage' } })).toThrow(
      /region: expected '\*' or a region where alipay has traffic/,
    );
    expect(bad({ channel: 'paypal', region: 'CN-GD', ...incident, effect: { type: 'outage' } })).toThrow(
      /channel/,
    );
    expect(
      bad({ channel: 'alipay', region: 'CN-GD', ...incident, effect: { type: 'failureRate', rate: 3 } }),
    ).toThrow(/effect.rate/);
    expect(
      bad({ channel: 'alipay', region: 'CN-GD', from: to, to: from, effect: { type: 'outage' } }),
    ).toThrow(/from, to/);
  });
});

/**
 * Checks that `count` of `n` draws is within 5 binomial standard deviations of a share `p`: far
 * enough that a seed change could not plausibly fail it, close enough that a broken effect does.
 */
function expectShare(label: string, count: number, n: number, p: number): void {
  expect(n, `${label}: attempts`).toBeGreaterThan(100);
  const tolerance = 5 * Math.sqrt((p * (1 - p)) / n);
  const share = count / n;
  expect(
    Math.abs(share - p),
    `${label}: ${count}/${n} = ${share.toFixed(4)}, expected ${p.toFixed(4)} ± ${tolerance.toFixed(4)}`,
  ).toBeLessThanOrEqual(tolerance);
}

/** The finishedAt rules: declines 1-3 s after creation, timeouts 30 s, successes after their latency. */
function finishProblems(list: readonly SimAttempt[]): string[] {
  const problems: string[] = [];
  for (const a of list) {
    const after = a.finishedAt === null ? null : a.finishedAt - a.createdAt;
    const ok =
      a.status === 'pending'
        ? after === null
        : a.status === 'timeout'
          ? after === 30_000
          : a.status === 'failed'
            ? after !== null && after >= 1_000 && after <= 3_000
            : after !== null && a.latencyMs !== null && after === a.latencyMs;
    if (!ok) problems.push(`${a.id} ${a.status} finished ${after} ms after creation`);
  }
  return problems;
}

describe('outage with share and timeoutShare', () => {
  // 20:00-20:30 in Beijing, where the cycle is flat at its peak: about 12,000 alipay CN-GD attempts.
  const from = DAY_START + 20 * HOUR;
  const to = from + 30 * MINUTE;
  const pair = platform.pairs.find((p) => p.channel === 'alipay' && p.region === 'CN-GD')!;

  function inside(...effects: Scenario['effect'][]): SimAttempt[] {
    const scenarios = effects.map((effect): Scenario => ({
      channel: 'alipay',
      region: 'CN-GD',
      from,
      to,
      effect,
    }));
    return attempts({ from, to, seed: 21, scenarios }).filter(
      (a) => a.channelId === 'alipay' && a.region === 'CN-GD',
    );
  }
  const timeouts = (list: readonly SimAttempt[]) => list.filter((a) => a.status === 'timeout');
  const gatewayTimeouts = (list: readonly SimAttempt[]) =>
    list.filter((a) => a.errorCode === 'GATEWAY_TIMEOUT');

  it('share 0.95, timeoutShare 0.6: 95% fail, 60% of the outage’s failures as timeouts, the rest behave normally', () => {
    const list = inside({ type: 'outage', share: 0.95, timeoutShare: 0.6 });
    expect(list.length).toBeGreaterThan(10_000);
    // The outage adds failures to the normal ones until 95% of all attempts fail.
    const extra = (0.95 - pair.failureRate) / (1 - pair.failureRate);
    const failures = list.filter(isFailure);
    expectShare('failure share', failures.length, list.length, 0.95);
    // 60% of the outage's own failures time out (the gateway's code); normal timeouts have their own.
    expectShare(
      'gateway timeouts among failures',
      gatewayTimeouts(failures).length,
      failures.length,
      (extra * 0.6) / 0.95,
    );
    expect(
      timeouts(list).every((a) => ['GATEWAY_TIMEOUT', 'PAY_CONFIRM_TIMEOUT'].includes(a.errorCode!)),
    ).toBe(true);
    // The 5% left behave as on a normal day: mostly confirmed, with normal latencies.
    const succeeded = list.filter((a) => a.status === 'succeeded');
    const normal = (1 - extra) * (1 - pair.pendingRate - pair.failureRate);
    expectShare('successes', succeeded.length, list.length, normal);
    const latencies = succeeded.map((a) => a.latencyMs!).sort((x, y) => x - y);
    expect(latencies[Math.floor(latencies.length / 2)]).toBeGreaterThan(800);
    expect(latencies[Math.floor(latencies.length / 2)]).toBeLessThan(1_800);
  });

  it('finishes each attempt when its outcome is known: declines after 1-3 s, timeouts after 30 s, successes after their latency', () => {
    const list = inside({ type: 'outage', share: 0.95, timeoutShare: 0.6 });
    expect(finishProblems(list)).toEqual([]);
    const declines = list.filter((a) => a.status === 'failed').map((a) => a.finishedAt! - a.createdAt);
    expect(declines.length).toBeGreaterThan(3_000);
    // Spread evenly over 1-3 s: mean 2 s (sd of one delay 2000/sqrt(12) ms), edges reached.
    const mean = declines.reduce((sum, d) => sum + d, 0) / declines.length;
    expect(Math.abs(mean - 2_000)).toBeLessThan((5 * 2_000) / Math.sqrt(12) / Math.sqrt(declines.length));
    expect(Math.min(...declines)).toBeLessThan(1_050);
    expect(Math.max(...declines)).toBeGreaterThan(2_950);
    expect(timeouts(list).length).toBeGreaterThan(5_000);
  });

  it('timeoutShare 1 makes every outage failure a timeout; 0 none; without it 35%', () => {
    const allTimeouts = inside({ type: 'outage', timeoutShare: 1 });
    expect(allTimeouts.every((a) => a.status === 'timeout' && a.finishedAt === a.createdAt + 30_000)).toBe(
      true,
    );
    const noTimeouts = inside({ type: 'outage', timeoutShare: 0 });
    expect(noTimeouts.every((a) => a.status === 'failed')).toBe(true);
    expect(finishProblems(noTimeouts)).toEqual([]);
    const byDefault = inside({ type: 'outage', share: 0.95 });
    const failures = byDefault.filter(isFailure);
    const extra = (0.95 - pair.failureRate) / (1 - pair.failureRate);
    expectShare(
      'default gateway timeouts',
      gatewayTimeouts(failures).length,
      failures.length,
      (extra * 0.35) / 0.95,
    );
  });

  it('of overlapping outages, the one failing most attempts wins, with its own timeout share', () => {
    const list = inside(
      { type: 'outage', share: 0.5, timeoutShare: 1 },
      { type: 'outage', share: 0.95, timeoutShare: 0 },
    );
    expectShare('failure share', list.filter(isFailure).length, list.length, 0.95);
    expect(gatewayTimeouts(list)).toEqual([]);
  });

  it('rejects shares outside their range', () => {
    const bad = (effect: Scenario['effect']) => () =>
      attempts({ from, to, scenarios: [{ channel: 'alipay', region: 'CN-GD', from, to, effect }] });
    expect(bad({ type: 'outage', share: 0 })).toThrow(/effect.share: expected a share in \(0, 1\], got 0/);
    expect(bad({ type: 'outage', share: 1.5 })).toThrow(/effect.share/);
    expect(bad({ type: 'outage', timeoutShare: -0.1 })).toThrow(/effect.timeoutShare/);
    expect(bad({ type: 'slide', fromRate: 0.03, toRate: 2 })).toThrow(/effect.toRate/);
    expect(bad({ type: 'slide', fromRate: Number.NaN, toRate: 0.5 })).toThrow(/effect.fromRate/);
  });
});

describe('slide', () => {
  // 20:00-21:00 in Beijing, where the cycle is flat at its peak, so arrivals are even over the
  // hour and a tenth's expected failure share is the slide's rate at the tenth's middle.
  const from = DAY_START + 20 * HOUR;
  const to = from + HOUR;
  const tenth = (to - from) / 10;

  function run(fromRate: number, toRate: number) {
    const scenario: Scenario = {
      channel: 'alipay',
      region: 'CN-GD',
      from,
      to,
      effect: { type: 'slide', fromRate, toRate },
    };
    return attempts({
      from: from - 10 * MINUTE,
      to: to + 10 * MINUTE,
      seed: 5,
      scenarios: [scenario],
    }).filter((a) => a.channelId === 'alipay' && a.region === 'CN-GD');
  }
  function tenthOf(list: readonly SimAttempt[], start: number) {
    const mine = list.filter((a) => a.createdAt >= start && a.createdAt < start + tenth);
    return { n: mine.length, failures: mine.filter(isFailure).length };
  }

  for (const [fromRate, toRate] of [
    [0.03, 0.55],
    [0.6, 0.03],
  ] as const) {
    it(`moves the failure share linearly from ${fromRate} to ${toRate} across the scenario`, () => {
      const list = run(fromRate, toRate);
      const rateAt = (progress: number) => fromRate + (toRate - fromRate) * progress;
      // Every tenth within 5 sd of the line: first, middle (the tenth around half-way) and last
      // named, the others too, so that a step, a reversed or a constant slide fails.
      for (const [label, start] of [
        ['first tenth', 0],
        ['middle tenth', 4.5],
        ['last tenth', 9],
        ...[1, 2, 3, 4, 5, 6, 7, 8].map((k) => [`tenth ${k + 1}`, k] as const),
      ] as const) {
        const { n, failures } = tenthOf(list, from + start * tenth);
        expectShare(`${label} of ${fromRate}→${toRate}`, failures, n, rateAt((start + 0.5) / 10));
      }
      // Outside the scenario, the pair's normal 2%.
      for (const [label, start] of [
        ['before', from - 10 * MINUTE],
        ['after', to],
      ] as const) {
        const outside = list.filter((a) => a.createdAt >= start && a.createdAt < start + 10 * MINUTE);
        expectShare(`${label} the slide`, outside.filter(isFailure).length, outside.length, 0.02);
      }
      expect(finishProblems(list)).toEqual([]);
    });
  }
});

describe('wideRegionPlatform', () => {
  const wide = wideRegionPlatform();
  const HB = 'CN-HB';

  it('is the reference platform plus Hubei, served by six channels of mixed volume', () => {
    expect(wide.regions).toEqual([
      ...platform.regions,
      { code: HB, name: '湖北', timezone: 'Asia/Shanghai' },
    ]);
    expect(wide.pairs.slice(0, platform.pairs.length)).toEqual(platform.pairs);
    expect(wide.dailyCycle).toEqual(platform.dailyCycle);
    const hubei = wide.pairs.slice(platform.pairs.length);
    expect(hubei.map((p) => [p.channel, p.region, p.peakPerMinute, p.failureRate])).toEqual([
      ['alipay', HB, 350, 0.02],
      ['wechat_pay', HB, 280, 0.028],
      ['unionpay', HB, 25, 0.05],
      ['bank_card', HB, 20, 0.1],
      ['jd_pay', HB, 8, 0.045],
      ['qq_wallet', HB, 1.5, 0.06],
    ]);
    // Each behaves as its channel does elsewhere, on a copy (changing one changes no other).
    for (const p of hubei) {
      const like = platform.pairs.find((q) => q.channel === p.channel)!;
      expect(p.latency).toEqual(like.latency);
      expect(p.latency).not.toBe(wide.pairs.find((q) => q.channel === p.channel)!.latency);
      expect(p.pendingRate).toBe(like.pendingRate);
    }
  });

  it('offers every Hubei pair’s channel there, and Douyin Pay without traffic; PayPal stays off', () => {
    const offered = (id: string) => {
      const c = wide.channels.find((ch) => ch.id === id)!;
      return c.regions.includes('*') || c.regions.includes(HB);
    };
    expect(wide.channels.map((c) => c.id)).toEqual(platform.channels.map((c) => c.id));
    for (const c of wide.channels) {
      const before = platform.channels.find((ch) => ch.id === c.id)!;
      const added = ['bank_card', 'jd_pay', 'qq_wallet', 'douyin_pay'].includes(c.id);
      expect(c).toEqual(added ? { ...before, regions: [...before.regions, HB] } : before);
    }
    for (const p of wide.pairs) expect(offered(p.channel), `${p.channel} ${p.region}`).toBe(true);
    expect(offered('douyin_pay')).toBe(true);
    expect(wide.pairs.some((p) => p.channel === 'douyin_pay' && p.region === HB)).toBe(false);
    expect(wide.channels.find((c) => c.id === 'paypal')!.enabled).toBe(false);
    // The reference platform is not changed by it.
    expect(referencePlatform().channels.find((c) => c.id === 'bank_card')!.regions).not.toContain(HB);
  });

  it('keeps the reference pairs’ traffic for the same seed and adds Hubei’s at its rates', () => {
    const from = DAY_START + 20 * HOUR;
    const to = from + HOUR;
    const withoutId = ({ id: _id, ...rest }: SimAttempt) => rest;
    const reference = [...generateAttempts({ platform, from, to, seed: 9 })];
    const all = [...generateAttempts({ platform: wide, from, to, seed: 9 })];
    expect(all.filter((a) => a.region !== HB).map(withoutId)).toEqual(reference.map(withoutId));
    // At the peak (factor 1) a pair's hour holds Poisson(60 × peakPerMinute) attempts.
    for (const p of wide.pairs.slice(platform.pairs.length)) {
      const n = all.filter((a) => a.region === HB && a.channelId === p.channel).length;
      const mean = 60 * p.peakPerMinute;
      expect(Math.abs(n - mean), `${p.channel}: ${n} attempts, expected ${mean}`).toBeLessThan(
        5 * Math.sqrt(mean),
      );
    }
    expect(finishProblems(all)).toEqual([]);
  });

  it('can take the whole region down: a scenario per channel there, none for one without traffic', () => {
    const from = DAY_START + 20 * HOUR;
    const to = from + 10 * MINUTE;
    const channels = ['alipay', 'wechat_pay', 'unionpay', 'bank_card', 'jd_pay', 'qq_wallet'];
    const scenarios = channels.map((channel): Scenario => ({
      channel,
      region: HB,
      from,
      to,
      effect: { type: 'outage', share: 0.95, timeoutShare: 0.6 },
    }));
    const list = [...generateAttempts({ platform: wide, from, to, seed: 4, scenarios })];
    const hubei = list.filter((a) => a.region === HB);
    expectShare('Hubei failure share', hubei.filter(isFailure).length, hubei.length, 0.95);
    expect(new Set(hubei.map((a) => a.channelId))).toEqual(new Set(channels));
    const elsewhere = list.filter((a) => a.region !== HB);
    expect(elsewhere.filter(isFailure).length / elsewhere.length).toBeLessThan(0.05);
    expect(() =>
      generateAttempts({
        platform: wide,
        from,
        to,
        seed: 4,
        scenarios: [{ channel: 'douyin_pay', region: HB, from, to, effect: { type: 'outage' } }],
      }),
    ).toThrow(/region: expected '\*' or a region where douyin_pay has traffic \(CN-BJ, CN-SH\), got CN-HB/);
  });
});

describe('startLiveWriter on generated traffic', () => {
  it('keeps the table as the platform had it at each flush: pending until finishedAt, then final', async () => {
    // One busy pair through a 95% outage (60% as 30 s timeouts) and back, written live.
    const from = DAY_START + 20 * HOUR;
    const to = from + 4 * MINUTE;
    const onePair = {
      ...platform,
      pairs: platform.pairs.filter((p) => p.channel === 'alipay' && p.region === 'CN-GD'),
    };
    const scenarios: Scenario[] = [
      {
        channel: 'alipay',
        region: 'CN-GD',
        from: from + MINUTE,
        to: from + 3 * MINUTE,
        effect: { type: 'outage', share: 0.95, timeoutShare: 0.6 },
      },
    ];
    const list = [...generateAttempts({ platform: onePair, from, to, seed: 13, scenarios })];
    expect(list.filter((a) => a.status === 'timeout').length).toBeGreaterThan(200);
    expect(list.some((a) => a.status === 'pending')).toBe(true);

    // A table that applies the writer's statements by their parameters.
    const table = new Map<number, SimAttempt>();
    const db: LiveWriterDb = {
      query(text, values) {
        const [ids, a, b, c, d] = values as [number[], unknown[], unknown[], unknown[], string[]];
        ids.forEach((id, i) => {
          if (text.trim().startsWith('INSERT')) {
            table.set(id, {
              id,
              userId: a[i] as string,
              channelId: b[i] as string,
              region: c[i] as string,
              status: 'pending',
              errorCode: null,
              latencyMs: null,
              createdAt: Date.parse(d[i]!),
              finishedAt: null,
            });
          } else {
            const row = table.get(id)!;
            Object.assign(row, {
              status: a[i],
              errorCode: b[i],
              latencyMs: c[i],
              finishedAt: Date.parse(d[i]!),
            });
          }
        });
        return Promise.resolve({ rowCount: ids.length });
      },
    };
    let now = from;
    const writer = startLiveWriter({
      db,
      schema: 'platform',
      attempts: list,
      logger: { warn: () => undefined },
      now: () => now,
      flushEveryMs: null,
    });
    const mismatches: string[] = [];
    let flushes = 0;
    for (now = from; now <= to + 35_000; now += 700) {
      await writer.flush();
      flushes++;
      const expected = [...attemptsAsOf(list, now)];
      if (expected.length !== table.size)
        mismatches.push(`${now - from} ms: ${table.size} rows, expected ${expected.length}`);
      for (const row of expected) {
        if (JSON.stringify(table.get(row.id)) !== JSON.stringify(row)) {
          mismatches.push(
            `${now - from} ms: row ${row.id} is ${JSON.stringify(table.get(row.id))}, expected ${JSON.stringify(row)}`,
          );
        }
      }
      if (mismatches.length > 5) break;
    }
    expect(mismatches).toEqual([]);
    expect(flushes).toBeGreaterThan(380);
    const stuck = list.filter((a) => a.status === 'pending').length;
    expect(await writer.stop()).toEqual({
      inserted: list.length,
      finished: list.length - stuck,
      pending: stuck,
      dropped: 0,
      errors: 0,
    });
    // Every row ends as generated.
    expect([...table.values()]).toEqual(list);
  });
});

describe('finishedAt', () => {
  const from = DAY_START + 20 * HOUR;
  const to = from + 20 * MINUTE;
  const scenarios: Scenario[] = [
    { channel: 'alipay', region: 'CN-GD', from, to: from + 5 * MINUTE, effect: { type: 'outage' } },
    { channel: 'unionpay', region: 'CN-GD', from, to, effect: { type: 'stuckPending', share: 0.5 } },
  ];
  const list = attempts({ from, to, scenarios });
  const byStatus = (status: SimAttempt['status']) => list.filter((a) => a.status === status);

  it('is when the outcome is known: 1-3 s for a failure, 30 s for a timeout, the latency for a success', () => {
    const delays = byStatus('failed').map((a) => a.finishedAt! - a.createdAt);
    expect(delays.length).toBeGreaterThan(1_000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(1_000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(3_000);
    // Spread over the range, not stuck at one value.
    expect(Math.min(...delays)).toBeLessThan(1_100);
    expect(Math.max(...delays)).toBeGreaterThan(2_900);
    expect(byStatus('timeout').length).toBeGreaterThan(100);
    expect(byStatus('timeout').every((a) => a.finishedAt === a.createdAt + 30_000)).toBe(true);
    expect(byStatus('succeeded').every((a) => a.finishedAt === a.createdAt + a.latencyMs!)).toBe(true);
  });

  it('is null only for attempts that stay pending', () => {
    expect(byStatus('pending').length).toBeGreaterThan(100);
    expect(list.every((a) => (a.finishedAt === null) === (a.status === 'pending'))).toBe(true);
  });
});

describe('attemptAsOf', () => {
  const created = Date.UTC(2025, 5, 1, 12);
  const base: SimAttempt = {
    id: 1,
    userId: 'u1',
    channelId: 'alipay',
    region: 'CN-GD',
    status: 'succeeded',
    errorCode: null,
    latencyMs: 2_500,
    createdAt: created,
    finishedAt: created + 2_500,
  };
  const pendingOf = (a: SimAttempt): SimAttempt => ({
    ...a,
    status: 'pending',
    errorCode: null,
    latencyMs: null,
    finishedAt: null,
  });

  it('is absent before creation, pending until finishedAt and final from then on', () => {
    const failed: SimAttempt = {
      ...base,
      status: 'failed',
      errorCode: 'SYSTEMERROR',
      latencyMs: null,
      finishedAt: created + 1_200,
    };
    expect(attemptAsOf(base, created - 1)).toBeNull();
    expect(attemptAsOf(base, created)).toEqual(pendingOf(base));
    expect(attemptAsOf(base, created + 2_499)).toEqual(pendingOf(base));
    expect(attemptAsOf(base, created + 2_500)).toBe(base);
    expect(attemptAsOf(failed, created + 1_199)).toEqual(pendingOf(failed));
    expect(attemptAsOf(failed, created + 1_200)).toBe(failed);
  });

  it('keeps a stuck attempt pending, and reads a final one without finishedAt as the contract does', () => {
    const stuck = pendingOf(base);
    expect(attemptAsOf(stuck, created + HOUR)).toBe(stuck);
    expect(finishedAtOf(stuck)).toBeNull();
    const unrecorded = { ...base, finishedAt: null };
    expect(finishedAtOf(unrecorded)).toBe(created + 2_500);
    expect(attemptAsOf(unrecorded, created + 2_499)).toEqual(pendingOf(unrecorded));
    expect(attemptAsOf(unrecorded, created + 2_500)).toBe(unrecorded);
    const timedOut = { ...unrecorded, status: 'timeout' as const, latencyMs: null };
    expect(finishedAtOf(timedOut)).toBe(created);
  });

  it('attemptsAsOf gives the table at a moment: rows created by then, as they read then', () => {
    const from = DAY_START + 20 * HOUR;
    const list = attempts({ from, to: from + MINUTE });
    const at = from + 30_000;
    const rows = [...attemptsAsOf(list, at)];
    expect(rows.map((r) => r.id)).toEqual(list.filter((a) => a.createdAt <= at).map((a) => a.id));
    expect(rows.some((r) => r.status === 'pending' && r.finishedAt === null)).toBe(true);
    expect(rows.every((r) => r.finishedAt === null || r.finishedAt <= at)).toBe(true);
  });
});

describe('startLiveWriter', () => {
  const T = Date.UTC(2025, 5, 1, 12);
  const make = (id: number, status: SimAttempt['status'], createdAt: number, finishedAt: number | null) => ({
    id,
    userId: `u${id}`,
    channelId: 'alipay',
    region: 'CN-GD',
    status,
    errorCode: status === 'failed' ? 'SYSTEMERROR' : status === 'timeout' ? 'GATEWAY_TIMEOUT' : null,
    latencyMs: status === 'succeeded' && finishedAt !== null ? finishedAt - createdAt : null,
    createdAt,
    finishedAt,
  });
  const list: SimAttempt[] = [
    make(1, 'succeeded', T, T + 2_000),
    make(2, 'failed', T + 500, T + 2_000),
    make(3, 'pending', T + 1_000, null),
    make(4, 'timeout', T + 1_500, T + 31_500),
    make(5, 'succeeded', T + 5_000, T + 5_100),
  ];

  interface Statement {
    verb: string;
    values: unknown[];
  }
  function fakeDb(fail: (verb: string) => boolean = () => false) {
    const statements: Statement[] = [];
    const db: LiveWriterDb = {
      query(text, values) {
        const verb = text.trim().split(/\s+/)[0]!;
        statements.push({ verb, values });
        if (fail(verb)) return Promise.reject(new Error(`${verb} refused`));
        return Promise.resolve({ rowCount: (values[0] as unknown[]).length });
      },
    };
    return { db, statements };
  }
  function logs() {
    const lines: Array<{ bindings: Record<string, unknown>; message: string }> = [];
    return {
      lines,
      logger: {
        warn: (bindings: Record<string, unknown>, message: string) => lines.push({ bindings, message }),
      },
    };
  }

  it('inserts each attempt as pending once created and updates it in place once finished, one statement of each per flush', async () => {
    const { db, statements } = fakeDb();
    let now = T - 1;
    const writer = startLiveWriter({
      db,
      schema: 'platform',
      attempts: list,
      logger: logs().logger,
      now: () => now,
      flushEveryMs: null,
    });
    await writer.flush();
    expect(statements).toEqual([]);

    now = T + 1_000;
    expect(await writer.flush()).toEqual({ inserted: 3, finished: 0, pending: 3, dropped: 0, errors: 0 });
    expect(statements).toEqual([
      {
        verb: 'INSERT',
        values: [
          [1, 2, 3],
          ['u1', 'u2', 'u3'],
          ['alipay', 'alipay', 'alipay'],
          ['CN-GD', 'CN-GD', 'CN-GD'],
          [T, T + 500, T + 1_000].map((ms) => new Date(ms).toISOString()),
        ],
      },
    ]);

    statements.length = 0;
    now = T + 2_000;
    expect(await writer.flush()).toEqual({ inserted: 4, finished: 2, pending: 2, dropped: 0, errors: 0 });
    expect(statements.map((st) => [st.verb, st.values[0]])).toEqual([
      ['INSERT', [4]],
      ['UPDATE', [1, 2]],
    ]);
    expect(statements[1]!.values).toEqual([
      [1, 2],
      ['succeeded', 'failed'],
      [null, 'SYSTEMERROR'],
      [2_000, null],
      [new Date(T + 2_000).toISOString(), new Date(T + 2_000).toISOString()],
    ]);

    // Created and finished between two flushes: inserted and updated by the same one.
    statements.length = 0;
    now = T + 40_000;
    expect(await writer.stop()).toEqual({ inserted: 5, finished: 4, pending: 1, dropped: 0, errors: 0 });
    expect(statements.map((st) => [st.verb, st.values[0]])).toEqual([
      ['INSERT', [5]],
      ['UPDATE', [5, 4]],
    ]);
  });

  it('logs a failed statement, retries it with the next flush and gives up after MAX_TRIES', async () => {
    let insertsRefused = 1;
    let updatesRefused = MAX_TRIES;
    const { db, statements } = fakeDb((verb) =>
      verb === 'INSERT' ? insertsRefused-- > 0 : updatesRefused-- > 0,
    );
    const { lines, logger } = logs();
    let now = T + 1_000;
    const writer = startLiveWriter({
      db,
      schema: 'platform',
      attempts: list,
      logger,
      now: () => now,
      flushEveryMs: null,
    });

    expect(await writer.flush()).toMatchObject({ inserted: 0, errors: 1 });
    expect(lines).toEqual([
      {
        bindings: expect.objectContaining({ rows: 3, retried: 3, dropped: 0 }),
        message: 'could not insert simulated payment attempts',
      },
    ]);
    now = T + 2_000;
    // The three are retried together with the one created since.
    expect(await writer.flush()).toMatchObject({ inserted: 4, finished: 0, pending: 4, errors: 2 });
    expect(statements.filter((st) => st.verb === 'INSERT').map((st) => st.values[0])).toEqual([
      [1, 2, 3],
      [1, 2, 3, 4],
    ]);
    await writer.flush();
    expect(await writer.flush()).toEqual({ inserted: 4, finished: 0, pending: 2, dropped: 2, errors: 4 });
    expect(lines.at(-1)!.bindings).toMatchObject({ rows: 2, retried: 0, dropped: 2 });

    now = T + 40_000;
    expect(await writer.stop()).toEqual({ inserted: 5, finished: 2, pending: 1, dropped: 2, errors: 4 });
  });

  it('flushes on its own timer until stopped', async () => {
    const { db, statements } = fakeDb();
    const writer = startLiveWriter({
      db,
      schema: 'platform',
      attempts: list,
      logger: logs().logger,
      now: () => T + 3_000,
      flushEveryMs: 10,
    });
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(statements.map((st) => st.verb)).toEqual(['INSERT', 'UPDATE']);
    expect(await writer.stop()).toEqual({ inserted: 4, finished: 2, pending: 2, dropped: 0, errors: 0 });
    const after = writer.counts();
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(writer.counts()).toEqual(after);
    expect(() =>
      startLiveWriter({ db, schema: 'platform', attempts: [], logger: logs().logger, flushEveryMs: 0 }),
    ).toThrow(/flushEveryMs: expected a positive number of milliseconds or null, got 0/);
  });
});

describe('generateUsers', () => {
  const users = generateUsers(10_000, 11);

  it('is deterministic, with unique ids', () => {
    expect(generateUsers(200, 11)).toEqual(users.slice(0, 200));
    expect(new Set(users.map((u) => u.id)).size).toBe(users.length);
    expect(users[0]!.id).toBe('u0000001');
  });

  it('looks like a Chinese platform user base, with the odd cases the notifier must handle', () => {
    const share = (predicate: (u: (typeof users)[number]) => boolean) =>
      users.filter(predicate).length / users.length;
    expect(share((u) => u.locale === 'zh-CN')).toBeGreaterThan(0.8);
    expect(share((u) => u.locale === 'en')).toBeGreaterThan(0.05);
    expect(share((u) => u.locale === 'fr')).toBeGreaterThan(0);
    expect(share((u) => u.email === null)).toBeGreaterThan(0.1);
    expect(share((u) => u.email === null)).toBeLessThan(0.2);
    expect(share((u) => u.status === 'active')).toBeGreaterThan(0.95);
    expect(share((u) => u.status === 'deleted')).toBeGreaterThan(0);
    expect(share((u) => u.timezone !== 'Asia/Shanghai')).toBeGreaterThan(0);
    expect(share((u) => u.lastActiveAt === null)).toBeGreaterThan(0);
    expect(new Set(users.map((u) => u.region))).toEqual(new Set(platform.regions.map((r) => r.code)));
    const inconsistent = users.filter(
      (u) =>
        u.createdAt > USERS_REFERENCE_NOW ||
        (u.lastActiveAt !== null && (u.lastActiveAt < u.createdAt || u.lastActiveAt > USERS_REFERENCE_NOW)) ||
        (u.email !== null && !/^u\d{7}@example\.(com|cn|net)$/.test(u.email)),
    );
    expect(inconsistent).toEqual([]);
  });
});

describe('observed', () => {
  const row: SimAttempt = {
    id: 7,
    userId: 'u1',
    channelId: 'alipay',
    region: 'CN-GD',
    status: 'timeout',
    errorCode: 'GATEWAY_TIMEOUT',
    latencyMs: null,
    createdAt: DAY_START + 20 * HOUR,
    finishedAt: DAY_START + 20 * HOUR + 30_000,
  };

  it('reads a simulated row as the detector reads a platform row', () => {
    expect(observed(row)).toEqual({
      channel: 'alipay',
      region: 'CN-GD',
      userId: 'u1',
      status: 'timeout',
      createdAt: row.createdAt,
      finishedAt: row.finishedAt,
      latencyMs: null,
      errorCode: 'GATEWAY_TIMEOUT',
    });
    const success = { ...row, status: 'succeeded' as const, errorCode: null, latencyMs: 1_234 };
    expect(observed(success)).toMatchObject({ status: 'succeeded', latencyMs: 1_234, errorCode: null });
  });

  it('reads a row as of a time before its finish as pending, without outcome', () => {
    expect(observed(attemptAsOf(row, row.createdAt + 29_999)!)).toEqual({
      ...observed(row),
      status: 'pending',
      errorCode: null,
      finishedAt: null,
    });
    expect(observed(attemptAsOf(row, row.finishedAt!)!)).toEqual(observed(row));
  });

  it('observeAll maps lazily, in order, as far as it is read', () => {
    let taken = 0;
    function* source(): Generator<SimAttempt> {
      for (let i = 0; i < 1_000; i++) {
        taken++;
        yield { ...row, id: i, createdAt: row.createdAt + i };
      }
    }
    const seen: number[] = [];
    for (const a of observeAll(source())) {
      seen.push(a.createdAt - row.createdAt);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(taken).toBe(3);
  });
});

describe('COPY text format', () => {
  it('escapes backslashes, tabs and line breaks and writes \\N for nulls', () => {
    expect(copyText('plain')).toBe('plain');
    expect(copyText('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    const row = copyRow({
      id: 42,
      userId: 'u\t1',
      channelId: 'alipay',
      region: 'CN-GD',
      status: 'failed',
      errorCode: null,
      latencyMs: null,
      createdAt: Date.UTC(2025, 5, 1, 12, 0, 0, 7),
      finishedAt: Date.UTC(2025, 5, 1, 12, 0, 2, 500),
    });
    expect(row).toBe(
      '42\tu\\t1\talipay\tCN-GD\tfailed\t\\N\t\\N\t2025-06-01T12:00:00.007Z\t2025-06-01T12:00:02.500Z\n',
    );
    const pending = copyRow({
      id: 43,
      userId: 'u1',
      channelId: 'alipay',
      region: 'CN-GD',
      status: 'pending',
      errorCode: null,
      latencyMs: null,
      createdAt: Date.UTC(2025, 5, 1, 12),
      finishedAt: null,
    });
    expect(pending).toBe('43\tu1\talipay\tCN-GD\tpending\t\\N\t\\N\t2025-06-01T12:00:00.000Z\t\\N\n');
  });
});
