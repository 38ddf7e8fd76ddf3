// The payment-health detector on synthetic traces with a fixed clock: what it must catch, how
// fast, and what it must let pass. Traces are simulated attempts written pending and finished in
// place (timeouts after 30 s), replayed through the same observation model as live ticks.
import { describe, expect, it } from 'vitest';
import {
  detectPaymentHealth,
  initialPaymentHealthState,
  type PaymentHealthState,
  type ReplayedIncident,
} from '../../detectors/payment-health/index.ts';
import { referencePlatform } from '../../sim/platform.ts';
import type { Scenario, SimAttempt } from '../../sim/traffic.ts';
import { beijing, HOUR, MINUTE, replay, replayTrace, shippedSettings, trace } from '../support/traces.ts';

const outage = (channel: string, region: string, from: number, ms: number): Scenario => ({
  channel,
  region,
  from,
  to: from + ms,
  effect: { type: 'outage' },
});
const names = (incidents: ReplayedIncident[]) =>
  incidents.map((i) => `${i.subject.channel}:${i.subject.region}:${i.kind}`);

describe('payment-health detector on simulated traffic', () => {
  it('opens a hard outage on a busy channel within 75 seconds, names healthy backups and error codes, and resolves it once', () => {
    const start = beijing(14);
    const t = trace({
      from: beijing(13),
      to: beijing(14, 30),
      scenarios: [outage('alipay', 'CN-GD', start, 10 * MINUTE)],
      filter: (a) => a.region === 'CN-GD',
    });
    const incidents = replay(t);
    expect(names(incidents)).toEqual(['alipay:CN-GD:failures']);
    const [incident] = incidents;
    expect(incident!.openedAt - start).toBeGreaterThan(0);
    expect(incident!.openedAt - start).toBeLessThanOrEqual(75_000);
    expect(incident!.evidence.rate).toBeGreaterThan(0.5);
    expect(incident!.evidence.lowerBound).toBeGreaterThan(incident!.evidence.threshold);
    expect(incident!.evidence.baseline).toBeLessThan(0.05);
    expect(incident!.evidence.users).toBeGreaterThanOrEqual(3);
    expect(incident!.evidence.topErrorCodes.length).toBeGreaterThan(0);
    expect(incident!.evidence.topErrorCodes[0]!.count).toBeGreaterThan(1);
    // Backups: offered in CN-GD, enabled, proven healthy there; never the broken one or the disabled PayPal.
    expect(incident!.backupChannels.length).toBeGreaterThan(0);
    expect(incident!.backupChannels).not.toContain('alipay');
    expect(incident!.backupChannels).not.toContain('paypal');
    expect(incident!.backupChannels).not.toContain('douyin_pay'); // offered in CN-GD, but no traffic there
    expect(incident!.backupChannels[0]).toBe('wechat_pay');
    expect(incident!.resolvedAt! - (start + 10 * MINUTE)).toBeGreaterThan(0);
    expect(incident!.resolvedAt! - (start + 10 * MINUTE)).toBeLessThan(5 * MINUTE);
    expect(incident!.resolveReason).toBe('recovered');
  });

  it('lets a total failure of half a minute pass, timeouts included, by day and by night', () => {
    for (const start of [beijing(14), beijing(4)]) {
      const t = trace({
        from: start - HOUR,
        to: start + 20 * MINUTE,
        scenarios: [outage('alipay', 'CN-GD', start, 30_000), outage('wechat_pay', 'CN-SH', start, 30_000)],
        filter: (a) => a.region === 'CN-GD' || a.region === 'CN-SH',
      });
      expect(replay(t)).toEqual([]);
    }
  });

  it('opens a partial drop from about 97% to 70% within 3 minutes on busy and medium channels', () => {
    const start = beijing(14);
    for (const [channel, region] of [
      ['alipay', 'CN-GD'],
      ['wechat_pay', 'CN-SH'],
    ] as const) {
      const t = trace({
        from: beijing(13),
        to: start + 15 * MINUTE,
        scenarios: [
          {
            channel,
            region,
            from: start,
            to: start + 15 * MINUTE,
            effect: { type: 'failureRate', rate: 0.3 },
          },
        ],
        filter: (a) => a.region === region,
      });
      const incidents = replay(t);
      expect(names(incidents)).toEqual([`${channel}:${region}:failures`]);
      expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(3 * MINUTE);
    }
  });

  it('opens slow confirmations within 4 minutes, whether confirmations take 30 s or never come', () => {
    const start = beijing(14);
    const scenarios: Scenario[] = [
      {
        channel: 'alipay',
        region: 'CN-SH',
        from: start,
        to: start + 20 * MINUTE,
        effect: { type: 'slow', latencyMs: 30_000 },
      },
      {
        channel: 'wechat_pay',
        region: 'CN-GD',
        from: start,
        to: start + 20 * MINUTE,
        effect: { type: 'stuckPending', share: 0.5 },
      },
    ];
    const incidents = replay(
      trace({
        from: beijing(13),
        to: start + 20 * MINUTE,
        scenarios,
        filter: (a) => a.region === 'CN-SH' || a.region === 'CN-GD',
      }),
    );
    expect(names(incidents).sort()).toEqual(['alipay:CN-SH:slow', 'wechat_pay:CN-GD:slow']);
    for (const incident of incidents) expect(incident.openedAt - start).toBeLessThanOrEqual(4 * MINUTE);
  });

  it('catches a 10x latency rise with nothing pending past the slow threshold, against the pair’s own median', () => {
    const start = beijing(14);
    // alipay confirms in about a second; 12 s stays below slowAfterMs (15 s): no attempt is "slow".
    const t = trace({
      from: beijing(10),
      to: start + 15 * MINUTE,
      scenarios: [
        {
          channel: 'alipay',
          region: 'CN-GD',
          from: start,
          to: start + 15 * MINUTE,
          effect: { type: 'slow', latencyMs: 10_000 },
        },
      ],
      filter: (a) => a.region === 'CN-GD',
    });
    const incidents = replay(t);
    expect(names(incidents)).toEqual(['alipay:CN-GD:slow']);
    expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(4 * MINUTE);
    expect(incidents[0]!.evidence.medianLatencyMs).toBeGreaterThan(
      5 * incidents[0]!.evidence.baselineLatencyMs!,
    );
  });

  it('opens an outage on a channel of about one attempt a minute within 10 minutes', () => {
    // 20:00-21:00 is the peak: douyin_pay in CN-SH and qq_wallet in CN-BJ see 1-1.5 attempts a minute.
    const start = beijing(20);
    for (const [channel, region] of [
      ['douyin_pay', 'CN-SH'],
      ['qq_wallet', 'CN-BJ'],
    ] as const) {
      const t = trace({
        from: beijing(19),
        to: start + 25 * MINUTE,
        scenarios: [outage(channel, region, start, 25 * MINUTE)],
        filter: (a) => a.region === region,
      });
      const incidents = replay(t);
      expect(names(incidents)).toEqual([`${channel}:${region}:failures`]);
      expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(10 * MINUTE);
    }
  });

  it('holds one incident through 2 minutes down, 2 up, for 40 minutes, and opens it within 5', () => {
    const start = beijing(14);
    const flaps: Scenario[] = [];
    for (let i = 0; i < 10; i++) flaps.push(outage('alipay', 'CN-GD', start + i * 4 * MINUTE, 2 * MINUTE));
    const flappingEnds = start + 40 * MINUTE;
    const t = trace({
      from: beijing(13),
      to: flappingEnds + 15 * MINUTE,
      scenarios: flaps,
      filter: (a) => a.region === 'CN-GD',
    });
    const incidents = replay(t);
    expect(names(incidents)).toEqual(['alipay:CN-GD:failures']);
    expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(5 * MINUTE);
    expect(incidents[0]!.resolvedAt).toBeGreaterThan(flappingEnds - 2 * MINUTE);
  });

  it('never re-opens after a recovery, though the hour window still holds the outage', () => {
    // A quiet pair: its hour window holds the outage's failures long after it ended.
    const start = beijing(20);
    const t = trace({
      from: beijing(19),
      to: start + 100 * MINUTE,
      scenarios: [outage('qq_wallet', 'CN-BJ', start, 20 * MINUTE)],
      filter: (a) => a.region === 'CN-BJ',
    });
    const incidents = replay(t);
    expect(names(incidents)).toEqual(['qq_wallet:CN-BJ:failures']);
    expect(incidents[0]!.resolvedAt).not.toBeNull();
  });

  it('when a whole region is down, names no backup rather than a channel that is down too', () => {
    const start = beijing(14);
    const region = 'CN-GD';
    const channels = [
      ...new Set(
        referencePlatform()
          .pairs.filter((p) => p.region === region)
          .map((p) => p.channel),
      ),
    ];
    const t = trace({
      from: beijing(13),
      to: start + 30 * MINUTE,
      scenarios: channels.map((c) => outage(c, region, start, 30 * MINUTE)),
      filter: (a) => a.region === region,
    });
    const incidents = replay(t);
    expect(incidents.length).toBeGreaterThanOrEqual(channels.length - 1);
    for (const incident of incidents) expect(incident.backupChannels).toEqual([]);
    const busy = incidents.filter((i) => ['alipay', 'wechat_pay'].includes(i.subject.channel));
    for (const incident of busy) expect(incident.openedAt - start).toBeLessThanOrEqual(90_000);
  });

  it('one user retrying six times on a quiet pair opens nothing; six users do', () => {
    const at = beijing(3);
    const retry = (userId: (i: number) => string): SimAttempt[] =>
      Array.from({ length: 6 }, (_, i) => ({
        id: 900_000 + i,
        userId: userId(i),
        channelId: 'qq_wallet',
        region: 'CN-BJ',
        status: 'failed',
        errorCode: 'CARD_DECLINED',
        latencyMs: null,
        createdAt: at + i * 20_000,
        finishedAt: at + i * 20_000 + 1_500,
      }));
    const base = { from: beijing(2), to: at + 30 * MINUTE, filter: (a: SimAttempt) => a.region === 'CN-BJ' };
    expect(replay(trace({ ...base, extra: retry(() => 'u-retrying') }))).toEqual([]);
    expect(names(replay(trace({ ...base, extra: retry((i) => `u-${i}`) })))).toEqual([
      'qq_wallet:CN-BJ:failures',
    ]);
  });

  it('tells a bank card decline rate from an outage: baselines are per channel', () => {
    // 20% failures: about twice bank cards' configured normal (10%), below their threshold.
    const start = beijing(14);
    const t = trace({
      from: beijing(13),
      to: start + 20 * MINUTE,
      scenarios: [
        {
          channel: 'bank_card',
          region: 'CN-GD',
          from: start,
          to: start + 20 * MINUTE,
          effect: { type: 'failureRate', rate: 0.16 },
        },
      ],
      filter: (a) => a.region === 'CN-GD',
    });
    expect(replay(t)).toEqual([]);
  });

  // About 10 s on a quiet machine; CPU-bound and synchronous, so a loaded one may take minutes.
  it(
    'stays quiet on a full day of healthy traffic across 30 channel-region pairs',
    { timeout: 300_000 },
    () => {
      const result = replayTrace(trace({ from: beijing(0), to: beijing(24), seed: 21 }));
      expect(Object.keys(result.state.pairs)).toHaveLength(30);
      expect(result.incidents).toEqual([]);
    },
  );

  it('is a pure function of its inputs: same answer twice, inputs untouched', () => {
    const start = beijing(14);
    const t = trace({
      from: start - 10 * MINUTE,
      to: start + 2 * MINUTE,
      scenarios: [outage('alipay', 'CN-GD', start, 5 * MINUTE)],
      filter: (a) => a.region === 'CN-GD',
    });
    const { state } = replayTrace(t);
    const frozen = deepFreeze(JSON.parse(JSON.stringify(state)) as PaymentHealthState);
    const empty = { now: start + 2 * MINUTE + 15_000, lengths: [15], settledFrom: start, pairs: new Map() };
    const a = detectPaymentHealth(
      { set: empty, channels: t.platform.channels },
      frozen,
      shippedSettings,
      empty.now,
    );
    const b = detectPaymentHealth(
      { set: empty, channels: t.platform.channels },
      frozen,
      shippedSettings,
      empty.now,
    );
    expect(JSON.stringify(a.state)).toBe(JSON.stringify(b.state));
    expect(a.state.evaluatedAt).toBe(empty.now);
    expect(initialPaymentHealthState()).toEqual({ evaluatedAt: null, pairs: {}, feedSilentSince: null });
  });
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
