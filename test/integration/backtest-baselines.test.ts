// Where `forewarn backtest` gets its baselines: from the state the live daemon stored in
// forewarn.detector_state when there is one (its learned baselines, not its incidents), after
// `backtest.warmupMinutes` (60) of history; else from a warm-up stretched to a baseline half-life
// (360 minutes) before --from. Run as an operator runs it, over 8 hours of one region's traffic in
// a real PostgreSQL, once without a stored state and once with one whose wechat_pay CN-GD
// baseline fails 20% and whose unionpay incident is open: the same history then tells a
// different, predictable story.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyTally, type KindState, type PaymentHealthState } from '../../detectors/payment-health/index.ts';
import { generateUsers, referencePlatform, type Platform } from '../../sim/platform.ts';
import { generateAttempts, type Scenario } from '../../sim/traffic.ts';
import { runForewarn, type CliResult } from '../support/cli.ts';
import { loadPlatform } from '../support/platform.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SECOND = 1_000;
const MINUTE = 60_000;
const REGION = 'CN-GD';
// 20:00-20:45 in Beijing, the evening rush.
const FROM = Date.UTC(2026, 2, 2, 12, 0);
const TO = Date.UTC(2026, 2, 2, 12, 45);
// The shipped config's warm-up, and the baseline half-life it is stretched to without a state.
const WARMUP_STORED = 60 * MINUTE;
const WARMUP_DEFAULT = 360 * MINUTE;
// What a first tick reads before itself: the longest window (1 h) and the settle horizon (5 min).
const LOOKBACK = 65 * MINUTE;
// History from before the longer warm-up's first read.
const TRAFFIC_FROM = FROM - WARMUP_DEFAULT - LOOKBACK - 5 * MINUTE;

// unionpay fails completely from 5.5 h before --from until 5 min after it: the incident opens
// within the 6 h warm-up and is still open at --from, so its openedAt shows where the replay began.
const UNIONPAY_DOWN = { from: FROM - 330 * MINUTE, to: FROM + 5 * MINUTE };
// wechat_pay (normally 1% failures here, far from the configured 3%, so a learned baseline shows):
// 25% failures, above a learned 1% baseline's threshold (9%) and below the stored 20% one's
// (about 32% once the warm-up has mixed in its 1%); later 60%, above both, so that the stored
// run's evidence shows the baseline it judged against.
const PARTIAL = { from: FROM + 5 * MINUTE, to: FROM + 15 * MINUTE };
const HEAVY = { from: FROM + 25 * MINUTE, to: FROM + 32 * MINUTE };

interface Incident {
  subject: { channel: string; region: string };
  kind: string;
  openedAt: string;
  resolvedAt: string | null;
  resolveReason: string | null;
  evidence: { baseline: number; threshold: number; rate: number };
}

interface Run {
  incidents: Incident[];
  finished: Record<string, unknown>;
}

let db: TestDatabase;

/** One region's six pairs, with wechat_pay's normal failure share lowered to 1%. */
function regionPlatform(): Platform {
  const reference = referencePlatform();
  return {
    ...reference,
    pairs: reference.pairs
      .filter((p) => p.region === REGION)
      .map((p) => (p.channel === 'wechat_pay' ? { ...p, failureRate: 0.01 } : p)),
  };
}

async function backtest(): Promise<Run> {
  const result: CliResult = await runForewarn(
    [
      'backtest',
      '--detector',
      'payment-health',
      '--from',
      new Date(FROM).toISOString(),
      '--to',
      new Date(TO).toISOString(),
      '--format',
      'json',
    ],
    { env: { DATABASE_URL: db.url, FOREWARN_CONFIG: SHIPPED, LOG_LEVEL: 'info' }, timeoutMs: 110_000 },
  );
  expect(result.signal, `killed; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stderr: ${result.stderr}`).toBe(0);
  const finished = result.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === 'backtest finished');
  expect(finished).toHaveLength(1);
  return { incidents: JSON.parse(result.stdout) as Incident[], finished: finished[0]! };
}

