// The live tick's signals in SQL (lib/platform/payment-attempts.ts) against the observation model
// in memory (detectors/payment-health/observe.ts), which backtests use: generated traffic with
// scenarios and hand-made edge rows, loaded as the platform had them at each tick (pending until
// finished) and as the final history, must give exactly the SignalBuilder's windows, settled
// slice, bad users and newest attempt, pair by pair, and the same top error codes; the COPY
// stream yields exactly the valid rows in creation order; rows that break the contract are
// skipped by every reader and reported, with id and reason, by readInvalidAttempts.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  latencyBin,
  LATENCY_BINS,
  lookback,
  pairKey,
  SignalBuilder,
  settledFromFor,
  thresholdsFor,
  windowLengths,
  type ObservedAttempt,
  type PaymentHealthSettings,
  type SignalSet,
  type Tally,
} from '../../detectors/payment-health/index.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import {
  readInvalidAttempts,
  readPairSignals,
  readTopErrorCodes,
  signalQueryFor,
  slowAfterRules,
  streamAttempts,
} from '../../lib/platform/payment-attempts.ts';
import { observed } from '../../sim/observe.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts, type Scenario, type SimAttempt } from '../../sim/traffic.ts';
import {
  badAttempts,
  insertRawAttempts,
  loadPlatform,
  PLATFORM_SCHEMA,
  type BadAttempt,
} from '../support/platform.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED_TEXT = readFileSync(new URL('../../config/forewarn.yaml', import.meta.url), 'utf8');
const SECOND = 1_000;
const MINUTE = 60_000;
// 19:00-20:15 in Beijing, the evening rush.
const FROM = Date.UTC(2026, 2, 2, 11, 0);
const TO = FROM + 75 * MINUTE;
// The hand-made edge rows are created a second before this tick.
const TE = FROM + 40 * MINUTE;
const C0 = TE - SECOND;
// Window boundaries are probed at this tick.
const TB = TE + 30 * SECOND;

/** Ticks checked, ascending, multiples of 5 s: empty, young, in the scenarios, around the edges, an hour in. */
const TICKS = [
  FROM,
  FROM + 5 * SECOND,
  FROM + 20 * MINUTE + 35 * SECOND,
  FROM + 32 * MINUTE,
  TE,
  TE + 5 * SECOND,
  TE + 15 * SECOND,
  TB,
  TE + 5 * MINUTE,
  TE + 5 * MINUTE + 5 * SECOND,
  FROM + 62 * MINUTE,
  TO,
];
/** Ticks at which top error codes are compared for every pair. */
const CODE_TICKS = new Set([FROM + 32 * MINUTE, TB, TE + 5 * MINUTE + 5 * SECOND, TO]);

const platform = referencePlatform();
const PAIRS = new Set([
  'alipay:CN-GD',
  'wechat_pay:CN-GD',
  'unionpay:CN-GD',
  'bank_card:CN-GD',
  'jd_pay:CN-GD',
  'qq_wallet:CN-GD',
  'wechat_pay:CN-BJ',
  'qq_wallet:CN-BJ',
  'douyin_pay:CN-SH',
]);
const local = { ...platform, pairs: platform.pairs.filter((p) => PAIRS.has(pairKey(p.channel, p.region))) };
const users = generateUsers(3_000, 7, { platform });
const U = (i: number) => users[i]!.id;

