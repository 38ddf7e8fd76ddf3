// The SQL observation model (lib/platform/payment-attempts.ts) against its in-memory reference
// (sim/observe.ts): on the same generated attempts, the same range and the same slow thresholds,
// both must give exactly the same bucket rows; rows that break the contract are skipped by the
// one and reported, with id and reason, by the other.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { BucketRow, PaymentHealthSettings } from '../../detectors/payment-health/index.ts';
import { thresholdsFor } from '../../detectors/payment-health/index.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import {
  readAttemptBuckets,
  readInvalidAttempts,
  slowAfterRules,
  type AttemptBucketQuery,
} from '../../lib/platform/payment-attempts.ts';
import { bucketRowsFromAttempts } from '../../sim/observe.ts';
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

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const MINUTE = 60_000;
// 19:00-21:00 in Beijing, the busiest two hours of the day.
const FROM = Date.UTC(2026, 2, 2, 11, 0);
const TO = Date.UTC(2026, 2, 2, 13, 0);

const platform = referencePlatform();
const users = generateUsers(3_000, 7, { platform });
const scenarios: Scenario[] = [
  // Confirmations around 20 s (15-25 s) against wechat_pay's 20 s threshold: both sides of it.
  {
    channel: 'wechat_pay',
    region: 'CN-GD',
    from: FROM + 20 * MINUTE,
    to: FROM + 35 * MINUTE,
    effect: { type: 'slow', latencyMs: 20_000 },
  },
  {
    channel: 'bank_card',
    region: 'CN-GD',
    from: FROM + 40 * MINUTE,
    to: FROM + 50 * MINUTE,
    effect: { type: 'stuckPending', share: 0.4 },
  },
  {
    channel: 'unionpay',
    region: '*',
    from: FROM + 55 * MINUTE,
    to: FROM + 60 * MINUTE,
    effect: { type: 'stuckPending', share: 0.5 },
  },
  {
    channel: 'alipay',
    region: 'CN-ZJ',
    from: FROM + 60 * MINUTE,
    to: FROM + 70 * MINUTE,
    effect: { type: 'outage' },
  },
];

/**
 * The shipped config with slow thresholds overridden per region, channel and pair, layered so
 * that each level wins over the one before it somewhere:
 *   alipay CN-GD 5 s (pair), unionpay CN-GD 45 s (pair over channel and region),
 *   wechat_pay CN-GD 20 s (channel over region), bank_card CN-GD 10 s (region), unionpay 30 s
 *   elsewhere (shipped channel override), everything else 15 s.
 */
async function settingsWithOverrides(): Promise<PaymentHealthSettings> {
  const doc = parse(await readFile(SHIPPED, 'utf8')) as {
    detectors: { paymentHealth: { overrides: Record<string, Record<string, unknown>> } };
  };
  const overrides = doc.detectors.paymentHealth.overrides;
  overrides.regions = { ...overrides.regions, 'CN-GD': { slow: { slowAfterMs: 10_000 } } };
  overrides.channels = { ...overrides.channels, wechat_pay: { slow: { slowAfterMs: 20_000 } } };
  overrides.pairs = {
    ...overrides.pairs,
    'alipay:CN-GD': { slow: { slowAfterMs: 5_000 } },
    'unionpay:CN-GD': { slow: { slowAfterMs: 45_000 } },
  };
  return parseConfigText(stringify(doc), 'attempt-buckets overrides').detectors.paymentHealth;
}

/** Sorted as the reference sorts: channel, region, bucket. */
function sorted(rows: BucketRow[]): BucketRow[] {
  return [...rows].sort(
    (a, b) =>
      (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0) ||
      (a.region < b.region ? -1 : a.region > b.region ? 1 : 0) ||
      a.bucket - b.bucket,
  );
}

/**
 * Hand-made valid attempts on the edges of [rangeFrom, rangeTo) and of the slow thresholds, on
 * top of the generated traffic, with ids from `firstId`.
 */
