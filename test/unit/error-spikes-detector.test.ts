// The pure error-spikes detector (detectors/error-spikes) on a fixed clock, read tick by tick as
// the live reader reads the platform (test/support/error-spikes.ts): the count rule (9 in a week
// open nothing, 10 do, hysteresis on resolve), the surge rule, steady codes, expected codes,
// one incident per code and rule, and counts that stay small and are never counted twice.
import { describe, expect, it } from 'vitest';
import {
  DAY,
  HOUR,
  MINUTE,
  WEEK,
  poissonUpperTail,
  type ErrorSpikesThresholds,
  type SpikeOpened,
  type SpikeResolved,
} from '../../detectors/error-spikes/index.ts';
import {
  failure,
  oldHistory,
  seeded,
  shippedErrorSpikes,
  SpikeHarness,
  type SpikeAttempt,
} from '../support/error-spikes.ts';

// Monday 2 March 2026, 12:00 UTC (20:00 in Beijing).
const T0 = Date.UTC(2026, 2, 2, 12, 0);

/** A harness on a platform whose history reaches back ten weeks (past the baseline weeks). */
function harness(settings: ErrorSpikesThresholds = shippedErrorSpikes): SpikeHarness {
  const h = new SpikeHarness(settings);
  h.add(oldHistory(T0 - 10 * WEEK));
  return h;
}

/** `n` occurrences of `code` spread evenly over the `days` days before `end`, ids from `firstId`. */
function spread(code: string, n: number, end: number, days: number, firstId: number): SpikeAttempt[] {
  return Array.from({ length: n }, (_, i) =>
    failure(firstId + i, code, end - days * DAY + Math.floor(((i + 0.5) * days * DAY) / n), {
      channel: i % 3 === 0 ? 'wechat_pay' : 'alipay',
      region: i % 2 === 0 ? 'CN-GD' : 'CN-BJ',
    }),
  );
}

/** A code at `perHour` per hour on average (Poisson), every hour in [from, to). */
function steady(
  code: string,
  perHour: number,
  from: number,
  to: number,
  seed: number,
  firstId: number,
): SpikeAttempt[] {
  const random = seeded(seed);
  const rows: SpikeAttempt[] = [];
  let id = firstId;
  // Exponential gaps: a Poisson process.
  for (
    let t = from + (-Math.log(1 - random()) * HOUR) / perHour;
    t < to;
    t += (-Math.log(1 - random()) * HOUR) / perHour
  )
    rows.push(failure(id++, code, Math.floor(t), { channel: random() < 0.5 ? 'unionpay' : 'alipay' }));
  return rows;
}

