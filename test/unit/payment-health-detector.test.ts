// The payment-health detector on synthetic traces with a fixed clock: what it must catch, how
// fast, and what it must let pass.
import { describe, expect, it } from 'vitest';
import {
  buildSeries,
  detectPaymentHealth,
  initialPaymentHealthState,
  type BucketRow,
  type PaymentHealthState,
} from '../../detectors/payment-health/index.ts';
import type { Scenario } from '../../sim/traffic.ts';
import { beijing, HOUR, MINUTE, replay, shippedSettings, trace } from '../support/traces.ts';

const outage = (channel: string, region: string, from: number, ms: number): Scenario => ({
  channel,
  region,
  from,
  to: from + ms,
  effect: { type: 'outage' },
});

describe('payment-health detector', () => {
  it('opens a hard outage on a busy channel within 90 seconds, names healthy backups, and resolves it once', () => {
    const start = beijing(14);
    const t = trace({
      from: beijing(13),
      to: beijing(14, 30),
      scenarios: [outage('alipay', 'CN-GD', start, 10 * MINUTE)],
    });
    const incidents = replay(t);
    expect(incidents).toHaveLength(1);
    const [incident] = incidents;
    expect(incident!.subject).toEqual({ channel: 'alipay', region: 'CN-GD' });
    expect(incident!.kind).toBe('failures');
    expect(incident!.openedAt - start).toBeGreaterThan(0);
    expect(incident!.openedAt - start).toBeLessThanOrEqual(90_000);
    expect(incident!.evidence.rate).toBeGreaterThan(0.5);
    expect(incident!.evidence.lowerBound).toBeGreaterThan(incident!.evidence.threshold);
    expect(incident!.evidence.baseline).toBeLessThan(0.05);
    // Backups: offered in CN-GD, enabled, with volume there; never the broken one or the disabled PayPal.
    expect(incident!.backupChannels.length).toBeGreaterThan(0);
    expect(incident!.backupChannels).not.toContain('alipay');
    expect(incident!.backupChannels).not.toContain('paypal');
    expect(incident!.backupChannels).not.toContain('douyin_pay'); // offered in CN-GD, but no traffic there
    expect(incident!.backupChannels[0]).toBe('wechat_pay');
    expect(incident!.resolvedAt).not.toBeNull();
    expect(incident!.resolvedAt! - (start + 10 * MINUTE)).toBeGreaterThan(0);
    expect(incident!.resolvedAt! - (start + 10 * MINUTE)).toBeLessThan(6 * MINUTE);
  });

  it('lets a blip of half a minute pass, by day and by night', () => {
    for (const start of [beijing(14), beijing(4)]) {
      const t = trace({
        from: start - HOUR,
        to: start + 20 * MINUTE,
        scenarios: [outage('alipay', 'CN-GD', start, 30_000), outage('wechat_pay', 'CN-SH', start, 30_000)],
      });
      expect(replay(t)).toEqual([]);
    }
  });

  it('opens a partial drop from about 97% to 70% within 5 minutes on busy and medium channels', () => {
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
      });
      const incidents = replay(t);
      expect(incidents.map((i) => `${i.subject.channel}:${i.subject.region}:${i.kind}`)).toEqual([
        `${channel}:${region}:failures`,
      ]);
      expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(5 * MINUTE);
    }
  });

  it('opens slow confirmations within 5 minutes, whether confirmations take 30 s or never come', () => {
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
    const incidents = replay(trace({ from: beijing(13), to: start + 20 * MINUTE, scenarios }));
    expect(incidents.map((i) => `${i.subject.channel}:${i.subject.region}:${i.kind}`).sort()).toEqual([
      'alipay:CN-SH:slow',
      'wechat_pay:CN-GD:slow',
    ]);
    for (const incident of incidents) expect(incident.openedAt - start).toBeLessThanOrEqual(5 * MINUTE);
  });

  it('opens an outage on a channel of about one attempt a minute within 15 minutes', () => {
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
      expect(incidents).toHaveLength(1);
      expect(incidents[0]!.subject).toEqual({ channel, region });
      expect(incidents[0]!.openedAt - start).toBeLessThanOrEqual(15 * MINUTE);
    }
  });

  it('holds one incident through flapping instead of opening and resolving over and over', () => {
    const start = beijing(14);
    const flaps: Scenario[] = [];
    for (let i = 0; i < 12; i++) flaps.push(outage('alipay', 'CN-GD', start + i * 90_000, 45_000));
    const flappingEnds = start + 12 * 90_000;
    const t = trace({
      from: beijing(13),
      to: flappingEnds + 15 * MINUTE,
      scenarios: flaps,
      filter: (a) => a.region === 'CN-GD',
    });
    const incidents = replay(t);
    expect(incidents).toHaveLength(1);
    expect(incidents[0]!.resolvedAt).toBeGreaterThan(flappingEnds);
  });

  it('tells a bank card decline rate from an Alipay outage: baselines are per channel', () => {
    // 12% failures: normal for bank cards (configured prior 10%), an incident for Alipay (2%).
    const rows: BucketRow[] = [];
    const from = beijing(10);
    const to = beijing(12);
    for (let at = from; at < to; at += 5_000) {
      const bucket = at / 5_000;
      const alipayFailures = at >= beijing(11) ? 12 : 2;
      rows.push({
        channel: 'alipay',
        region: 'CN-GD',
        bucket,
        attempts: 100,
        failures: alipayFailures,
        slow: 0,
        latencySumMs: 100_000,
        latencyCount: 100 - alipayFailures,
      });
      rows.push({
        channel: 'bank_card',
        region: 'CN-GD',
        bucket,
        attempts: 100,
        failures: 12,
        slow: 0,
        latencySumMs: 300_000,
        latencyCount: 88,
      });
    }
    const t = { ...trace({ from, to: from + 1 }), series: buildSeries(rows, from - HOUR, to + 1), to };
    const incidents = replay(t);
    expect(incidents.map((i) => i.subject.channel)).toEqual(['alipay']);
  });

  it('stays quiet on a full day of healthy traffic across 30 channel-region pairs', () => {
    const t = trace({ from: beijing(0), to: beijing(24), seed: 21 });
    expect(t.series.size).toBe(30);
    expect(replay(t)).toEqual([]);
  });

  it('opens nothing and resolves nothing without data', () => {
    const now = beijing(12);
    const empty = buildSeries([], now - HOUR, now);
    const first = detectPaymentHealth(
      { series: empty, channels: [] },
      initialPaymentHealthState(),
      shippedSettings,
      now,
    );
    expect(first.changes).toEqual([]);

    // An open incident whose channel goes silent stays open: silence is not evidence of health.
    const openState: PaymentHealthState = {
      evaluatedAt: now - 15_000,
      pairs: {
        'alipay:CN-GD': {
          channel: 'alipay',
          region: 'CN-GD',
          baseline: { attempts: 10_000, failures: 200, slow: 50 },
          kinds: {
            failures: {
              degradedSince: null,
              healthySince: null,
              open: {
                openedAt: now - HOUR,
                backupChannels: ['wechat_pay'],
                evidence: {
                  windowSeconds: 30,
                  attempts: 100,
                  bad: 90,
                  rate: 0.9,
                  lowerBound: 0.8,
                  upperBound: 0.95,
                  baseline: 0.02,
                  threshold: 0.1,
                  confidence: 0.9999,
                  meanLatencyMs: null,
                },
              },
            },
            slow: { degradedSince: null, healthySince: null, open: null },
          },
        },
      },
    };
    let state = openState;
    for (let tick = now; tick < now + 30 * MINUTE; tick += 15_000) {
      const findings = detectPaymentHealth({ series: empty, channels: [] }, state, shippedSettings, tick);
      expect(findings.changes).toEqual([]);
      state = findings.state;
    }
    expect(state.pairs['alipay:CN-GD']!.kinds.failures.open).not.toBeNull();
  });

  it('is a pure function of its inputs: same answer twice, inputs untouched', () => {
    const start = beijing(14);
    const t = trace({
      from: start - 5 * MINUTE,
      to: start + 5 * MINUTE,
      scenarios: [outage('alipay', 'CN-GD', start, 5 * MINUTE)],
      filter: (a) => a.region === 'CN-GD',
    });
    const state = deepFreeze(initialPaymentHealthState());
    const a = detectPaymentHealth(
      { series: t.series, channels: t.platform.channels },
      state,
      shippedSettings,
      start + 2 * MINUTE,
    );
    const b = detectPaymentHealth(
      { series: t.series, channels: t.platform.channels },
      state,
      shippedSettings,
      start + 2 * MINUTE,
    );
    expect(JSON.stringify(a.state)).toBe(JSON.stringify(b.state));
    expect(a.state.evaluatedAt).toBe(start + 2 * MINUTE);
    expect(Object.keys(a.state.pairs).length).toBeGreaterThan(0);
  });
});

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
