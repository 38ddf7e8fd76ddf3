// The live tick reads only the last settle horizon in full and, of older rows, the slices that
// settled or left a window since the cached tick. Over a run of ticks (with a gap, a cache
// thrown away, and windows changed by a reload), it must give exactly the signals of reading
// every row of the longest window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settledFromFor, type SignalSet } from '../../detectors/payment-health/index.ts';
import {
  readPairSignals,
  readPairSignalsIncremental,
  signalQueryFor,
  type WindowCache,
} from '../../lib/platform/payment-attempts.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts } from '../../sim/traffic.ts';
import { loadPlatform } from '../support/platform.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';
import { shippedSettings } from '../support/traces.ts';

const MINUTE = 60_000;
const START = Date.UTC(2026, 2, 2, 12, 0);
let db: TestDatabase;

beforeAll(async () => {
  const platform = referencePlatform();
  const local = {
    ...platform,
    pairs: platform.pairs.filter((p) => p.region === 'CN-GD' || p.region === 'CN-SH'),
  };
  const users = generateUsers(2_000, 5, { platform });
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform: local,
    users,
    attempts: generateAttempts({
      platform: local,
      from: START - 70 * MINUTE,
      to: START + 30 * MINUTE,
      seed: 99,
      users,
      scenarios: [
        {
          channel: 'alipay',
          region: 'CN-GD',
          from: START,
          to: START + 5 * MINUTE,
          effect: { type: 'outage' },
        },
        {
          channel: 'wechat_pay',
          region: 'CN-SH',
          from: START + 2 * MINUTE,
          to: START + 12 * MINUTE,
          effect: { type: 'stuckPending', share: 0.4 },
        },
        {
          channel: 'unionpay',
          region: 'CN-GD',
          from: START - 20 * MINUTE,
          to: START + 20 * MINUTE,
          effect: { type: 'slow', latencyMs: 20_000 },
        },
      ],
    }),
  });
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

/** A signal set as plain data, pairs sorted, for deep comparison. */
function plain(set: SignalSet) {
  return { ...set, pairs: Object.fromEntries([...set.pairs].sort(([a], [b]) => a.localeCompare(b))) };
}

describe('readPairSignalsIncremental', () => {
  it('gives exactly the full read’s signals at every tick, across a gap, a lost cache and changed windows', async () => {
    const ticks: number[] = [];
    for (let t = START - 2 * MINUTE; t <= START + 12 * MINUTE; t += 15_000) ticks.push(t);
    // A gap of three minutes (a stopped scheduler), then ticks again.
    ticks.push(START + 15 * MINUTE, START + 15 * MINUTE + 15_000, START + 15 * MINUTE + 30_000);
    const longer = {
      ...shippedSettings,
      windows: [...shippedSettings.windows.slice(0, -1), { seconds: 1800, minAttempts: 8 }],
    };
    let cache: WindowCache | null = null;
    let previous: number | null = null;
    const modes: string[] = [];
    for (const [i, now] of ticks.entries()) {
      // Windows change by a reload at one tick, and the cache is lost at another.
      const settings = i >= 40 ? longer : shippedSettings;
      if (i === 30) cache = null;
      const settledFrom = settledFromFor(previous, now, settings.settleSeconds * 1000, 3_600_000);
      const q = signalQueryFor(settings, 'platform', now, settledFrom);
      const full = await readPairSignals(db.pool, q);
      const step = await readPairSignalsIncremental(db.pool, q, cache);
      expect(plain(step.set), new Date(now).toISOString()).toEqual(plain(full));
      modes.push(step.rowsRead);
      cache = step.cache;
      previous = now;
    }
    expect(modes[0]).toBe('full');
    expect(modes[1]).toBe('incremental');
    expect(modes[30]).toBe('full');
    expect(modes[40]).toBe('full');
    expect(modes.filter((m) => m === 'incremental').length).toBeGreaterThan(ticks.length - 6);
  }, 180_000);
});