const scenarios: Scenario[] = [
  {
    channel: 'alipay',
    region: 'CN-GD',
    from: FROM + 30 * MINUTE,
    to: FROM + 34 * MINUTE,
    effect: { type: 'outage' },
  },
  {
    channel: 'wechat_pay',
    region: 'CN-GD',
    from: FROM + 36 * MINUTE,
    to: FROM + 44 * MINUTE,
    effect: { type: 'failureRate', rate: 0.35 },
  },
  // 24-40 s confirmations against unionpay's 30 s threshold; 11-19 s against wechat_pay's 15 s.
  {
    channel: 'unionpay',
    region: 'CN-GD',
    from: FROM + 38 * MINUTE,
    to: FROM + 45 * MINUTE,
    effect: { type: 'slow', latencyMs: 32_000 },
  },
  {
    channel: 'wechat_pay',
    region: 'CN-BJ',
    from: FROM + 39 * MINUTE,
    to: FROM + 42 * MINUTE,
    effect: { type: 'slow', latencyMs: 15_000 },
  },
  {
    channel: 'bank_card',
    region: 'CN-GD',
    from: FROM + 35 * MINUTE,
    to: FROM + 43 * MINUTE,
    effect: { type: 'stuckPending', share: 0.4 },
  },
];

/**
 * Hand-made rows, each group on a pair of its own (regions no traffic uses), so that the tallies
 * below can be checked by hand as well as against the builder.
 */
function edgeRows(firstId: number): SimAttempt[] {
  let id = firstId;
  let offset = 0;
  const row = (
    pair: string,
    status: SimAttempt['status'],
    fields: Partial<SimAttempt> & { after?: number } = {},
  ): SimAttempt => {
    const [channelId, region] = pair.split(':') as [string, string];
    const { after, ...rest } = fields;
    // Distinct creation times within one 5 s bucket, a second before TE.
    const createdAt = rest.createdAt ?? C0 + offset++;
    return {
      id: id++,
      userId: U(0),
      channelId,
      region,
      status,
      errorCode: status === 'failed' || status === 'timeout' ? 'EDGE_ERROR' : null,
      latencyMs: null,
      finishedAt: after === undefined ? null : createdAt + after,
      ...rest,
      createdAt,
    };
  };
  return [
    // Final rows without finished_at: created_at, plus latency_ms when succeeded.
    row('jd_pay:E-NULLFIN', 'succeeded', { latencyMs: 2_000 }),
    row('jd_pay:E-NULLFIN', 'failed', { errorCode: 'X_DECLINED' }),
    row('jd_pay:E-NULLFIN', 'timeout'),
    row('jd_pay:E-NULLFIN', 'succeeded', { latencyMs: 20_000 }),
    // Successes without latency_ms: binned by finished_at - created_at; one above the last edge.
    row('jd_pay:E-NULLLAT', 'succeeded', { after: 3_000 }),
    row('jd_pay:E-NULLLAT', 'succeeded'),
    row('jd_pay:E-NULLLAT', 'succeeded', { after: 16_000 }),
    row('jd_pay:E-NULLLAT', 'succeeded', { latencyMs: 0, after: 0 }),
    row('jd_pay:E-NULLLAT', 'succeeded', { latencyMs: 70_000, after: 70_000 }),
    // Finished exactly at the settle horizon (known), 1 ms after it (never known), never.
    row('jd_pay:E-SETTLE', 'failed', { errorCode: 'LATE', after: 300_000 }),
    row('jd_pay:E-SETTLE', 'succeeded', { latencyMs: 300_001, after: 300_001 }),
    row('jd_pay:E-SETTLE', 'pending'),
    row('jd_pay:E-SETTLE', 'timeout', { after: 300_001 }),
    // Finished exactly at the slow threshold (fast) and 1 ms after it (slow).
    row('jd_pay:E-SPEED', 'succeeded', { latencyMs: 15_000, after: 15_000 }),
    row('jd_pay:E-SPEED', 'succeeded', { latencyMs: 15_001, after: 15_001 }),
    row('jd_pay:E-SPEED', 'failed', { after: 15_000 }),
    row('jd_pay:E-SPEED', 'failed', { after: 15_001 }),
    // finished_at before created_at: read as finished at creation; latency_ms still bins.
    row('jd_pay:E-BACKWARD', 'failed', { errorCode: 'BACK', after: -5_000 }),
    row('jd_pay:E-BACKWARD', 'succeeded', { latencyMs: 800, after: -1 }),
    // The platform's 30 s timeouts: slow against 15 s, fast against unionpay's 30 s unless 1 ms later.
    row('jd_pay:E-TIMEOUT', 'timeout', { userId: U(1), errorCode: 'GATEWAY_TIMEOUT', after: 30_000 }),
    row('jd_pay:E-TIMEOUT', 'timeout', { userId: U(2), errorCode: 'GATEWAY_TIMEOUT', after: 30_000 }),
    row('jd_pay:E-TIMEOUT', 'timeout', { userId: U(3), errorCode: 'GATEWAY_TIMEOUT', after: 30_000 }),
    row('unionpay:E-TIMEOUT', 'timeout', { userId: U(1), errorCode: 'GATEWAY_TIMEOUT', after: 30_000 }),
    row('unionpay:E-TIMEOUT', 'timeout', { userId: U(2), errorCode: 'GATEWAY_TIMEOUT', after: 30_000 }),
    row('unionpay:E-TIMEOUT', 'timeout', { userId: U(3), errorCode: 'GATEWAY_TIMEOUT', after: 30_001 }),
    // Pending for good, from three users (one of them twice).
    row('jd_pay:E-PENDING', 'pending', { userId: U(1) }),
    row('jd_pay:E-PENDING', 'pending', { userId: U(2) }),
    row('jd_pay:E-PENDING', 'pending', { userId: U(2) }),
    row('jd_pay:E-PENDING', 'pending', { userId: U(3) }),
    // Error codes with ties (ranked by count, then by code in byte order), COPY escapes, no code.
    ...['B', 'a', 'C', 'B', 'A', 'a', 'C', '余额不足', '余额不足', 'TAB\tAND\\BACKSLASH\nNL', null, null].map(
      (errorCode, i) => row('jd_pay:E-CODES', 'failed', { userId: U(10 + i), errorCode, after: 1_500 }),
    ),
    // Window edges at TB: exactly 15 s before (in the 15 s window), 1 ms earlier (not), 1 ms before TB.
    row('jd_pay:E-BOUNDS', 'failed', { createdAt: TB - 15_001, after: 0 }),
    row('jd_pay:E-BOUNDS', 'failed', { createdAt: TB - 15_000, after: 0 }),
    row('jd_pay:E-BOUNDS', 'failed', { createdAt: TB - 1, after: 0 }),
    row('jd_pay:E-BOUNDS', 'failed', { createdAt: TB, after: 0 }),
    // A bad user who left the longest window by TO, and two who have not; a pair that fell silent.
    row('jd_pay:E-USERS', 'failed', { userId: U(4), createdAt: FROM + MINUTE, after: 1_000 }),
    row('jd_pay:E-USERS', 'failed', { userId: U(5), after: 1_000 }),
    row('jd_pay:E-USERS', 'failed', { userId: U(6), after: 1_000 }),
    row('jd_pay:E-OLD', 'succeeded', { createdAt: FROM + 2 * MINUTE, latencyMs: 900, after: 900 }),
  ];
}

