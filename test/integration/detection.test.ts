// The live payment-health pass (lib/detection/payment-health-tick.ts) against a simulated
// platform in PostgreSQL: a hard outage of alipay in CN-GD, ticked every 15 s of simulated time
// across the outage and the recovery, must open exactly one incident and resolve it once, with
// its outbox events, state and run records; stale ticks and dry runs change nothing; rows that
// break the platform contract are skipped, counted and logged once each.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentChange, PaymentHealthState } from '../../detectors/payment-health/index.ts';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext, type AppContext } from '../../lib/context.ts';
import {
  paymentHealth,
  runPaymentHealthTick,
  type TickResult,
} from '../../lib/detection/payment-health-tick.ts';
import { readEnv } from '../../lib/env.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts } from '../../sim/traffic.ts';
import {
  badAttempts,
  forewarnCounts,
  insertRawAttempts,
  loadPlatform,
  type BadAttempt,
  type ForewarnCounts,
} from '../support/platform.ts';
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
// 20:00 in Beijing, the busiest hour: alipay CN-GD sees ~30 attempts every 5 seconds.
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const OUTAGE_END = OUTAGE_START + 3 * MINUTE;
// The detector looks back an hour: 70 minutes of history give the first tick a full window.
const TRAFFIC_FROM = OUTAGE_START - 70 * MINUTE;
const TRAFFIC_TO = OUTAGE_END + 10 * MINUTE;
const FIRST_TICK = OUTAGE_START - 30 * SECOND;
// Healthy again ~30 s after the outage, resolved 2 minutes later: a minute to spare.
const LAST_TICK = OUTAGE_END + 4 * MINUTE;
const REGION = 'CN-GD';

/**
 * Ticks that also get a dry run first (a tick reads an hour of attempts, so not all of them): the
 * very first, which finds no state, and those around the expected opening and resolution.
 */
function dryRunAlso(tickAt: number): boolean {
  return (
    tickAt === FIRST_TICK ||
    (tickAt >= OUTAGE_START + 30 * SECOND && tickAt <= OUTAGE_START + 2 * MINUTE) ||
    tickAt >= OUTAGE_END + 90 * SECOND
  );
}

interface Snapshot {
  counts: ForewarnCounts;
  state: Array<{ evaluated_at: Date | null; state: string }>;
  subjects: Array<{ detector: string; subject_key: string; state: string }>;
}

interface TickRecord {
  tickAt: number;
  real: TickResult;
  /** State and counts before the real run. */
  before: Snapshot;
  /** Lines with code FW_PLATFORM_ROW_INVALID logged so far, after the real run. */
  invalidLogLines: number;
  dry?: {
    result: TickResult;
    before: Snapshot;
    after: Snapshot;
    invalidLogLines: number;
  };
}

let db: TestDatabase;
let redisPrefix: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let ctx: AppContext;
let logs: ReturnType<typeof captureLogs>;
/** Rows breaking the contract: in the first tick's hour, and created while later ticks run. */
let bad: BadAttempt[];
let lateBad: BadAttempt[];
const LATE_BAD_AT = OUTAGE_START + 60 * SECOND;
const SETTLE = 300 * SECOND;
const ticks: TickRecord[] = [];

async function snapshot(): Promise<Snapshot> {
  const counts = await forewarnCounts(db.pool);
  const { rows } = await db.pool.query<{ evaluated_at: Date | null; state: string }>(
    'SELECT evaluated_at, state::text AS state FROM forewarn.detector_state ORDER BY detector',
  );
  const subjects = await db.pool.query<{ detector: string; subject_key: string; state: string }>(
    'SELECT detector, subject_key, state::text AS state FROM forewarn.subject_state ORDER BY detector, subject_key',
  );
  return { counts, state: rows, subjects: subjects.rows };
}

function invalidRowLines(): Array<Record<string, unknown>> {
  return logs.lines().filter((l) => l.code === 'FW_PLATFORM_ROW_INVALID');
}