/** Stored attempts created in [from, to). */
async function attemptsCreated(from: number, to: number): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM platform.payment_attempts WHERE created_at >= $1 AND created_at < $2`,
    [new Date(from), new Date(to)],
  );
  return rows[0]!.n;
}

function of(run: Run, channel: string): Incident[] {
  return run.incidents.filter((i) => i.subject.channel === channel);
}

/** Milliseconds from `origin` to the incident's opening (or resolution). */
function opened(incident: Incident, origin: number): number {
  return Date.parse(incident.openedAt) - origin;
}
function resolved(incident: Incident, origin: number): number {
  expect(incident.resolvedAt, JSON.stringify(incident)).not.toBeNull();
  return Date.parse(incident.resolvedAt!) - origin;
}

/** The failures incident the daemon had open on unionpay, since 3 min into its outage. */
const STORED_UNIONPAY_OPENED = UNIONPAY_DOWN.from + 3 * MINUTE;

/**
 * The daemon's state: wechat_pay's baseline at 20% failures of 150,000 decayed attempts (about
 * 6 h of its traffic); unionpay's at 8% of 10,000, with its outage's incident open, which a
 * backtest must not take over (it decides incidents afresh, with the thresholds it is given).
 */
function storedState(): PaymentHealthState {
  const idle: KindState = {
    degradedSince: null,
    lastDegradedAt: null,
    healthySince: null,
    open: null,
    resolvedAt: null,
  };
  const seenAt = FROM - 2 * MINUTE;
  const latency = emptyTally().latency;
  return {
    evaluatedAt: seenAt,
    feedSilentSince: null,
    pairs: {
      [`wechat_pay:${REGION}`]: {
        channel: 'wechat_pay',
        region: REGION,
        baseline: { finished: 150_000, failures: 30_000, timed: 150_000, slow: 750, latency },
        kinds: { failures: idle, slow: idle },
        lastSeenAt: seenAt,
        lastAbnormalAt: null,
      },
      [`unionpay:${REGION}`]: {
        channel: 'unionpay',
        region: REGION,
        baseline: { finished: 10_000, failures: 800, timed: 10_000, slow: 50, latency },
        kinds: {
          failures: {
            ...idle,
            lastDegradedAt: seenAt,
            open: {
              openedAt: STORED_UNIONPAY_OPENED,
              backupChannels: ['alipay', 'bank_card'],
              during: { finished: 6_000, failures: 6_000, timed: 6_000, slow: 0 },
              evidence: {
                windowSeconds: 120,
                attempts: 40,
                bad: 40,
                rate: 1,
                lowerBound: 0.72,
                upperBound: 1,
                baseline: 0.079,
                threshold: 0.159,
                confidence: 0.9999,
                users: 3,
                medianLatencyMs: null,
                baselineLatencyMs: null,
                topErrorCodes: [{ code: '96', count: 26 }],
              },
            },
          },
          slow: idle,
        },
        lastSeenAt: seenAt,
        lastAbnormalAt: seenAt,
      },
    },
  };
}

let withoutState: Run;
let withState: Run;

beforeAll(async () => {
  const platform = regionPlatform();
  const users = generateUsers(3_000, 5, { platform });
  const scenarios: Scenario[] = [
    { channel: 'unionpay', region: REGION, ...UNIONPAY_DOWN, effect: { type: 'outage' } },
    { channel: 'wechat_pay', region: REGION, ...PARTIAL, effect: { type: 'failureRate', rate: 0.25 } },
    { channel: 'wechat_pay', region: REGION, ...HEAVY, effect: { type: 'failureRate', rate: 0.6 } },
  ];
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform,
    users,
    attempts: generateAttempts({ platform, from: TRAFFIC_FROM, to: TO, seed: 31, users, scenarios }),
  });
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM forewarn.detector_state`,
  );
  expect(rows[0]!.n).toBe(0);
  withoutState = await backtest();
  await db.pool.query(
    `INSERT INTO forewarn.detector_state (detector, evaluated_at, state) VALUES ('payment-health', $1, $2)`,
    [new Date(FROM - 2 * MINUTE), JSON.stringify(storedState())],
  );
  withState = await backtest();
}, 300_000);

afterAll(async () => {
  await db?.drop();
});

