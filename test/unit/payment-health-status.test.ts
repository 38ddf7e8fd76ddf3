// channelStatuses (detectors/payment-health/status.ts) on a fixed clock: a channel with an open
// incident is degraded and names its incident's backups that are healthy now, in its order; a
// pair without state is unknown, one silent for silenceMinutes before the last tick is quiet; a
// confirming or quiet channel is never offered as a backup; disabled channels and channels not
// offered in the region are not listed.
import { describe, expect, it } from 'vitest';
import {
  channelStatuses,
  type Evidence,
  type KindState,
  type PairState,
} from '../../detectors/payment-health/index.ts';
import { shippedSettings } from '../support/traces.ts';

const NOW = Date.UTC(2026, 2, 2, 12, 0);
const REGION = 'CN-GD';
const idle = (): KindState => ({
  degradedSince: null,
  lastDegradedAt: null,
  healthySince: null,
  open: null,
  resolvedAt: null,
});
const pair = (
  channel: string,
  lastSeenAt: number | null,
  kinds: Partial<PairState['kinds']> = {},
): PairState => ({
  channel,
  region: REGION,
  baseline: { finished: 0, failures: 0, timed: 0, slow: 0, latency: [] },
  kinds: { failures: idle(), slow: idle(), ...kinds },
  lastSeenAt,
  lastAbnormalAt: null,
});
const channel = (id: string, priority: number, regions = [REGION], enabled = true) => ({
  id,
  displayName: id.toUpperCase(),
  regions,
  enabled,
  priority,
});
const evidence = { attempts: 40, bad: 30, rate: 0.75 } as Evidence;

const CHANNELS = [
  channel('alipay', 1),
  channel('wechat_pay', 2),
  channel('unionpay', 3, ['*']),
  channel('bank_card', 4),
  channel('paypal', 5, ['US-CA']),
  channel('old_pay', 0, [REGION], false),
  channel('new_pay', 6),
];

function run(pairs: PairState[], backupChannels = ['unionpay', 'wechat_pay', 'bank_card']) {
  return channelStatuses({
    region: REGION,
    channels: CHANNELS,
    pairs: new Map(pairs.map((p) => [`${p.channel}:${REGION}`, p])),
    incidents: [
      { id: '7', channel: 'alipay', kind: 'failures', openedAt: NOW - 60_000, evidence, backupChannels },
    ],
    evaluatedAt: NOW,
    settings: shippedSettings,
  });
}

describe('channelStatuses', () => {
  it('lists the enabled channels offered in the region, in priority order, with their states', () => {
    const statuses = run([
      pair('alipay', NOW - 1_000),
      pair('wechat_pay', NOW - 1_000),
      pair('unionpay', NOW - 5_000),
      // Silent for the shipped silenceMinutes (30) before the tick: quiet.
      pair('bank_card', NOW - 30 * 60_000),
    ]);
    expect(statuses.map((s) => [s.channel, s.state])).toEqual([
      ['alipay', 'degraded'],
      ['wechat_pay', 'healthy'],
      ['unionpay', 'healthy'],
      ['bank_card', 'quiet'],
      ['new_pay', 'unknown'],
    ]);
    const alipay = statuses[0]!;
    expect(alipay.incidents.map((i) => i.id)).toEqual(['7']);
    // The incident's order, without the quiet bank card.
    expect(alipay.backups).toEqual(['unionpay', 'wechat_pay']);
    expect(statuses.slice(1).every((s) => s.backups.length === 0 && s.incidents.length === 0)).toBe(true);
  });

  it('a backup on its way to an incident (confirming) is not offered', () => {
    const statuses = run([
      pair('alipay', NOW - 1_000),
      pair('wechat_pay', NOW - 1_000),
      pair('unionpay', NOW - 1_000, { failures: { ...idle(), degradedSince: NOW - 15_000 } }),
      pair('bank_card', NOW - 1_000),
    ]);
    const unionpay = statuses.find((s) => s.channel === 'unionpay')!;
    expect(unionpay).toMatchObject({ state: 'healthy', confirming: true });
    expect(statuses[0]!.backups).toEqual(['wechat_pay', 'bank_card']);
  });

  it('before the first tick every channel is unknown, the degraded one aside', () => {
    const statuses = channelStatuses({
      region: REGION,
      channels: CHANNELS,
      pairs: new Map(),
      incidents: [],
      evaluatedAt: null,
      settings: shippedSettings,
    });
    expect(statuses.every((s) => s.state === 'unknown' && s.backups.length === 0)).toBe(true);
  });
});