function edgeAttempts(firstId: number, rangeFrom: number, rangeTo: number): SimAttempt[] {
  let id = firstId;
  const a = (
    channelId: string,
    region: string,
    status: SimAttempt['status'],
    createdAt: number,
    latencyMs: number | null = null,
  ): SimAttempt => ({
    id: id++,
    userId: users[0]!.id,
    channelId,
    region,
    status,
    errorCode: status === 'failed' || status === 'timeout' ? 'ACQ.SYSTEM_ERROR' : null,
    latencyMs,
    createdAt,
    finishedAt: null,
  });
  const mid = Math.floor((rangeFrom + rangeTo) / 2 / 5_000) * 5_000;
  return [
    // Exactly at alipay CN-GD's 5 s threshold is not slow; a millisecond past it is.
    a('alipay', 'CN-GD', 'succeeded', mid, 5_000),
    a('alipay', 'CN-GD', 'succeeded', mid + 1, 5_001),
    // Confirmed, but no latency recorded: counted at creation, in no latency sum.
    a('alipay', 'CN-GD', 'succeeded', mid + 2, null),
    // Pending: observed (as slow) when its pair's threshold has passed: just in, just out.
    a('unionpay', 'CN-GD', 'pending', rangeFrom - 45_000),
    a('unionpay', 'CN-GD', 'pending', rangeFrom - 45_001),
    a('unionpay', 'CN-BJ', 'pending', rangeFrom - 30_000),
    a('bank_card', 'CN-GD', 'pending', rangeFrom - 10_001),
    a('wechat_pay', 'CN-GD', 'succeeded', rangeFrom - 20_000, 60_000),
    a('wechat_pay', 'CN-GD', 'succeeded', rangeFrom - 20_001, 60_000),
    // Failures are observed when created: the end of the range is exclusive.
    a('jd_pay', 'CN-GD', 'failed', rangeTo - 1),
    a('jd_pay', 'CN-GD', 'timeout', rangeTo),
    a('qq_wallet', 'CN-GD', 'failed', rangeFrom),
    a('qq_wallet', 'CN-GD', 'failed', rangeFrom - 1),
  ];
}

let db: TestDatabase;
let settings: PaymentHealthSettings;
let attempts: SimAttempt[];
let bad: BadAttempt[];

function query(fromMs: number, toMs: number): AttemptBucketQuery {
  return { schema: PLATFORM_SCHEMA, fromMs, toMs, slowAfter: slowAfterRules(settings) };
}

function reference(fromMs: number, toMs: number): BucketRow[] {
  return bucketRowsFromAttempts(attempts, {
    // The detector's own layering of overrides, independent of the SQL's rules.
    slowAfterMs: (channel, region) => thresholdsFor(settings, channel, region).slow.slowAfterMs,
    fromMs,
    toMs,
  });
}

// An aligned range, and one whose ends fall inside buckets, cutting through the scenarios.
const RANGES: Array<[string, number, number]> = [
  ['the whole two hours', FROM, TO],
  ['a range with unaligned ends', FROM + 17 * MINUTE + 2_345, FROM + 62 * MINUTE + 4_321],
];

beforeAll(async () => {
  settings = await settingsWithOverrides();
  const generated = [...generateAttempts({ platform, from: FROM, to: TO, seed: 42, scenarios, users })];
  const lastId = generated[generated.length - 1]!.id;
  const [, edgeFrom, edgeTo] = RANGES[1]!;
  attempts = [...generated, ...edgeAttempts(lastId + 1, edgeFrom, edgeTo)];
  bad = badAttempts({
    firstId: 900_000_001,
    createdAt: FROM + 30 * MINUTE,
    channel: 'alipay',
    region: 'CN-GD',
    userId: users[0]!.id,
  });
  db = await createTestDatabase();
  const stored = await loadPlatform(db.pool, { platform, users, attempts });
  expect(stored).toBe(attempts.length);
});

afterAll(async () => {
  await db?.drop();
});