/**
 * The shipped config with slow thresholds overridden per region, channel and pair, each level
 * winning over the one before it somewhere, plus a pair with a window length of its own and a
 * larger minUsers (so the reader keeps more bad users):
 *   alipay CN-GD 5 s (pair), unionpay CN-GD 45 s (pair over channel and region), wechat_pay 20 s
 *   (channel over region), bank_card/jd_pay/qq_wallet CN-GD 10 s (region), jd_pay E-SPEED 15.001 s
 *   (pair), unionpay elsewhere 30 s (shipped), everything else 15 s.
 */
function settingsWithOverrides(): PaymentHealthSettings {
  const doc = parse(SHIPPED_TEXT) as {
    detectors: { paymentHealth: { overrides: Record<string, Record<string, unknown>> } };
  };
  const overrides = doc.detectors.paymentHealth.overrides;
  overrides.regions = { ...overrides.regions, 'CN-GD': { slow: { slowAfterMs: 10_000 } } };
  overrides.channels = { ...overrides.channels, wechat_pay: { slow: { slowAfterMs: 20_000 } } };
  overrides.pairs = {
    ...overrides.pairs,
    'alipay:CN-GD': { slow: { slowAfterMs: 5_000 } },
    'unionpay:CN-GD': { slow: { slowAfterMs: 45_000 } },
    'jd_pay:E-SPEED': { slow: { slowAfterMs: 15_001 } },
    'qq_wallet:CN-BJ': {
      windows: [
        { seconds: 15, minAttempts: 30 },
        { seconds: 60, minAttempts: 10 },
        { seconds: 3600, minAttempts: 8 },
      ],
      failures: { minUsers: 5 },
    },
  };
  return parseConfigText(stringify(doc), 'payment-signals overrides').detectors.paymentHealth;
}