describe('the count rule', () => {
  it('9 occurrences of a rare code in a week open nothing; the 10th opens one count incident at the next tick', () => {
    const h = harness();
    h.add(...spread('E_RARE', 9, T0, 6, 1));
    expect(h.tick(T0)).toEqual([]);
    expect(h.run(T0 + MINUTE, T0 + 30 * MINUTE, MINUTE)).toEqual([]);
    // The 10th, created at 12:40:10 and finished 2 s later.
    h.add(failure(100, 'E_RARE', T0 + 40 * MINUTE + 10_000, { channel: 'unionpay', region: 'CN-SH' }));
    expect(h.tick(T0 + 40 * MINUTE)).toEqual([]);
    const changes = h.tick(T0 + 41 * MINUTE);
    expect(changes).toHaveLength(1);
    const opened = changes[0] as SpikeOpened;
    expect(opened).toMatchObject({
      detector: 'error-spikes',
      subjectKey: 'E_RARE',
      subject: { code: 'E_RARE' },
      code: 'E_RARE',
      kind: 'count',
      type: 'opened',
      at: T0 + 41 * MINUTE,
    });
    expect(opened.evidence).toMatchObject({
      countNow: 10,
      countBefore: 0,
      windowMinutes: 7 * 24 * 60,
      openAt: 10,
      calmAt: 7,
      pValue: null,
    });
    // 1, 4, 7 of the first 9 on wechat_pay (ids 1..9: i = 0, 3, 6), the rest alipay and one unionpay.
    expect(opened.evidence.topChannels).toEqual([
      { channel: 'alipay', count: 6 },
      { channel: 'wechat_pay', count: 3 },
      { channel: 'unionpay', count: 1 },
    ]);
    expect(opened.evidence.topRegions).toEqual([
      { region: 'CN-GD', count: 5 },
      { region: 'CN-BJ', count: 4 },
      { region: 'CN-SH', count: 1 },
    ]);
    expect(opened.evidence.exampleAttemptIds).toEqual(['100', '9', '8', '7', '6']);
  });

  it('opens nothing for 9 when the window is read in one tick either', () => {
    const h = harness();
    h.add(...spread('E_RARE', 9, T0, 7, 1));
    expect(h.tick(T0)).toEqual([]);
    const ten = harness();
    ten.add(...spread('E_RARE', 10, T0, 7, 1));
    expect(ten.tick(T0).map((c) => `${c.type} ${c.kind} ${c.code}`)).toEqual(['opened count E_RARE']);
  });

  it('opens once and stays quiet every tick after (no repeat alert)', () => {
    const h = harness();
    h.add(...spread('E_RARE', 12, T0, 2, 1));
    expect(h.tick(T0)).toHaveLength(1);
    // Two more arrive meanwhile: still the same incident.
    h.add(failure(50, 'E_RARE', T0 + 2 * HOUR), failure(51, 'E_RARE', T0 + 3 * HOUR));
    expect(h.run(T0 + 5 * MINUTE, T0 + 6 * HOUR, 5 * MINUTE)).toEqual([]);
    expect([...h.open.keys()]).toEqual(['E_RARE|count']);
  });

  it('resolves only when the rolling count falls under 70% of the threshold (hysteresis), then can open again', () => {
    const h = harness();
    // 10 occurrences one hour apart, from T0: the count reaches 10 at T0 + 9 h.
    h.add(...Array.from({ length: 10 }, (_, i) => failure(i + 1, 'E_RARE', T0 + i * HOUR + MINUTE)));
    const opened = h.run(T0, T0 + 10 * HOUR, HOUR);
    expect(opened.map((c) => [c.type, c.at])).toEqual([['opened', T0 + 10 * HOUR]]);
    // They leave the 7-day window one an hour from T0 + 7 d + 1 h: 9, 8, 7 left keep it open; 6 resolves.
    const resolvedAt = T0 + 7 * DAY + 4 * HOUR;
    expect(h.run(T0 + 11 * HOUR, resolvedAt - HOUR, HOUR)).toEqual([]);
    expect(h.last!.assessments[0]!.count.countNow).toBe(7);
    const resolved = h.tick(resolvedAt);
    expect(resolved).toHaveLength(1);
    expect(resolved[0]).toMatchObject({
      type: 'resolved',
      kind: 'count',
      reason: 'calmed',
      openedAt: T0 + 10 * HOUR,
    });
    expect((resolved[0] as SpikeResolved).evidence.countNow).toBe(6);
    // Back at 10 two hours later (4 of the first left in the window, 6 new): the code is still
    // rare (the 6 that left are its whole history, about 1.5 a week): a new incident.
    h.add(...spread('E_RARE', 6, resolvedAt + 2 * HOUR, 0.05, 200));
    expect(h.tick(resolvedAt + 2 * HOUR).map((c) => c.type)).toEqual(['opened']);
  });

  it('a code that is usually at the threshold or more is not rare: its 15 this week open nothing', () => {
    const h = harness();
    // 12 a week for the 4 baseline weeks, 15 in the window.
    for (let w = 1; w <= 4; w++) h.add(...spread('E_WEEKLY', 12, T0 - w * WEEK, 7, w * 1000));
    h.add(...spread('E_WEEKLY', 15, T0, 7, 9000));
    expect(h.tick(T0)).toEqual([]);
    // 48 over the 4 weeks and a half day the baseline covers (it starts at a midnight).
    const count = h.last!.assessments[0]!.count;
    expect(count.countNow).toBe(15);
    expect(count.countBefore).toBeCloseTo((48 * 7) / 28.5, 1);
  });

  it('on a young platform (its first attempt 10 days ago) no code is known to be rare: the count rule waits, surges open', () => {
    const young = new SpikeHarness();
    young.add(oldHistory(T0 - 10 * DAY), ...spread('E_RARE', 12, T0, 1, 1));
    expect(young.tick(T0)).toEqual([]);
    expect(young.last!.assessments[0]!.count).toMatchObject({
      countNow: 12,
      baselineMinutes: 3 * 24 * 60,
    });
    // Its history reaching 7 days before the window: the same 12 would open.
    const older = new SpikeHarness();
    older.add(oldHistory(T0 - 14 * DAY - 12 * HOUR), ...spread('E_RARE', 12, T0, 1, 1));
    expect(older.tick(T0).map((c) => c.kind)).toEqual(['count']);
    // A burst on the young platform is a surge (its baseline covers days).
    young.add(...Array.from({ length: 40 }, (_, i) => failure(100 + i, 'E_BURST', T0 + i * 30_000)));
    young.add(...steady('E_BURST', 1, T0 - 10 * DAY, T0, 4, 1_000));
    const fresh = new SpikeHarness();
    fresh.add(...young.attempts);
    expect(fresh.run(T0, T0 + 30 * MINUTE, MINUTE).map((c) => c.kind)).toEqual(['surge']);
  });

  it('pending attempts count once they are final, and one still pending at the settle horizon never does', () => {
    const h = harness();
    h.add(...spread('E_RARE', 9, T0, 3, 1));
    const late: SpikeAttempt = { ...failure(10, 'E_RARE', T0 + MINUTE), finishedAt: T0 + 3 * MINUTE };
    h.add(late);
    // At T0 + 2 min the 10th has not finished yet.
    expect(h.run(T0, T0 + 2 * MINUTE, MINUTE)).toEqual([]);
    expect(h.tick(T0 + 3 * MINUTE).map((c) => c.type)).toEqual(['opened']);

    const never = harness();
    never.add(...spread('E_RARE', 9, T0, 3, 1));
    // Finishes 20 minutes after its creation: past the 10-minute settle horizon.
    never.add({ ...failure(10, 'E_RARE', T0 + MINUTE), finishedAt: T0 + 21 * MINUTE });
    expect(never.run(T0, T0 + 40 * MINUTE, MINUTE)).toEqual([]);
    expect(never.last!.assessments[0]!.count.countNow).toBe(9);
  });
});