describe('readAttemptBuckets', () => {
  it('resolves slow thresholds per pair, then channel, then region', () => {
    const rules = slowAfterRules(settings);
    expect(rules.defaultMs).toBe(15_000);
    expect(rules.maxMs).toBe(45_000);
    const expected: Array<[string, string, number]> = [
      ['alipay', 'CN-GD', 5_000],
      ['unionpay', 'CN-GD', 45_000],
      ['wechat_pay', 'CN-GD', 20_000],
      ['bank_card', 'CN-GD', 10_000],
      ['unionpay', 'CN-BJ', 30_000],
      ['alipay', 'CN-BJ', 15_000],
    ];
    for (const [channel, region, ms] of expected) {
      expect(thresholdsFor(settings, channel, region).slow.slowAfterMs, `${channel}:${region}`).toBe(ms);
    }
  });

  it('the traffic exercises every status and both sides of the slow thresholds', () => {
    const statuses = new Set(attempts.map((a) => a.status));
    expect([...statuses].sort()).toEqual(['failed', 'pending', 'succeeded', 'timeout']);
    const rows = reference(FROM, TO);
    const total = (pick: (r: BucketRow) => number, pair: string) =>
      rows.filter((r) => `${r.channel}:${r.region}` === pair).reduce((sum, r) => sum + pick(r), 0);
    // The slow scenario and the stuck-pending ones produce slow attempts where they run.
    expect(total((r) => r.slow, 'wechat_pay:CN-GD')).toBeGreaterThan(500);
    expect(total((r) => r.slow, 'bank_card:CN-GD')).toBeGreaterThan(50);
    expect(total((r) => r.slow, 'unionpay:CN-SC')).toBeGreaterThan(10);
    expect(total((r) => r.failures, 'alipay:CN-ZJ')).toBeGreaterThan(1_000);
  });

  for (const [name, fromMs, toMs] of RANGES) {
    it(`returns exactly the reference's bucket rows for ${name}`, async () => {
      const expected = reference(fromMs, toMs);
      expect(expected.length).toBeGreaterThan(1_000);
      const actual = await readAttemptBuckets(db.pool, query(fromMs, toMs));
      expect(sorted(actual)).toEqual(expected);
    });
  }

  it('counts the hand-made edge attempts as the observation model says', async () => {
    const [, fromMs, toMs] = RANGES[1]!;
    const rows = sorted(await readAttemptBuckets(db.pool, query(fromMs, toMs)));
    const firstBucket = Math.floor(fromMs / 5_000);
    const lastBucket = Math.floor((toMs - 1) / 5_000);
    const at = (channel: string, region: string, bucket: number) =>
      rows.find((r) => r.channel === channel && r.region === region && r.bucket === bucket);
    // Observed at exactly fromMs: pending unionpay CN-GD (45 s), CN-BJ (30 s), slow wechat_pay (20 s).
    expect(at('unionpay', 'CN-GD', firstBucket)?.slow).toBeGreaterThanOrEqual(1);
    expect(at('unionpay', 'CN-BJ', firstBucket)?.slow).toBeGreaterThanOrEqual(1);
    expect(at('wechat_pay', 'CN-GD', firstBucket)?.slow).toBeGreaterThanOrEqual(1);
    expect(at('qq_wallet', 'CN-GD', firstBucket)?.failures).toBeGreaterThanOrEqual(1);
    expect(at('jd_pay', 'CN-GD', lastBucket)?.failures).toBeGreaterThanOrEqual(1);
  });

  it('skips rows that break the contract', async () => {
    const [, fromMs, toMs] = RANGES[0]!;
    const before = await readAttemptBuckets(db.pool, query(fromMs, toMs));
    await insertRawAttempts(db.pool, bad);
    const after = await readAttemptBuckets(db.pool, query(fromMs, toMs));
    expect(sorted(after)).toEqual(sorted(before));
    expect(sorted(after)).toEqual(reference(fromMs, toMs));
    expect(after.some((r) => r.channel === 'bitcoin' || r.region === '')).toBe(false);
  });
});

describe('readInvalidAttempts', () => {
  it('counts the rows that break the contract, with their ids and reasons', async () => {
    // The previous test inserted them; insert again only when this test runs alone.
    const present = await db.pool.query('SELECT 1 FROM platform.payment_attempts WHERE id = $1', [
      bad[0]!.id,
    ]);
    if (present.rowCount === 0) await insertRawAttempts(db.pool, bad);

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
});
