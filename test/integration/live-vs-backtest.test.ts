// Live ticks and a backtest of the stored history must tell the same story. Simulated traffic of
// CN-GD's pairs is written the way a platform writes it (inserted pending, updated in place when
// the outcome is known, sim/live.ts) on an injected clock, with a hard outage of alipay and slow
// confirmations of wechat_pay; every 15 s of simulated time the writer catches up and the live
// tick runs against the database. Afterwards the history is completed and backtested over the
// same ticks from the same empty state: both must open and resolve the same incidents, at the
// same ticks, with the same evidence, and end in the same detector state.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initialPaymentHealthState,
  lookback,
  replayPaymentHealth,
  type Evidence,
  type ObservedAttempt,
  type PaymentHealthSettings,
} from '../../detectors/payment-health/index.ts';
import { backtestPaymentHealth, type BacktestReport } from '../../lib/backtest/payment-health.ts';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext, type AppContext } from '../../lib/context.ts';
import {
  paymentHealth,
  runPaymentHealthTick,
  type TickResult,
} from '../../lib/detection/payment-health-tick.ts';
import { readEnv } from '../../lib/env.ts';
import { streamAttempts } from '../../lib/platform/payment-attempts.ts';
import { readPaymentChannels } from '../../lib/platform/payment-channels.ts';
import { startLiveWriter, type LiveWriterCounts } from '../../sim/live.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts, type Scenario } from '../../sim/traffic.ts';
import { loadPlatform, PLATFORM_SCHEMA } from '../support/platform.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SECOND = 1_000;
const MINUTE = 60_000;
const STEP = 15 * SECOND;
const FLUSH_EVERY = 5 * SECOND;
const REGION = 'CN-GD';
// 20:00 in Beijing on a day well in the past: the tick's clock check compares with the database's now().
const FIRST_TICK = Date.UTC(2026, 2, 2, 12, 0);
// Seventy minutes of traffic before the first tick: the live first tick, without state, reads a
// whole window and a settled slice before it, and so must the backtest.
const TRAFFIC_FROM = FIRST_TICK - 70 * MINUTE;
const LAST_TICK = FIRST_TICK + 32 * MINUTE;
const TRAFFIC_TO = LAST_TICK + MINUTE;
const OUTAGE: Scenario = {
  channel: 'alipay',
  region: REGION,
  from: FIRST_TICK + 8 * MINUTE,
  to: FIRST_TICK + 11 * MINUTE,
  effect: { type: 'outage' },
};
// 19-31 s confirmations against the 15 s slow threshold.
const SLOW: Scenario = {
  channel: 'wechat_pay',
  region: REGION,
  from: FIRST_TICK + 16 * MINUTE,
  to: FIRST_TICK + 21 * MINUTE,
  effect: { type: 'slow', latencyMs: 25_000 },
};

interface Incident {
  subject: { channel: string; region: string };
  kind: string;
  openedAt: number;
  resolvedAt: number | null;
  resolveReason: string | null;
  evidence: Evidence;
  backupChannels: string[];
}

let db: TestDatabase;
let redisPrefix: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let ctx: AppContext;
let settings: PaymentHealthSettings;
const ticks: Array<{ tickAt: number; result: TickResult; writer: LiveWriterCounts }> = [];
let final: LiveWriterCounts;
let backtest: BacktestReport;

const byOpening = (a: Incident, b: Incident) =>
  a.openedAt - b.openedAt ||
  `${a.subject.channel}:${a.subject.region}:${a.kind}`.localeCompare(
    `${b.subject.channel}:${b.subject.region}:${b.kind}`,
  );

async function liveIncidents(): Promise<Incident[]> {
  const { rows } = await db.pool.query<{
    subject: Incident['subject'];
    kind: string;
    opened_at: Date;
    resolved_at: Date | null;
    reason: string | null;
    open_evidence: Evidence;
    backup_channels: string[];
  }>(
    `SELECT i.subject, i.kind, i.opened_at, i.resolved_at, i.open_evidence, i.backup_channels,
            (SELECT e.payload->>'reason' FROM forewarn.incident_events e
              WHERE e.incident_id = i.id AND e.type = 'resolved') AS reason
       FROM forewarn.incidents i`,
  );
  return rows
    .map((r) => ({
      subject: r.subject,
      kind: r.kind,
      openedAt: r.opened_at.getTime(),
      resolvedAt: r.resolved_at?.getTime() ?? null,
      resolveReason: r.reason,
      evidence: r.open_evidence,
      backupChannels: r.backup_channels,
    }))
    .sort(byOpening);
}