describe('the surge rule', () => {
  it('a one-hour surge of a code with a steady baseline opens one surge incident, which resolves after the surge', () => {
    const h = harness();
    // About 2 an hour for five weeks, then 40 more within 30 minutes from T0 + 1 h.
    h.add(...steady('E_BANK', 2, T0 - 5 * WEEK, T0 + 6 * HOUR, 7, 1));
    const surgeStart = T0 + HOUR;
    h.add(
      ...Array.from({ length: 40 }, (_, i) =>
        failure(1_000_000 + i, 'E_BANK', surgeStart + i * 45_000, { channel: 'wechat_pay', region: 'CN-ZJ' }),
      ),
    );
    expect(h.tick(T0)).toEqual([]);
    const changes = h.run(T0 + MINUTE, T0 + 4 * HOUR, MINUTE);
    expect(changes.map((c) => `${c.type} ${c.kind}`)).toEqual(['opened surge', 'resolved surge']);
    const opened = changes[0] as SpikeOpened;
    // Opens during the surge, within about 20 minutes of its start.
    expect(opened.at).toBeGreaterThan(surgeStart);
    expect(opened.at).toBeLessThanOrEqual(surgeStart + 20 * MINUTE);
    expect(opened.evidence.countBefore).toBeGreaterThan(1.5);
    expect(opened.evidence.countBefore).toBeLessThan(2.5);
    expect(opened.evidence.countNow).toBeGreaterThanOrEqual(opened.evidence.openAt);
    expect(opened.evidence.countNow).toBeLessThan(opened.evidence.openAt + 3);
    expect(opened.evidence.pValue).toBeLessThan(1e-4);
    expect(opened.evidence.windowMinutes).toBe(60);
    expect(opened.evidence.topChannels[0]).toEqual({ channel: 'wechat_pay', count: expect.any(Number) });
    expect(opened.evidence.topRegions[0]!.region).toBe('CN-ZJ');
    expect(opened.evidence.exampleAttemptIds).toHaveLength(5);
    // Resolves once the last hour no longer holds the surge: after it ended (30 min), within ~1 h after.
    const resolved = changes[1] as SpikeResolved;
    expect(resolved.reason).toBe('calmed');
    expect(resolved.at).toBeGreaterThan(surgeStart + 30 * MINUTE);
    expect(resolved.at).toBeLessThanOrEqual(surgeStart + 30 * MINUTE + HOUR);
    expect(resolved.evidence.countNow).toBeLessThanOrEqual(resolved.evidence.calmAt);
  });

  it('needs minCount: 15 in an hour of a code never seen before open no surge (but they do reach the count rule)', () => {
    const h = harness();
    h.add(...Array.from({ length: 15 }, (_, i) => failure(i + 1, 'E_NEW', T0 - 30 * MINUTE + i * MINUTE)));
    expect(h.tick(T0).map((c) => `${c.type} ${c.kind}`)).toEqual(['opened count']);
    const s = h.last!.assessments[0]!.surge;
    expect(s.countNow).toBe(15);
    expect(s.openAt).toBe(20);
  });
});