const shipped = parseConfigText(SHIPPED_TEXT, 'config/forewarn.yaml').detectors.paymentHealth;
const overridden = settingsWithOverrides();
const VARIANTS: Array<[string, PaymentHealthSettings]> = [
  ['the shipped settings', shipped],
  ['slow thresholds overridden per pair, channel and region', overridden],
];

let db: TestDatabase;
/** Every valid attempt, final, in creation order (then id): what a backtest streams. */
let attempts: SimAttempt[];
let bad: BadAttempt[];
/** The schema holding the rows as they were at TICKS[i]. */
const asOfSchema = (i: number) => `platform_asof_${i}`;

beforeAll(async () => {
  const generated = [
    ...generateAttempts({ platform: local, from: FROM, to: TO, seed: 42, scenarios, users }),
  ];
  const edges = edgeRows(generated[generated.length - 1]!.id + 1);
  attempts = [...generated, ...edges].sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
  bad = badAttempts({
    firstId: 900_000_001,
    createdAt: FROM + 30 * MINUTE,
    channel: 'alipay',
    region: 'CN-GD',
    userId: U(0),
  });
  db = await createTestDatabase();
  // The final history, and the platform as it was at each tick; all with the rows that break the contract.
  expect(await loadPlatform(db.pool, { platform, users, attempts })).toBe(attempts.length);
  await insertRawAttempts(db.pool, bad);
  for (const [i, t] of TICKS.entries()) {
    await loadPlatform(db.pool, { platform, users, attempts, asOf: t, schema: asOfSchema(i) });
    await insertRawAttempts(db.pool, bad, asOfSchema(i));
  }
}, 120_000);

afterAll(async () => {
  await db?.drop();
});

function builderFor(settings: PaymentHealthSettings): SignalBuilder {
  const look = lookback(settings);
  return new SignalBuilder({
    lengths: windowLengths(settings),
    settleMs: look.settleMs,
    maxUsers: look.maxUsers,
    // The detector's own layering of overrides, independent of the SQL's rules.
    slowAfterMs: (channel, region) => thresholdsFor(settings, channel, region).slow.slowAfterMs,
  });
}

/** Feeds a builder the attempts created before each tick, as a replay does. */
function feeder(builder: SignalBuilder): (now: number) => void {
  let next = 0;
  return (now) => {
    while (next < attempts.length && attempts[next]!.createdAt < now)
      builder.add(observed(attempts[next++]!));
  };
}

/** Soft: every differing pair of every tick is reported, not just the first. */
function expectSameSignals(actual: SignalSet, expected: SignalSet, label: string): void {
  expect.soft({ now: actual.now, lengths: actual.lengths, settledFrom: actual.settledFrom }, label).toEqual({
    now: expected.now,
    lengths: expected.lengths,
    settledFrom: expected.settledFrom,
  });
  expect.soft([...actual.pairs.keys()].sort(), `${label}: pairs`).toEqual([...expected.pairs.keys()].sort());
  for (const [key, pair] of expected.pairs) {
    expect.soft(actual.pairs.get(key), `${label}: ${key}`).toEqual(pair);
  }
}