function backtestIncidents(report: BacktestReport): Incident[] {
  return report.incidents
    .map((i) => ({
      subject: i.subject,
      kind: i.kind,
      openedAt: Date.parse(i.openedAt),
      resolvedAt: i.resolvedAt === null ? null : Date.parse(i.resolvedAt),
      resolveReason: i.resolveReason,
      evidence: i.evidence,
      backupChannels: i.backupChannels,
    }))
    .sort(byOpening);
}

beforeAll(async () => {
  const platform = referencePlatform();
  const local = { ...platform, pairs: platform.pairs.filter((p) => p.region === REGION) };
  const users = generateUsers(2_000, 11, { platform });
  db = await createTestDatabase();
  // Channels and users only: every attempt arrives through the live writer.
  await loadPlatform(db.pool, { platform: local, users, attempts: [] });

  redisPrefix = await createTestRedisPrefix();
  const logs = captureLogs('warn');
  const env = readEnv({
    DATABASE_URL: db.url,
    REDIS_URL,
    FOREWARN_QUEUE_PREFIX: redisPrefix.prefix,
    FOREWARN_CONFIG: SHIPPED,
    LOG_LEVEL: 'warn',
  });
  ctx = await createContext(env, await ConfigStore.open(SHIPPED, logs.logger), logs.logger);
  settings = ctx.config().detectors.paymentHealth;

  let clock = TRAFFIC_FROM;
  const writer = startLiveWriter({
    db: db.pool,
    schema: PLATFORM_SCHEMA,
    attempts: generateAttempts({
      platform: local,
      from: TRAFFIC_FROM,
      to: TRAFFIC_TO,
      seed: 2026,
      users,
      scenarios: [OUTAGE, SLOW],
    }),
    logger: logs.logger,
    now: () => clock,
    flushEveryMs: null,
  });
  for (let tickAt = FIRST_TICK; tickAt <= LAST_TICK; tickAt += STEP) {
    // The platform keeps writing between ticks; the tick sees the rows as they are at its time.
    for (let t = Math.max(TRAFFIC_FROM, tickAt - STEP) + FLUSH_EVERY; t <= tickAt; t += FLUSH_EVERY) {
      clock = t;
      await writer.flush();
    }
    const counts = writer.counts();
    ticks.push({ tickAt, result: await runPaymentHealthTick(ctx, tickAt), writer: counts });
  }
  // The history as it is stored once every outcome is known: the rows the backtest reads.
  clock = TRAFFIC_TO + 10 * MINUTE;
  final = await writer.stop();

  backtest = await backtestPaymentHealth({
    platformDb: ctx.platformDb,
    schema: ctx.platformSchema,
    settings,
    fromMs: FIRST_TICK,
    toMs: LAST_TICK,
    stepMs: STEP,
    warmupMs: 0,
    // The live run started from nothing at FIRST_TICK. Without a stored state the backtest
    // stretches its warm-up to a baseline half-life (6 h before FIRST_TICK); an empty stored
    // state is the only way to start it exactly at FIRST_TICK from the same empty state.
    storedState: initialPaymentHealthState(),
  });
}, 150_000);

afterAll(async () => {
  await ctx?.close();
  await redisPrefix?.cleanup();
  await db?.drop();
});