beforeAll(async () => {
  // Only CN-GD's pairs: what an outage there and its backups need, and a fraction of the volume.
  const platform = referencePlatform();
  const local = { ...platform, pairs: platform.pairs.filter((p) => p.region === REGION) };
  const users = generateUsers(2_000, 11, { platform });
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform: local,
    users,
    attempts: generateAttempts({
      platform: local,
      from: TRAFFIC_FROM,
      to: TRAFFIC_TO,
      seed: 2026,
      users,
      scenarios: [
        { channel: 'alipay', region: REGION, from: OUTAGE_START, to: OUTAGE_END, effect: { type: 'outage' } },
      ],
    }),
  });
  bad = badAttempts({
    firstId: 900_000_001,
    createdAt: OUTAGE_START - 30 * MINUTE,
    channel: 'alipay',
    region: REGION,
    userId: users[0]!.id,
  });
  lateBad = badAttempts({
    firstId: 900_000_101,
    createdAt: LATE_BAD_AT,
    channel: 'alipay',
    region: REGION,
    userId: users[1]!.id,
  });
  await insertRawAttempts(db.pool, [...bad, ...lateBad]);

  redisPrefix = await createTestRedisPrefix();
  logs = captureLogs('info');
  const env = readEnv({
    DATABASE_URL: db.url,
    REDIS_URL,
    FOREWARN_QUEUE_PREFIX: redisPrefix.prefix,
    FOREWARN_CONFIG: SHIPPED,
    LOG_LEVEL: 'info',
  });
  ctx = await createContext(env, await ConfigStore.open(SHIPPED, logs.logger), logs.logger);

  for (let tickAt = FIRST_TICK; tickAt <= LAST_TICK; tickAt += STEP) {
    let dry: TickRecord['dry'];
    if (dryRunAlso(tickAt)) {
      const before = await snapshot();
      const result = await runPaymentHealthTick(ctx, tickAt, { dryRun: true });
      dry = { result, before, after: await snapshot(), invalidLogLines: invalidRowLines().length };
    }
    const before = await snapshot();
    const real = await runPaymentHealthTick(ctx, tickAt);
    ticks.push({ tickAt, real, before, invalidLogLines: invalidRowLines().length, ...(dry ? { dry } : {}) });
  }
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await redisPrefix?.cleanup();
  await db?.drop();
});

interface IncidentRecord {
  id: string;
  detector: string;
  subject_key: string;
  subject: { channel: string; region: string };
  kind: string;
  opened_at: Date;
  resolved_at: Date | null;
  open_evidence: Record<string, unknown>;
  resolve_evidence: Record<string, unknown> | null;
  backup_channels: string[];
}

async function incidents(): Promise<IncidentRecord[]> {
  const { rows } = await db.pool.query<IncidentRecord>('SELECT * FROM forewarn.incidents ORDER BY id');
  return rows;
}

function expectEvidenceNumbers(evidence: Record<string, unknown> | null): void {
  expect(evidence).not.toBeNull();
  for (const key of ['windowSeconds', 'attempts', 'bad', 'rate', 'lowerBound', 'upperBound', 'baseline']) {
    expect(typeof evidence![key], key).toBe('number');
    expect(Number.isFinite(evidence![key]), key).toBe(true);
  }
  expect(evidence!.threshold).toEqual(expect.any(Number));
  // The shortest window's 0.9999, lower for a longer window of many attempts (windowConfidence).
  expect(evidence!.confidence).toBeGreaterThanOrEqual(0.99);
  expect(evidence!.confidence).toBeLessThanOrEqual(0.9999);
}

