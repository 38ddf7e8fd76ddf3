// The detector's building blocks: Wilson bounds, the normal quantile, prefix-sum windows and
// the ranking of backup channels.
import { describe, expect, it } from 'vitest';
import { rankBackupChannels } from '../../detectors/payment-health/backups.ts';
import { buildSeries, BUCKET_MS, type BucketRow } from '../../detectors/payment-health/series.ts';
import { normalQuantile, wilsonInterval } from '../../detectors/payment-health/stats.ts';
import type { PaymentChannel } from '../../detectors/payment-health/types.ts';
import { shippedSettings } from '../support/traces.ts';

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
    const small = wilsonInterval(3, 3, 3.719);
    const large = wilsonInterval(300, 300, 3.719);
    expect(small.lower).toBeLessThan(large.lower);
    expect(wilsonInterval(0, 50, 3).lower).toBe(0);
    expect(wilsonInterval(0, 0, 3)).toEqual({ lower: 0, upper: 1 });
  });
});

describe('bucket series', () => {
  const row = (bucket: number, attempts: number, failures: number): BucketRow => ({
    channel: 'alipay',
    region: 'CN-GD',
    bucket,
    attempts,
    failures,
    slow: 0,
    latencySumMs: 0,
    latencyCount: 0,
  });

  it('sums any window from prefix sums, ends rounded down to buckets, outside the range empty', () => {
    const from = 1_000 * BUCKET_MS;
    const series = buildSeries(
      [row(1_000, 5, 1), row(1_001, 7, 2), row(1_003, 11, 3), row(999, 100, 100)],
      from,
      from + 10 * BUCKET_MS,
    );
    const pair = series.get('alipay:CN-GD')!;
    expect(pair.between(from, from + 4 * BUCKET_MS)).toMatchObject({ attempts: 23, failures: 6 });
    expect(pair.between(from + BUCKET_MS, from + 2 * BUCKET_MS)).toMatchObject({ attempts: 7, failures: 2 });
    expect(pair.between(from + BUCKET_MS + 10, from + 2 * BUCKET_MS + 10)).toMatchObject({ attempts: 7 });
    // Bucket 999 lies before the series and is not counted.
    expect(pair.between(from - 5 * BUCKET_MS, from + BUCKET_MS)).toMatchObject({ attempts: 5 });
    expect(pair.between(from + 5 * BUCKET_MS, from + 4 * BUCKET_MS).attempts).toBe(0);
  });
});

describe('backup channels', () => {
  const now = 2_000 * BUCKET_MS;
  const channel = (
    id: string,
    priority: number,
    regions: string[] = ['*'],
    enabled = true,
  ): PaymentChannel => ({
    id,
    displayName: id,
    regions,
    enabled,
    priority,
  });
  const traffic = (channelId: string, attempts: number, failures: number): BucketRow => ({
    channel: channelId,
    region: 'CN-GD',
    bucket: 1_999,
    attempts,
    failures,
    slow: 0,
    latencySumMs: 0,
    latencyCount: 0,
  });
  const series = buildSeries(
    [
      traffic('alipay', 1_000, 900),
      traffic('wechat_pay', 5_000, 100),
      traffic('unionpay', 5_000, 100),
      traffic('bank_card', 5_000, 500),
      traffic('tiny', 5, 0),
      traffic('paypal', 5_000, 0),
      traffic('elsewhere', 5_000, 0),
      traffic('sick', 5_000, 0),
    ],
    now - 3_600_000,
    now,
  );
  const channels = [
    channel('alipay', 10),
    channel('wechat_pay', 20),
    channel('unionpay', 15),
    channel('bank_card', 5, ['CN-GD']),
    channel('tiny', 1),
    channel('paypal', 1, ['*'], false),
    channel('elsewhere', 1, ['CN-BJ']),
    channel('sick', 1),
  ];

  it('lists enabled, offered, proven and healthy channels, most surely healthy first, then by priority', () => {
    const ranked = rankBackupChannels({
      failing: 'alipay',
      region: 'CN-GD',
      channels,
      settings: shippedSettings,
      series,
      isHealthy: (key) => key !== 'sick:CN-GD',
      now,
    });
    // wechat_pay and unionpay are equally healthy: unionpay has the better priority. bank_card is worse.
    expect(ranked).toEqual(['unionpay', 'wechat_pay', 'bank_card']);
  });

  it('lists at most backup.maxListed channels', () => {
    const settings = { ...shippedSettings, backup: { ...shippedSettings.backup, maxListed: 1 } };
    const ranked = rankBackupChannels({
      failing: 'alipay',
      region: 'CN-GD',
      channels,
      settings,
      series,
      isHealthy: () => true,
      now,
    });
    expect(ranked).toHaveLength(1);
  });
});