describe('live ticks while rows are updated in place, then a backtest of the stored history', () => {
  it('every live tick was evaluated, while the rows it read were still being updated', () => {
    expect(ticks.length).toBe((LAST_TICK - FIRST_TICK) / STEP + 1);
    for (const t of ticks) {
      expect(t.result.outcome, `${new Date(t.tickAt).toISOString()} ${t.result.detail ?? ''}`).toBe(
        'evaluated',
      );
      expect(t.result.skippedRows).toBe(0);
      // Rows inserted but not final yet at the tick: in flight, and stuck for good.
      expect(t.writer.pending).toBeGreaterThan(0);
    }
    expect(ticks[ticks.length - 1]!.writer.finished).toBeGreaterThan(20_000);
    expect(final).toMatchObject({ errors: 0, dropped: 0 });
    // Once complete, only the attempts that never finish are left pending.
    expect(final.pending).toBeGreaterThan(0);
    expect(final.pending).toBeLessThan(final.inserted / 100);
  });

  it('the live ticks open and resolve the outage and the slow confirmations', async () => {
    const live = await liveIncidents();
    const outage = live.filter((i) => i.subject.channel === 'alipay' && i.kind === 'failures');
    expect(outage).toHaveLength(1);
    expect(outage[0]!.openedAt).toBeGreaterThan(OUTAGE.from);
    expect(outage[0]!.openedAt).toBeLessThanOrEqual(OUTAGE.from + 90 * SECOND);
    expect(outage[0]!.resolvedAt).toBeGreaterThan(OUTAGE.to);
    expect(outage[0]!.resolveReason).toBe('recovered');
    const slow = live.filter((i) => i.subject.channel === 'wechat_pay' && i.kind === 'slow');
    expect(slow).toHaveLength(1);
    expect(slow[0]!.openedAt).toBeGreaterThan(SLOW.from);
    expect(slow[0]!.openedAt).toBeLessThanOrEqual(SLOW.from + 2 * MINUTE);
    expect(slow[0]!.resolvedAt).toBeGreaterThan(SLOW.to);
    expect(slow[0]!.resolveReason).toBe('recovered');
    // Nothing else happened to the other pairs.
    for (const i of live) expect(['alipay', 'wechat_pay']).toContain(i.subject.channel);
  });

  it('the backtest ran the same ticks from the same empty state, over every stored attempt', async () => {
    expect(backtest.warmupMs).toBe(0);
    expect(backtest.ticks).toBe(ticks.length);
    expect(backtest.skippedRows).toBe(0);
    // Every attempt the first tick can see (a window and a settled slice before it) and after.
    const { windowMs, settleMs } = lookback(settings);
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM platform.payment_attempts WHERE created_at >= $1 AND created_at < $2',
      [new Date(FIRST_TICK - settleMs - windowMs), new Date(LAST_TICK)],
    );
    expect(rows[0]!.n).toBeGreaterThan(20_000);
    expect(backtest.attemptsRead).toBe(rows[0]!.n);
  });

  it('the backtest opens and resolves the same incidents at the same ticks, with the same evidence', async () => {
    const live = await liveIncidents();
    expect(live.length).toBeGreaterThanOrEqual(2);
    const replayed = backtestIncidents(backtest);
    const brief = (list: Incident[]) =>
      list.map((i) => ({
        subject: i.subject,
        kind: i.kind,
        openedAt: new Date(i.openedAt).toISOString(),
        resolvedAt: i.resolvedAt === null ? null : new Date(i.resolvedAt).toISOString(),
        resolveReason: i.resolveReason,
      }));
    expect(brief(replayed)).toEqual(brief(live));
    expect(replayed).toEqual(live);
    // And the live ticks reported those changes at those ticks.
    const changes = ticks.flatMap((t) =>
      t.result.changes.map((c) => `${c.type} ${c.subject.channel}:${c.subject.region} ${c.kind} ${c.at}`),
    );
    const expected = live.flatMap((i) => [
      { at: i.openedAt, line: `opened ${i.subject.channel}:${i.subject.region} ${i.kind} ${i.openedAt}` },
      ...(i.resolvedAt === null
        ? []
        : [
            {
              at: i.resolvedAt,
              line: `resolved ${i.subject.channel}:${i.subject.region} ${i.kind} ${i.resolvedAt}`,
            },
          ]),
    ]);
    expect([...changes].sort()).toEqual(expected.map((e) => e.line).sort());
  });

  it('a replay of the stored history ends in the state the live ticks stored', async () => {
    const { rows } = await db.pool.query<{ evaluated_at: Date }>(
      `SELECT evaluated_at FROM forewarn.detector_state WHERE detector = 'payment-health'`,
    );
    expect(rows[0]!.evaluated_at.getTime()).toBe(LAST_TICK);
    const attempts: ObservedAttempt[] = [];
    const client = await db.pool.connect();
    try {
      const from = FIRST_TICK - lookback(settings).settleMs - lookback(settings).windowMs;
      for await (const a of streamAttempts(client, PLATFORM_SCHEMA, from, LAST_TICK)) attempts.push(a);
    } finally {
      client.release();
    }
    const { channels } = await readPaymentChannels(db.pool, PLATFORM_SCHEMA);
    const replay = replayPaymentHealth(attempts, {
      channels,
      settings,
      firstTick: FIRST_TICK,
      lastTick: LAST_TICK,
      stepMs: STEP,
    });
    expect(replay.ticks).toBe(ticks.length);
    expect(replay.state).toEqual(await paymentHealth.readStoredState(db.pool));
  });
});
