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