describe('payment-health ticks across an outage of alipay in CN-GD', () => {
  it('every tick evaluated', () => {
    expect(ticks.length).toBe((LAST_TICK - FIRST_TICK) / STEP + 1);
    for (const t of ticks) {
      expect(t.real.outcome, new Date(t.tickAt).toISOString()).toBe('evaluated');
      expect(t.real.tickAt).toBe(t.tickAt);
    }
  });

  it('opens exactly one incident: failures of alipay CN-GD, within 90 s of the outage start', async () => {
    const all = await incidents();
    expect(all).toHaveLength(1);
    const incident = all[0]!;
    expect(incident.detector).toBe('payment-health');
    expect(incident.kind).toBe('failures');
    expect(incident.subject).toEqual({ channel: 'alipay', region: REGION });
    expect(incident.subject_key).toBe(`alipay:${REGION}`);
    const delay = incident.opened_at.getTime() - OUTAGE_START;
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(90 * SECOND);

    expectEvidenceNumbers(incident.open_evidence);
    const e = incident.open_evidence as Record<string, number>;
    expect(e.attempts).toBeGreaterThan(0);
    expect(e.bad).toBeGreaterThan(0);
    expect(e.bad).toBeLessThanOrEqual(e.attempts!);
    expect(e.rate).toBeCloseTo(e.bad! / e.attempts!, 3);
    expect(e.lowerBound).toBeGreaterThan(e.threshold!);
    expect(e.baseline).toBeLessThan(e.threshold!);

    // The tick that opened it says so, and only that tick opened anything.
    const opened = ticks.flatMap((t) => t.real.changes.filter((c) => c.type === 'opened'));
    expect(opened).toHaveLength(1);
    expect(opened[0]!.at).toBe(incident.opened_at.getTime());
  });

  it('names backups that are enabled, offered in CN-GD and not alipay; never paypal', async () => {
    const [incident] = await incidents();
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM platform.payment_channels
        WHERE enabled AND ('*' = ANY (regions) OR $1 = ANY (regions)) AND id <> 'alipay'`,
      [REGION],
    );
    const allowed = rows.map((r) => r.id);
    expect(allowed).not.toContain('paypal');
    const backups = incident!.backup_channels;
    expect(backups.length).toBeGreaterThanOrEqual(1);
    expect(backups.length).toBeLessThanOrEqual(3);
    expect(new Set(backups).size).toBe(backups.length);
    for (const id of backups) expect(allowed).toContain(id);
    expect(backups).not.toContain('alipay');
    expect(backups).not.toContain('paypal');
  });

  it('resolves it once after the outage ends, with exactly two outbox events', async () => {
    const [incident] = await incidents();
    expect(incident!.resolved_at).not.toBeNull();
    const resolvedAt = incident!.resolved_at!.getTime();
    expect(resolvedAt).toBeGreaterThan(OUTAGE_END);
    expect(resolvedAt).toBeLessThanOrEqual(OUTAGE_END + 5 * MINUTE);
    expectEvidenceNumbers(incident!.resolve_evidence);
    const resolved = ticks.flatMap((t) => t.real.changes.filter((c) => c.type === 'resolved'));
    expect(resolved).toHaveLength(1);
    expect(resolved[0]!.at).toBe(resolvedAt);

    const { rows: events } = await db.pool.query<{
      incident_id: string;
      type: string;
      occurred_at: Date;
      payload: IncidentChange & { incidentId: string };
      dispatched_at: Date | null;
    }>(
      'SELECT incident_id, type, occurred_at, payload, dispatched_at FROM forewarn.incident_events ORDER BY id',
    );
    expect(events.map((e) => e.type)).toEqual(['opened', 'resolved']);
    for (const event of events) {
      expect(event.incident_id).toBe(incident!.id);
      expect(event.payload.incidentId).toBe(incident!.id);
      expect(event.payload.subject).toEqual({ channel: 'alipay', region: REGION });
      expect(event.dispatched_at).toBeNull();
    }
    expect(events[0]!.occurred_at.getTime()).toBe(incident!.opened_at.getTime());
    expect(events[0]!.payload.backupChannels).toEqual(incident!.backup_channels);
    expect(events[1]!.occurred_at.getTime()).toBe(resolvedAt);
  });

  it('advances detector_state and records one evaluated run per tick', async () => {
    const { rows: state } = await db.pool.query<{ detector: string; evaluated_at: Date }>(
      'SELECT detector, evaluated_at FROM forewarn.detector_state',
    );
    expect(state).toEqual([{ detector: 'payment-health', evaluated_at: new Date(LAST_TICK) }]);
    const { rows: runs } = await db.pool.query<{ tick_at: Date; changes: number; skipped_rows: number }>(
      `SELECT tick_at, changes, skipped_rows FROM forewarn.detector_runs
        WHERE detector = 'payment-health' AND outcome = 'evaluated' ORDER BY id`,
    );
    expect(runs.map((r) => r.tick_at.getTime())).toEqual(ticks.map((t) => t.tickAt));
    expect(runs.reduce((sum, r) => sum + r.changes, 0)).toBe(2);
    // No state before the first tick; then each tick finds the previous one's.
    const evaluatedAt = ticks.map((t) => t.before.state[0]?.evaluated_at?.getTime() ?? null);
    expect(evaluatedAt).toEqual([null, ...ticks.slice(0, -1).map((t) => t.tickAt)]);
  });

  it('a dry run computes what the real tick does and writes nothing', () => {
    const dryRun = ticks.filter((t) => t.dry);
    expect(dryRun.length).toBeGreaterThan(10);
    expect(dryRun[0]!.tickAt).toBe(FIRST_TICK);
    // The first dry run found no state: the row it had to create was rolled back too.
    expect(dryRun[0]!.dry!.before.counts.detector_state).toBe(0);
    for (const t of dryRun) {
      const at = new Date(t.tickAt).toISOString();
      expect(t.dry!.result.outcome, at).toBe('evaluated');
      expect(t.dry!.result.changes, at).toEqual(t.real.changes);
      expect(t.dry!.after, at).toEqual(t.dry!.before);
      expect(t.before, at).toEqual(t.dry!.after);
    }
    // The dry runs saw the opening and the resolution too, and left them to the real ticks.
    expect(dryRun.flatMap((t) => t.dry!.result.changes.map((c) => c.type))).toEqual(['opened', 'resolved']);
  });

  /**
   * Bad rows a tick counts: it checks what it reads as it stands now, from the last tick's settled
   * part on (older rows were checked then); the first tick, with nothing stored, its whole hour.
   */
  const expectedSkipped = (i: number): number => {
    const now = ticks[i]!.tickAt;
    const from = i === 0 ? now - 60 * MINUTE : ticks[i - 1]!.tickAt - SETTLE;
    return bad.length * (i === 0 ? 1 : 0) + (LATE_BAD_AT >= from && LATE_BAD_AT < now ? lateBad.length : 0);
  };

  it('skips rows that break the platform contract: counted by the ticks that read them, each id logged once', () => {
    ticks.forEach((t, i) => {
      expect(t.real.skippedRows, new Date(t.tickAt).toISOString()).toBe(expectedSkipped(i));
      if (t.dry) expect(t.dry.result.skippedRows).toBe(expectedSkipped(i));
    });
    // The late rows are checked by every tick whose recent part holds them, not once only.
    expect(ticks.filter((_, i) => expectedSkipped(i) === lateBad.length).length).toBeGreaterThan(10);
    // All are logged by the first run that saw them; no later run logs an id again.
    expect(ticks[0]!.dry!.invalidLogLines).toBe(bad.length);
    const lateFirst = ticks.findIndex((t) => t.tickAt > LATE_BAD_AT);
    for (const [i, t] of ticks.entries())
      expect(t.invalidLogLines).toBe(bad.length + (i >= lateFirst ? lateBad.length : 0));

    const lines = invalidRowLines();
    for (const row of [...bad, ...lateBad]) {
      const mine = lines.filter((l) => l.rowId === String(row.id));
      expect(mine, `row ${row.id}`).toHaveLength(1);
      expect(mine[0]!.level).toBe('warn');
      expect(mine[0]!.table).toBe('payment_attempts');
      expect(String(mine[0]!.reason)).toMatch(row.reason);
      expect(String(mine[0]!.msg)).toContain(String(row.id));
    }
  });

  it('records skipped rows in detector_runs', async () => {
    const { rows } = await db.pool.query<{ tick_at: Date; skipped_rows: number }>(
      "SELECT tick_at, skipped_rows FROM forewarn.detector_runs WHERE outcome = 'evaluated' ORDER BY tick_at",
    );
    expect(rows.map((r) => r.skipped_rows)).toEqual(ticks.map((_, i) => expectedSkipped(i)));
  });
});

describe('ticks that are not newer than the state', () => {
  it('are recorded as stale and change nothing', async () => {
    for (const tickAt of [LAST_TICK, LAST_TICK - STEP, FIRST_TICK]) {
      const before = await snapshot();
      const incidentsBefore = await incidents();
      const result = await runPaymentHealthTick(ctx, tickAt);
      expect(result.outcome).toBe('stale');
      expect(result.changes).toEqual([]);
      expect(result.findings).toBeNull();
      const after = await snapshot();
      expect(after.state).toEqual(before.state);
      expect(after.counts).toEqual({ ...before.counts, detector_runs: before.counts.detector_runs + 1 });
      expect(await incidents()).toEqual(incidentsBefore);
      const { rows } = await db.pool.query<{ tick_at: Date; outcome: string; changes: number }>(
        'SELECT tick_at, outcome, changes FROM forewarn.detector_runs ORDER BY id DESC LIMIT 1',
      );
      expect(rows).toEqual([{ tick_at: new Date(tickAt), outcome: 'stale', changes: 0 }]);
    }
  });

  it('a dry run of a newer tick writes nothing either', async () => {
    const before = await snapshot();
    const result = await runPaymentHealthTick(ctx, LAST_TICK + STEP, { dryRun: true });
    expect(result.outcome).toBe('evaluated');
    expect(await snapshot()).toEqual(before);
  });
});

describe('replicas taking turns', () => {
  it('a process reuses the state it saved only while no other replica has saved since', async () => {
    const env = readEnv({
      DATABASE_URL: db.url,
      REDIS_URL,
      FOREWARN_QUEUE_PREFIX: redisPrefix.prefix,
      FOREWARN_CONFIG: SHIPPED,
      LOG_LEVEL: 'info',
    });
    const other = await createContext(env, await ConfigStore.open(SHIPPED, logs.logger), logs.logger);
    try {
      const first = LAST_TICK + 2 * STEP;
      expect((await runPaymentHealthTick(ctx, first)).outcome).toBe('evaluated');
      expect((await runPaymentHealthTick(other, first + STEP)).outcome).toBe('evaluated');
      // What `ctx` remembers is a tick behind the row: it must read the other replica's state.
      expect((await runPaymentHealthTick(ctx, first + STEP)).outcome).toBe('stale');
      const next = await runPaymentHealthTick(ctx, first + 2 * STEP);
      expect(next.outcome).toBe('evaluated');
      const { rows } = await db.pool.query<{ evaluated_at: Date }>(
        'SELECT evaluated_at FROM forewarn.detector_state',
      );
      expect(rows[0]!.evaluated_at).toEqual(new Date(first + 2 * STEP));
      expect(await paymentHealth.readStoredState(db.pool)).toEqual(
        JSON.parse(JSON.stringify(next.findings!.state)),
      );
    } finally {
      await other.close();
    }
  });
});

describe('the clock of a tick', () => {
  it('a tick ahead of the platform database’s clock beyond maxClockSkewSeconds is refused, recorded and changes nothing', async () => {
    const before = await snapshot();
    const ahead = Date.now() + 5 * MINUTE;
    const result = await runPaymentHealthTick(ctx, ahead);
    expect(result.outcome).toBe('refused');
    expect(result.detail).toMatch(/ahead of the platform database's clock/);
    expect(result.detail).toMatch(/maxClockSkewSeconds/);
    const after = await snapshot();
    expect(after.state).toEqual(before.state);
    expect(after.counts).toEqual({ ...before.counts, detector_runs: before.counts.detector_runs + 1 });
    const { rows } = await db.pool.query<{ outcome: string; detail: string }>(
      'SELECT outcome, detail FROM forewarn.detector_runs ORDER BY id DESC LIMIT 1',
    );
    expect(rows[0]).toEqual({ outcome: 'refused', detail: result.detail });
    expect(logs.lines().some((l) => l.code === 'FW_CLOCK_SKEW')).toBe(true);
  });

  it('a dry run may look at a future time, and writes nothing', async () => {
    const before = await snapshot();
    const result = await runPaymentHealthTick(ctx, Date.now() + 5 * MINUTE, { dryRun: true });
    expect(result.outcome).toBe('evaluated');
    expect(await snapshot()).toEqual(before);
  });
});

describe('one pair that cannot be recorded', () => {
  let pairDb: TestDatabase;
  let pairCtx: AppContext;
  let pairLogs: ReturnType<typeof captureLogs>;
  let pairRedis: Awaited<ReturnType<typeof createTestRedisPrefix>>;
  const results: TickResult[] = [];

  beforeAll(async () => {
    const platform = referencePlatform();
    const local = { ...platform, pairs: platform.pairs.filter((p) => p.region === REGION) };
    const users = generateUsers(2_000, 11, { platform });
    pairDb = await createTestDatabase();
    await loadPlatform(pairDb.pool, {
      platform: local,
      users,
      attempts: generateAttempts({
        platform: local,
        from: OUTAGE_START - 20 * MINUTE,
        to: OUTAGE_START + 3 * MINUTE,
        seed: 7,
        users,
        scenarios: ['alipay', 'wechat_pay'].map((channel) => ({
          channel,
          region: REGION,
          from: OUTAGE_START,
          to: OUTAGE_START + 3 * MINUTE,
          effect: { type: 'outage' as const },
        })),
      }),
    });
    // An open wechat_pay incident that the detector does not know of: opening another breaks
    // the one-open-incident rule, so recording wechat_pay's change fails.
    await pairDb.pool.query(
      `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence)
       VALUES ('payment-health', 'wechat_pay:CN-GD', '{"channel":"wechat_pay","region":"CN-GD"}', 'failures', $1, '{}')`,
      [new Date(OUTAGE_START - 10 * MINUTE)],
    );
    pairRedis = await createTestRedisPrefix();
    pairLogs = captureLogs('info');
    const env = readEnv({
      DATABASE_URL: pairDb.url,
      REDIS_URL,
      FOREWARN_QUEUE_PREFIX: pairRedis.prefix,
      FOREWARN_CONFIG: SHIPPED,
      LOG_LEVEL: 'info',
    });
    pairCtx = await createContext(env, await ConfigStore.open(SHIPPED, pairLogs.logger), pairLogs.logger);
    for (let tickAt = OUTAGE_START - 30 * SECOND; tickAt <= OUTAGE_START + 2 * MINUTE; tickAt += STEP)
      results.push(await runPaymentHealthTick(pairCtx, tickAt));
  }, 120_000);

  afterAll(async () => {
    await pairCtx?.close();
    await pairRedis?.cleanup();
    await pairDb?.drop();
  });

  it('is logged with its subject, keeps its previous state, and the other pairs are recorded', async () => {
    expect(results.every((r) => r.outcome === 'evaluated')).toBe(true);
    const { rows } = await pairDb.pool.query<{ subject_key: string; resolved_at: Date | null }>(
      `SELECT subject_key, resolved_at FROM forewarn.incidents ORDER BY id`,
    );
    expect(rows.map((r) => r.subject_key)).toEqual(['wechat_pay:CN-GD', 'alipay:CN-GD']);
    const failed = results.filter((r) => r.failedSubjects.length > 0);
    expect(failed.length).toBeGreaterThan(0);
    for (const r of failed) expect(r.failedSubjects).toEqual(['wechat_pay:CN-GD']);
    const errors = pairLogs
      .lines()
      .filter((l) => l.msg?.toString().startsWith('could not record a cause change'));
    expect(errors.length).toBe(failed.length);
    expect(errors[0]).toMatchObject({
      channel: 'wechat_pay',
      region: REGION,
      change: 'opened',
      level: 'error',
    });
    // Tried again at every later tick: the pair's state was kept, so it is still opening.
    const last = results[results.length - 1]!;
    expect(last.failedSubjects).toEqual(['wechat_pay:CN-GD']);
    const state = (await paymentHealth.readStoredState(pairDb.pool)) as PaymentHealthState;
    expect(state.pairs['wechat_pay:CN-GD']!.kinds.failures.open).toBeNull();
    expect(state.pairs['alipay:CN-GD']!.kinds.failures.open).not.toBeNull();
  });
});

describe('a data feed that stalls', () => {
  const silentAt = LAST_TICK + 40 * MINUTE;

  async function feedNotifications() {
    const { rows } = await db.pool.query<{
      kind: string;
      audience: string;
      address: string;
      data: Record<string, unknown>;
    }>(
      `SELECT kind, audience, address, data FROM forewarn.notifications WHERE kind = 'ops-feed-silent' ORDER BY id`,
    );
    return rows;
  }

  it('when every pair goes silent at once: one ops alert per address, in the tick’s transaction, and no per-pair resolutions', async () => {
    const result = await runPaymentHealthTick(ctx, silentAt);
    expect(result.outcome).toBe('evaluated');
    expect(result.findings!.feed).toMatchObject({
      silent: true,
      started: true,
      seenPairs: 6,
      silentPairs: 6,
    });
    expect(result.changes).toEqual([]);
    const alerts = await feedNotifications();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ audience: 'ops', address: 'ops@example.com' });
    expect(alerts[0]!.data).toMatchObject({ state: 'silent', silentPairs: 6, seenPairs: 6, resumedAt: null });
    expect(result.opsNotificationIds).toHaveLength(1);
    expect(logs.lines().filter((l) => l.code === 'FW_FEED_SILENT')).toHaveLength(1);

    // Still silent a tick later: nothing more.
    const again = await runPaymentHealthTick(ctx, silentAt + STEP);
    expect(again.findings!.feed).toMatchObject({ silent: true, started: false });
    expect(await feedNotifications()).toHaveLength(1);
  });

  it('when attempts arrive again: one "resumed" alert', async () => {
    const at = silentAt + 2 * MINUTE;
    const channels = ['alipay', 'wechat_pay', 'unionpay', 'bank_card', 'jd_pay', 'qq_wallet'];
    const rows = channels.flatMap((channel, c) =>
      Array.from({ length: 3 }, (_, i) => ({
        id: 950_000_000 + c * 10 + i,
        userId: `u-feed-${i}`,
        channelId: channel,
        region: REGION,
        status: 'succeeded',
        errorCode: null,
        latencyMs: 800,
        createdAt: at - 20_000 + i * 1_000,
        finishedAt: at - 20_000 + i * 1_000 + 800,
      })),
    );
    await insertRawAttempts(db.pool, rows);
    const result = await runPaymentHealthTick(ctx, at);
    expect(result.findings!.feed).toMatchObject({ silent: false, ended: true });
    const alerts = await feedNotifications();
    expect(alerts.map((a) => a.data.state)).toEqual(['silent', 'resumed']);
    expect(alerts[1]!.data.resumedAt).toBe(new Date(at).toISOString());
  });
});