describe('forewarn backtest without a stored detector state', () => {
  it('warms up for a baseline half-life (360 min) before --from: the log says so, and the ticks and rows read cover it', async () => {
    expect(withoutState.finished).toMatchObject({ baselinesFrom: 'warm-up', warmupMinutes: 360 });
    expect(withoutState.finished.ticks).toBe((TO - (FROM - WARMUP_DEFAULT)) / (15 * SECOND) + 1);
    // Its first tick reads a whole window and a settled slice before it.
    expect(withoutState.finished.attemptsRead).toBe(
      await attemptsCreated(FROM - WARMUP_DEFAULT - LOOKBACK, TO),
    );
  });

  it('reports an incident that opened 5.5 h before --from, still open then, at its real start', () => {
    const [unionpay, ...more] = of(withoutState, 'unionpay');
    expect(more).toEqual([]);
    expect(opened(unionpay!, UNIONPAY_DOWN.from)).toBeGreaterThan(0);
    expect(opened(unionpay!, UNIONPAY_DOWN.from)).toBeLessThanOrEqual(5 * MINUTE);
    expect(resolved(unionpay!, UNIONPAY_DOWN.to)).toBeGreaterThan(0);
    expect(resolved(unionpay!, UNIONPAY_DOWN.to)).toBeLessThanOrEqual(5 * MINUTE);
  });

  it('judges wechat_pay against the 1% it learned: both its 25% and its 60% open', () => {
    const wechat = of(withoutState, 'wechat_pay');
    expect(wechat).toHaveLength(2);
    const [partial, heavy] = wechat as [Incident, Incident];
    expect(opened(partial, PARTIAL.from)).toBeGreaterThan(0);
    expect(opened(partial, PARTIAL.from)).toBeLessThanOrEqual(3 * MINUTE);
    expect(resolved(partial, PARTIAL.to)).toBeLessThanOrEqual(5 * MINUTE);
    expect(opened(heavy, HEAVY.from)).toBeGreaterThan(0);
    expect(opened(heavy, HEAVY.from)).toBeLessThanOrEqual(2 * MINUTE);
    for (const incident of wechat) {
      // Learned, not the configured 3% it starts from.
      expect(incident.evidence.baseline).toBeGreaterThan(0.005);
      expect(incident.evidence.baseline).toBeLessThan(0.015);
      expect(incident.evidence.threshold).toBeLessThan(0.1);
    }
    expect(withoutState.incidents).toHaveLength(3);
  });
});

describe('forewarn backtest with the live daemon’s stored state', () => {
  it('starts from the stored baselines after the configured warm-up (60 min)', async () => {
    expect(withState.finished).toMatchObject({ baselinesFrom: 'stored state', warmupMinutes: 60 });
    expect(withState.finished.ticks).toBe((TO - (FROM - WARMUP_STORED)) / (15 * SECOND) + 1);
    expect(withState.finished.attemptsRead).toBe(await attemptsCreated(FROM - WARMUP_STORED - LOOKBACK, TO));
  });

  it('judges wechat_pay against the stored 20%: the 25% opens nothing, the 60% opens with that baseline', () => {
    const wechat = of(withState, 'wechat_pay');
    expect(wechat).toHaveLength(1);
    const heavy = wechat[0]!;
    expect(opened(heavy, HEAVY.from)).toBeGreaterThan(0);
    expect(opened(heavy, HEAVY.from)).toBeLessThanOrEqual(3 * MINUTE);
    expect(resolved(heavy, HEAVY.to)).toBeLessThanOrEqual(5 * MINUTE);
    // 20% stored, decayed over the warm-up and mixed with the 1% learned in it (about 16% by
    // then), far from the 1% of the run without it; the threshold doubles it (relativeIncrease 1.0).
    expect(heavy.evidence.baseline).toBeGreaterThan(0.1);
    expect(heavy.evidence.baseline).toBeLessThan(0.2);
    expect(heavy.evidence.threshold).toBeCloseTo(2 * heavy.evidence.baseline, 3);
  });

  it('takes over none of its incidents: unionpay’s is decided afresh, against its stored 8%', () => {
    // Not the stored incident (open since 5.5 h before --from): a new one, opened once the
    // replay began, at the start of the 60 min warm-up.
    const [unionpay, ...more] = of(withState, 'unionpay');
    expect(more).toEqual([]);
    expect(unionpay!.openedAt).not.toBe(new Date(STORED_UNIONPAY_OPENED).toISOString());
    expect(opened(unionpay!, FROM - WARMUP_STORED)).toBeGreaterThanOrEqual(0);
    expect(opened(unionpay!, FROM - WARMUP_STORED)).toBeLessThanOrEqual(2 * MINUTE);
    expect(resolved(unionpay!, UNIONPAY_DOWN.to)).toBeLessThanOrEqual(5 * MINUTE);
    // The warm-up saw only the outage, so nothing was learned: the stored 8%, not the configured
    // 3% (nor the 5% the long warm-up learned before the outage).
    expect(unionpay!.evidence.baseline).toBeGreaterThan(0.07);
    expect(unionpay!.evidence.baseline).toBeLessThan(0.09);
    expect(of(withoutState, 'unionpay')[0]!.evidence.baseline).toBeLessThan(0.06);
    expect(withState.incidents).toHaveLength(2);
  });
});
