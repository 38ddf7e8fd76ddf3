// Where `forewarn backtest` gets its baselines: from the state the live daemon stored in
// forewarn.detector_state when there is one (its learned baselines, not its incidents), after
// `backtest.warmupMinutes` (60) of history; else from a warm-up stretched to a baseline half-life
// (360 minutes) before --from. Run as an operator runs it, over 8 hours of one region's traffic in
// a real PostgreSQL, once without a stored state and once with one whose wechat_pay CN-GD
// baseline fails 20% and whose unionpay incident is open: the same history then tells a
// different, predictable story. Then the edges: a stored pair with no attempts in the replay's
// first hour keeps its stored baseline; a stored state without pairs is no baselines (a warm-up);
// a forewarn database that cannot be reached is a warning, and a warm-up.
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyTally, type KindState, type PaymentHealthState } from '../../detectors/payment-health/index.ts';
import { saveSubjectStates } from '../../lib/incidents/store.ts';
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
  /** Every JSON log line on stderr. */
  logs: Record<string, unknown>[];
  stderr: string;
}

let db: TestDatabase;

/**
 * A database of this file's, its pool told to ignore the errors of idle connections: drop() ends
 * the pool without waiting for its connections to close, and DROP DATABASE ... WITH (FORCE) then
 * terminates a backend that has not closed yet, which an idle client reports as an error.
 */
async function testDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  database.pool.on('error', () => undefined);
  return database;
}

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

/** `forewarn backtest` over [FROM, TO] on `database` (default: this file's), with `env` added. */
async function backtest(
  options: { database?: TestDatabase; env?: Record<string, string> } = {},
): Promise<Run> {
  const database = options.database ?? db;
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
    {
      env: { DATABASE_URL: database.url, FOREWARN_CONFIG: SHIPPED, LOG_LEVEL: 'info', ...options.env },
      timeoutMs: 110_000,
    },
  );
  expect(result.signal, `killed; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stderr: ${result.stderr}`).toBe(0);
  const logs = result.stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const finished = logs.filter((line) => line.msg === 'backtest finished');
  expect(finished).toHaveLength(1);
  return {
    incidents: JSON.parse(result.stdout) as Incident[],
    finished: finished[0]!,
    logs,
    stderr: result.stderr,
  };
}