describe('steady codes and expected codes', () => {
  it('a steady high-volume code (about 60 an hour for five weeks) opens nothing, tick after tick', () => {
    const h = harness();
    h.add(...steady('INSUFFICIENT_BALANCE', 60, T0 - 5 * WEEK, T0 + DAY, 11, 1));
    expect(h.tick(T0)).toEqual([]);
    expect(h.run(T0 + 10 * MINUTE, T0 + DAY, 10 * MINUTE)).toEqual([]);
    const a = h.last!.assessments[0]!;
    expect(a.code).toBe('INSUFFICIENT_BALANCE');
    expect(a.count.countNow).toBeGreaterThan(9000);
    expect(a.count.countBefore).toBeGreaterThan(9000);
    expect(a.surge.countNow).toBeGreaterThan(30);
  });

  it('an expected code never opens, and an open incident of a code made expected resolves as expected', () => {
    const settings: ErrorSpikesThresholds = { ...shippedErrorSpikes, expectedCodes: ['E_RARE'] };
    const quiet = harness(settings);
    quiet.add(...spread('E_RARE', 30, T0, 0.02, 1));
    expect(quiet.run(T0, T0 + HOUR, 5 * MINUTE)).toEqual([]);

    const h = harness();
    h.add(...spread('E_RARE', 30, T0, 0.02, 1));
    expect(h.tick(T0).map((c) => `${c.type} ${c.kind}`)).toEqual(['opened count', 'opened surge']);
    h.settings = settings;
    const resolved = h.tick(T0 + MINUTE);
    expect(resolved.map((c) => `${c.type} ${c.kind} ${(c as SpikeResolved).reason}`)).toEqual([
      'resolved count expected',
      'resolved surge expected',
    ]);
    expect(h.run(T0 + 2 * MINUTE, T0 + HOUR, 5 * MINUTE)).toEqual([]);
  });
});

describe('counts between ticks', () => {
  it('a busy code keeps a small state: minutes for the last hour, hours for the week, days before', () => {
    const h = harness();
    h.add(...steady('INSUFFICIENT_BALANCE', 60, T0 - 5 * WEEK, T0 + 2 * HOUR, 3, 1));
    h.run(T0, T0 + 2 * HOUR, MINUTE);
    const c = h.counts.get('INSUFFICIENT_BALANCE')!;
    expect(c.minutes.length).toBeLessThanOrEqual(60);
    expect(c.hours.length).toBeLessThanOrEqual(7 * 24);
    expect(c.days.length).toBeLessThanOrEqual(4 * 7 + 1);
    expect(c.minutePlaces.length).toBeLessThanOrEqual(60);
    expect(c.dayPlaces.length).toBeLessThanOrEqual(8);
    expect(JSON.stringify(c).length).toBeLessThan(12_000);
  });

  it('ticks one by one count what one reading of the whole range counts; a lost cache reads again without counting twice', () => {
    const rows = [
      ...steady('E_BANK', 3, T0 - 5 * WEEK, T0 + 3 * HOUR, 5, 1),
      ...spread('E_RARE', 8, T0 + 3 * HOUR, 6, 900_000),
    ];
    const live = harness();
    live.add(...rows);
    live.run(T0, T0 + 3 * HOUR, MINUTE);
    const once = harness();
    once.add(...rows);
    once.tick(T0 + 3 * HOUR);
    const summary = (h: SpikeHarness) =>
      h.last!.assessments.map((a) => [
        a.code,
        a.count.countNow,
        a.count.countBefore,
        a.surge.countNow,
        a.surge.countBefore,
      ]);
    expect(summary(live)).toEqual(summary(once));
    expect(summary(live)[0]![1]).toBeGreaterThan(400);

    live.cache = null;
    live.tick(T0 + 3 * HOUR + MINUTE);
    once.tick(T0 + 3 * HOUR + MINUTE);
    expect(summary(live)).toEqual(summary(once));
  });

  it('forgets a code once its last occurrence has left the baseline weeks', () => {
    const h = harness();
    h.add(failure(1, 'E_ONCE', T0 - HOUR));
    h.tick(T0);
    expect(h.counts.has('E_ONCE')).toBe(true);
    h.tick(T0 + 5 * WEEK + DAY);
    expect(h.counts.has('E_ONCE')).toBe(false);
  });
});

describe('poissonUpperTail', () => {
  it('agrees with the sum of the probabilities', () => {
    for (const mean of [0.5, 2, 9.5, 60, 400])
      for (const k of [0, 1, 3, 10, 25, 80, 450]) {
        let below = 0;
        let p = Math.exp(-mean);
        for (let i = 0; i < k; i++) {
          below += p;
          p *= mean / (i + 1);
        }
        const direct = Math.max(0, 1 - below);
        const tail = poissonUpperTail(k, mean);
        // Relative agreement where the tail is not lost in 1 - below's rounding.
        if (direct > 1e-10)
          expect(Math.abs(tail - direct) / direct, `k=${k} mean=${mean}`).toBeLessThan(1e-6);
        else expect(tail, `k=${k} mean=${mean}`).toBeLessThan(1e-9);
      }
    // Far in the tail, where 1 - sum cannot see it: e^-1 (1/20! + 1/21! + ...).
    let factorial = 1;
    for (let i = 2; i <= 20; i++) factorial *= i;
    let tail = 0;
    for (let k = 20, term = 1 / factorial; k < 40; k++, term /= k) tail += term;
    expect(poissonUpperTail(20, 1) / (Math.exp(-1) * tail)).toBeCloseTo(1, 9);
  });
});