const at = (t: number) => new Date(t).toISOString();

describe('readPairSignals', () => {
  it('resolves slow thresholds per pair, then channel, then region, as the detector does', () => {
    const rules = slowAfterRules(overridden);
    expect(rules.defaultMs).toBe(15_000);
    expect(rules.pairs).toEqual(
      expect.arrayContaining([
        { channel: 'alipay', region: 'CN-GD', ms: 5_000 },
        { channel: 'unionpay', region: 'CN-GD', ms: 45_000 },
        { channel: 'jd_pay', region: 'E-SPEED', ms: 15_001 },
      ]),
    );
    const expected: Array<[string, string, number]> = [
      ['alipay', 'CN-GD', 5_000],
      ['unionpay', 'CN-GD', 45_000],
      ['wechat_pay', 'CN-GD', 20_000],
      ['bank_card', 'CN-GD', 10_000],
      ['unionpay', 'CN-BJ', 30_000],
      ['jd_pay', 'E-SPEED', 15_001],
      ['alipay', 'CN-BJ', 15_000],
    ];
    for (const [channel, region, ms] of expected) {
      expect(thresholdsFor(overridden, channel, region).slow.slowAfterMs, `${channel}:${region}`).toBe(ms);
    }
    expect(windowLengths(overridden)).toContain(60);
    expect(windowLengths(shipped)).not.toContain(60);
    expect(lookback(overridden).maxUsers).toBe(5);
  });

  it('the traffic has every status, scenario and edge, and pending rows that finish later', () => {
    expect(new Set(attempts.map((a) => a.status))).toEqual(
      new Set(['failed', 'pending', 'succeeded', 'timeout']),
    );
    expect(attempts.length).toBeGreaterThan(40_000);
    // At TE, rows that are final in the history were still pending on the platform.
    const finishedLater = attempts.filter(
      (a) => a.createdAt < TE && a.status !== 'pending' && a.finishedAt !== null && a.finishedAt > TE,
    );
    expect(finishedLater.length).toBeGreaterThan(50);
    const count = (pair: string, keep: (a: SimAttempt) => boolean) =>
      attempts.filter((a) => pairKey(a.channelId, a.region) === pair && keep(a)).length;
    const inScenario = (s: Scenario) => (a: SimAttempt) => a.createdAt >= s.from && a.createdAt < s.to;
    expect(count('alipay:CN-GD', (a) => inScenario(scenarios[0]!)(a) && a.status === 'succeeded')).toBe(0);
    expect(
      count('unionpay:CN-GD', (a) => inScenario(scenarios[2]!)(a) && (a.latencyMs ?? 0) > 30_000),
    ).toBeGreaterThan(20);
    expect(
      count('unionpay:CN-GD', (a) => inScenario(scenarios[2]!)(a) && (a.latencyMs ?? 1e9) <= 30_000),
    ).toBeGreaterThan(20);
    expect(
      count('bank_card:CN-GD', (a) => inScenario(scenarios[4]!)(a) && a.status === 'pending'),
    ).toBeGreaterThan(50);
  });

  for (const [name, settings] of VARIANTS) {
    it(`equals the in-memory builder at every tick, with ${name}`, async () => {
      const look = lookback(settings);
      const builder = builderFor(settings);
      const feed = feeder(builder);
      let previous: number | null = null;
      for (const [i, now] of TICKS.entries()) {
        feed(now);
        // The first tick's slice (one window before the horizon), the next tick's, 7 minutes, none.
        const froms = [
          ...new Set([
            settledFromFor(null, now, look.settleMs, look.windowMs),
            settledFromFor(previous, now, look.settleMs, look.windowMs),
            now - look.settleMs - 7 * MINUTE,
            now - look.settleMs,
          ]),
        ];
        for (const settledFrom of froms) {
          const expected = builder.at(now, settledFrom);
          const label = `${at(now)} settledFrom ${at(settledFrom)}`;
          const asOf = await readPairSignals(
            db.pool,
            signalQueryFor(settings, asOfSchema(i), now, settledFrom),
          );
          expectSameSignals(asOf, expected, `rows as of the tick, ${label}`);
          if (settledFrom === froms[0]) {
            const history = await readPairSignals(
              db.pool,
              signalQueryFor(settings, PLATFORM_SCHEMA, now, settledFrom),
            );
            expectSameSignals(history, expected, `final history, ${label}`);
          }
        }
        previous = now;
      }
    });
  }

  it('counts the hand-made edge rows as the observation model says', async () => {
    const now = TE + 5 * MINUTE + 5 * SECOND;
    const i = TICKS.indexOf(now);
    const read = async (settings: PaymentHealthSettings, t = now, schema = asOfSchema(i)) => {
      const set = await readPairSignals(db.pool, signalQueryFor(settings, schema, t, t - 300_000));
      const index = set.lengths.indexOf(900);
      return (pair: string): Tally | undefined => set.pairs.get(pair)?.windows[index];
    };
    const tally = (counts: Partial<Omit<Tally, 'latency'>>, latencies: number[] = []): Tally => {
      const latency = new Array<number>(LATENCY_BINS).fill(0);
      for (const ms of latencies) latency[latencyBin(ms)]!++;
      return {
        created: 0,
        finished: 0,
        failures: 0,
        timed: 0,
        slow: 0,
        confirmed: latencies.length,
        latency,
        ...counts,
      };
    };
    expect(latencyBin(70_000)).toBe(LATENCY_BINS - 1);
    const window = await read(shipped);
    expect(window('jd_pay:E-NULLFIN')).toEqual(
      tally({ created: 4, finished: 4, failures: 2, timed: 4, slow: 1 }, [2_000, 20_000]),
    );
    expect(window('jd_pay:E-NULLLAT')).toEqual(
      tally({ created: 5, finished: 5, timed: 5, slow: 2 }, [3_000, 0, 16_000, 0, 70_000]),
    );
    expect(window('jd_pay:E-SETTLE')).toEqual(
      tally({ created: 4, finished: 1, failures: 1, timed: 4, slow: 4 }),
    );
    expect(window('jd_pay:E-SPEED')).toEqual(
      tally({ created: 4, finished: 4, failures: 2, timed: 4, slow: 2 }, [15_000, 15_001]),
    );
    expect(window('jd_pay:E-BACKWARD')).toEqual(
      tally({ created: 2, finished: 2, failures: 1, timed: 2 }, [800]),
    );
    expect(window('jd_pay:E-TIMEOUT')).toEqual(
      tally({ created: 3, finished: 3, failures: 3, timed: 3, slow: 3 }),
    );
    expect(window('unionpay:E-TIMEOUT')).toEqual(
      tally({ created: 3, finished: 3, failures: 3, timed: 3, slow: 1 }),
    );
    expect(window('jd_pay:E-PENDING')).toEqual(tally({ created: 4, timed: 4, slow: 4 }));
    // 15.001 s for this pair: both rows finished at 15.001 s are fast.
    expect((await read(overridden))('jd_pay:E-SPEED')).toEqual(
      tally({ created: 4, finished: 4, failures: 2, timed: 4 }, [15_000, 15_001]),
    );

    // Before the slow threshold: the row finished "before" creation is known, its speed is not.
    const early = await readPairSignals(
      db.pool,
      signalQueryFor(shipped, asOfSchema(TICKS.indexOf(TE)), TE, TE),
    );
    const shortest = (pair: string) => early.pairs.get(pair)?.windows[0];
    expect(shortest('jd_pay:E-BACKWARD')).toEqual(tally({ created: 2, finished: 2, failures: 1 }));
    expect(shortest('jd_pay:E-PENDING')).toEqual(tally({ created: 4 }));
    // At the threshold exactly, speed is judged.
    const judged = await readPairSignals(
      db.pool,
      signalQueryFor(shipped, asOfSchema(TICKS.indexOf(TE + 15 * SECOND)), TE + 15 * SECOND, TE),
    );
    expect(judged.pairs.get('jd_pay:E-SPEED')?.windows[judged.lengths.indexOf(30)]).toEqual(
      tally({ created: 4, finished: 4, failures: 2, timed: 4, slow: 2 }, [15_000, 15_001]),
    );
    expect(judged.pairs.get('jd_pay:E-PENDING')?.badUsers.slow).toEqual([C0 + 28, C0 + 27, C0 + 25]);

    // Window edges at TB: [TB - 15 s, TB) holds two of them, the 30 s window three.
    const bounds = await readPairSignals(
      db.pool,
      signalQueryFor(shipped, asOfSchema(TICKS.indexOf(TB)), TB, TB),
    );
    const b = bounds.pairs.get('jd_pay:E-BOUNDS')!;
    expect(bounds.lengths.slice(0, 2)).toEqual([15, 30]);
    expect([b.windows[0]!.created, b.windows[0]!.failures, b.windows[1]!.created]).toEqual([2, 2, 3]);
    expect(b.lastCreatedAt).toBe(TB - 1);
    expect(b.badUsers.failures).toEqual([TB - 1]);
  });

  it('keeps bad users and pairs only while they are in the longest window', async () => {
    const set = await readPairSignals(db.pool, signalQueryFor(shipped, PLATFORM_SCHEMA, TO, TO - 300_000));
    const pair = set.pairs.get('jd_pay:E-USERS')!;
    expect(pair.badUsers.failures).toEqual([C0 + 42, C0 + 41]);
    expect(pair.lastCreatedAt).toBe(C0 + 42);
    expect(set.pairs.has('jd_pay:E-OLD')).toBe(false);
  });

  it('skips rows that break the contract: the signals are those without them', async () => {
    const now = FROM + 32 * MINUTE;
    const query = signalQueryFor(shipped, PLATFORM_SCHEMA, now, now - 300_000);
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const withBad = await readPairSignals(client, query);
      const { rowCount } = await client.query('DELETE FROM platform.payment_attempts WHERE id >= $1', [
        bad[0]!.id,
      ]);
      // They were there, created inside the windows, most of them on a pair that is read.
      expect(rowCount).toBe(bad.length);
      expect(bad.every((b) => b.createdAt >= now - 3_600_000 && b.createdAt < now)).toBe(true);
      expectSameSignals(withBad, await readPairSignals(client, query), at(now));
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('readTopErrorCodes', () => {
  it('equals the builder for every pair at every tick, by count and then by code', async () => {
    const builder = builderFor(shipped);
    const feed = feeder(builder);
    const look = lookback(shipped);
    let compared = 0;
    for (const [i, now] of TICKS.entries()) {
      feed(now);
      const set = builder.at(now, settledFromFor(null, now, look.settleMs, look.windowMs));
      if (!CODE_TICKS.has(now)) continue;
      const query = signalQueryFor(shipped, asOfSchema(i), now, set.settledFrom);
      for (const pair of set.pairs.values()) {
        for (const [seconds, limit] of [
          [15, 3],
          [300, 3],
          [3600, 10],
        ] as const) {
          const fromMs = now - seconds * 1000;
          const expected = builder.topErrorCodes(pair.channel, pair.region, fromMs, limit);
          const actual = await readTopErrorCodes(db.pool, query, pair, fromMs, limit);
          expect
            .soft(actual, `${at(now)} ${pairKey(pair.channel, pair.region)} last ${seconds}s`)
            .toEqual(expected);
          if (expected.length > 0) compared++;
        }
      }
      if (now === TB) {
        const codes = await readTopErrorCodes(
          db.pool,
          query,
          { channel: 'jd_pay', region: 'E-CODES' },
          now - 300_000,
          10,
        );
        expect(codes).toEqual([
          { code: 'B', count: 2 },
          { code: 'C', count: 2 },
          { code: 'a', count: 2 },
          { code: '余额不足', count: 2 },
          { code: 'A', count: 1 },
          { code: 'TAB\tAND\\BACKSLASH\nNL', count: 1 },
        ]);
      }
    }
    expect(compared).toBeGreaterThan(30);
  });
});

describe('streamAttempts', () => {
  const ranges: Array<[string, number, number]> = [
    ['the whole history', FROM - MINUTE, TO + MINUTE],
    ['a range with unaligned ends', FROM + 17 * MINUTE + 2_345, TB - 1],
  ];
  for (const [name, fromMs, toMs] of ranges) {
    it(`yields exactly the valid rows of ${name}, in creation order`, async () => {
      const expected = attempts.filter((a) => a.createdAt >= fromMs && a.createdAt < toMs).map(observed);
      const client = await db.pool.connect();
      const actual: ObservedAttempt[] = [];
      try {
        for await (const a of streamAttempts(client, PLATFORM_SCHEMA, fromMs, toMs)) actual.push(a);
      } finally {
        client.release();
      }
      expect(actual.length).toBe(expected.length);
      const first = actual.findIndex((a, i) => JSON.stringify(a) !== JSON.stringify(expected[i]));
      expect(
        first === -1 ? null : { index: first, got: actual[first], expected: expected[first] },
      ).toBeNull();
      expect(actual).toEqual(expected);
    });
  }

  it('feeds a builder the same signals the SQL reads', async () => {
    const builder = builderFor(shipped);
    const now = TE + 5 * MINUTE + 5 * SECOND;
    const client = await db.pool.connect();
    try {
      for await (const a of streamAttempts(client, PLATFORM_SCHEMA, FROM, now)) builder.add(a);
    } finally {
      client.release();
    }
    const sql = await readPairSignals(db.pool, signalQueryFor(shipped, PLATFORM_SCHEMA, now, now - 400_000));
    expectSameSignals(sql, builder.at(now, now - 400_000), at(now));
  });
});

describe('readInvalidAttempts', () => {
  const query = (fromMs: number, toMs: number) => ({ schema: PLATFORM_SCHEMA, fromMs, toMs });

  it('counts the rows that break the contract, with their ids and reasons', async () => {
    const result = await readInvalidAttempts(db.pool, query(FROM, TO), 100);
    expect(result.count).toBe(bad.length);
    expect(result.sample.map((r) => r.id)).toEqual(bad.map((b) => String(b.id)));
    for (const [i, row] of result.sample.entries()) {
      expect(row.reason, `row ${row.id}`).toMatch(bad[i]!.reason);
    }
  });

  it('gives the full count with a smaller sample', async () => {
    const result = await readInvalidAttempts(db.pool, query(FROM, TO), 2);
    expect(result.count).toBe(bad.length);
    expect(result.sample.map((r) => r.id)).toEqual(bad.slice(0, 2).map((b) => String(b.id)));
  });

  it('looks only at rows created in the range', async () => {
    const createdAt = bad[0]!.createdAt;
    expect((await readInvalidAttempts(db.pool, query(createdAt + 1, TO))).count).toBe(0);
    expect((await readInvalidAttempts(db.pool, query(FROM, createdAt))).count).toBe(0);
    expect((await readInvalidAttempts(db.pool, query(createdAt, createdAt + 1))).count).toBe(bad.length);
  });

  it('finds none among the generated and hand-made rows', async () => {
    const result = await readInvalidAttempts(db.pool, {
      schema: asOfSchema(TICKS.length - 1),
      fromMs: FROM,
      toMs: TO,
    });
    // The as-of schemas hold the same bad rows and nothing else that breaks the contract.
    expect(result.count).toBe(bad.length);
  });
});