/** Stored attempts created in [from, to). */
async function attemptsCreated(from: number, to: number, database: TestDatabase = db): Promise<number> {
  const { rows } = await database.pool.query<{ n: number }>(
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
/** Stores a state as the live daemon does: the head in detector_state, each pair in subject_state. */
async function storeState(pool: TestDatabase['pool'], state: PaymentHealthState): Promise<void> {
  const { pairs, ...head } = state;
  await pool.query(
    `INSERT INTO forewarn.detector_state (detector, evaluated_at, state) VALUES ('payment-health', $1, $2)
     ON CONFLICT (detector) DO UPDATE SET evaluated_at = EXCLUDED.evaluated_at, state = EXCLUDED.state`,
    [new Date(FROM - 2 * MINUTE), JSON.stringify(head)],
  );
  await pool.query(`DELETE FROM forewarn.subject_state WHERE detector = 'payment-health'`);
  await saveSubjectStates(
    pool,
    'payment-health',
    Object.entries(pairs).map(([subjectKey, pair]) => ({ subjectKey, state: pair })),
  );
}

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
  db = await testDatabase();
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
  await storeState(db.pool, storedState());
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

/** The shipped config's ticks and rows read for a 360 min warm-up, as the run without a state. */
async function expectLongWarmup(run: Run): Promise<void> {
  expect(run.finished).toMatchObject({ baselinesFrom: 'warm-up', warmupMinutes: 360 });
  expect(run.finished.ticks).toBe((TO - (FROM - WARMUP_DEFAULT)) / (15 * SECOND) + 1);
  expect(run.finished.attemptsRead).toBe(await attemptsCreated(FROM - WARMUP_DEFAULT - LOOKBACK, TO));
  // The same history from the same baselines: the same incidents.
  expect(run.incidents).toEqual(withoutState.incidents);
}

function unreadableWarnings(run: Run): Record<string, unknown>[] {
  return run.logs.filter((line) => line.code === 'FW_BACKTEST_STATE_UNREADABLE');
}

describe('forewarn backtest with a stored state whose pairs is empty (a daemon that learned nothing yet)', () => {
  let emptyState: Run;

  beforeAll(async () => {
    const state: PaymentHealthState = { evaluatedAt: FROM - 2 * MINUTE, pairs: {}, feedSilentSince: null };
    await storeState(db.pool, state);
    emptyState = await backtest();
  }, 120_000);

  it('has no stored baselines: it warms up for a baseline half-life (360 min), as without a state', async () => {
    await expectLongWarmup(emptyState);
    expect(unreadableWarnings(emptyState)).toEqual([]);
  });
});

describe('forewarn backtest when forewarn’s database cannot be reached', () => {
  const PASSWORD = 'pw-7Hq2xVz9-never-logged';
  let unreachable: Run;
  let url: string;

  beforeAll(async () => {
    // A port that was free a moment ago: nothing listens there, so connecting is refused.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    url = `postgres://forewarn:${PASSWORD}@127.0.0.1:${port}/forewarn`;
    // The platform's database (PLATFORM_DATABASE_URL) is reachable; forewarn's (DATABASE_URL) is not.
    unreachable = await backtest({ env: { DATABASE_URL: url, PLATFORM_DATABASE_URL: db.url } });
  }, 120_000);

  it('warns FW_BACKTEST_STATE_UNREADABLE (without the password) and replays from a 360 min warm-up', async () => {
    const warnings = unreadableWarnings(unreachable);
    expect(warnings, unreachable.stderr).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', component: 'backtest' });
    expect(warnings[0]!.msg).toMatch(/could not read the stored detector state \(.*ECONNREFUSED.*\)/);
    expect(warnings[0]!.msg).toMatch(/baselines come from the warm-up/);
    expect(unreachable.stderr).not.toContain(PASSWORD);
    expect(unreachable.stderr).not.toContain(url);
    await expectLongWarmup(unreachable);
  });

  it('is not said when there is simply no stored state (the table is there, the row is not)', () => {
    expect(unreadableWarnings(withoutState)).toEqual([]);
    expect(unreadableWarnings(withState)).toEqual([]);
  });
});

describe('forewarn backtest with a stored baseline for a pair that is quiet in the replay’s first hour', () => {
  // Its own database: the same region and scenarios without unionpay's outage, and no wechat_pay
  // attempt before FROM, the end of the 60 min warm-up (nor in the hour the first tick reads).
  // The stored state holds wechat_pay's 20% baseline only.
  let quietDb: TestDatabase;
  let quiet: Run;

  beforeAll(async () => {
    const platform = regionPlatform();
    const users = generateUsers(3_000, 5, { platform });
    const scenarios: Scenario[] = [
      { channel: 'wechat_pay', region: REGION, ...PARTIAL, effect: { type: 'failureRate', rate: 0.25 } },
      { channel: 'wechat_pay', region: REGION, ...HEAVY, effect: { type: 'failureRate', rate: 0.6 } },
    ];
    quietDb = await testDatabase();
    const from = FROM - WARMUP_STORED - LOOKBACK - 5 * MINUTE;
    await loadPlatform(quietDb.pool, {
      platform,
      users,
      attempts: generateAttempts({ platform, from, to: TO, seed: 37, users, scenarios }),
    });
    await quietDb.pool.query(
      `DELETE FROM platform.payment_attempts WHERE channel_id = 'wechat_pay' AND created_at < $1`,
      [new Date(FROM)],
    );
    const stored = storedState();
    const key = `wechat_pay:${REGION}`;
    const state: PaymentHealthState = {
      ...stored,
      // Last seen by the daemon 3 h before FROM.
      pairs: { [key]: { ...stored.pairs[key]!, lastSeenAt: FROM - 180 * MINUTE } },
    };
    await storeState(quietDb.pool, state);
    quiet = await backtest({ database: quietDb });
  }, 180_000);

  afterAll(async () => {
    await quietDb?.drop();
  });

  it('has no wechat_pay attempt in the replay’s first hour, and starts from the stored state', async () => {
    expect(await attemptsCreated(FROM - WARMUP_STORED - LOOKBACK, FROM, quietDb)).toBeGreaterThan(10_000);
    const { rows } = await quietDb.pool.query<{ n: number; first: Date }>(
      `SELECT count(*)::int AS n, min(created_at) AS first FROM platform.payment_attempts WHERE channel_id = 'wechat_pay'`,
    );
    expect(rows[0]!.n).toBeGreaterThan(5_000);
    expect(rows[0]!.first.getTime()).toBeGreaterThanOrEqual(FROM);
    expect(quiet.finished).toMatchObject({ baselinesFrom: 'stored state', warmupMinutes: 60 });
  });

  it('keeps its stored 20% baseline: the 25% opens nothing (it would against the configured 3%), the 60% opens against about 20%', () => {
    const wechat = of(quiet, 'wechat_pay');
    expect(wechat, JSON.stringify(quiet.incidents)).toHaveLength(1);
    const heavy = wechat[0]!;
    expect(opened(heavy, HEAVY.from)).toBeGreaterThan(0);
    expect(opened(heavy, HEAVY.from)).toBeLessThanOrEqual(3 * MINUTE);
    expect(resolved(heavy, HEAVY.to)).toBeLessThanOrEqual(5 * MINUTE);
    // The stored 20% (decay keeps its share), mixed with the little 1% traffic learned before
    // PARTIAL; forgotten, the pair would start again from the configured 3% and learn its 1%.
    expect(heavy.evidence.baseline).toBeGreaterThan(0.15);
    expect(heavy.evidence.baseline).toBeLessThanOrEqual(0.2);
    expect(heavy.evidence.threshold).toBeCloseTo(2 * heavy.evidence.baseline, 3);
    expect(quiet.incidents).toHaveLength(1);
  });
});
