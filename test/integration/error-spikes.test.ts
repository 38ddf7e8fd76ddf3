// The live error-spikes pass (lib/detection/error-spikes-tick.ts) on a platform schema in
// PostgreSQL: real ticks over inserted attempts open a count incident for a rare code at its
// 10th occurrence (a row written pending and updated in place to its error), a surge incident for
// a one-hour burst of a code with a steady baseline and resolve it afterwards, and nothing for a
// steady high-volume code; each change with its outbox event; dry runs write nothing; rows that
// break the contract are skipped, never counted, and logged once each with their id. The same
// rows through the in-memory model of the reader (test/support/error-spikes.ts) say the same.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE, WEEK, DAY, type CodeCounts } from '../../detectors/error-spikes/index.ts';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext, type AppContext } from '../../lib/context.ts';
import { runErrorSpikesTick, type TickResult } from '../../lib/detection/error-spikes-tick.ts';
import { readEnv } from '../../lib/env.ts';
import type { CauseEvent } from '../../lib/messages/kind.ts';
import { opsErrorSpike, type ErrorSpikePayload } from '../../lib/messages/error-spikes.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { failure, seeded, SpikeHarness, type SpikeAttempt } from '../support/error-spikes.ts';
import {
  badAttempts,
  forewarnCounts,
  insertRawAttempts,
  PLATFORM_SCHEMA,
  type RawAttempt,
} from '../support/platform.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';
import { linkKeyring } from '../../lib/links.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
// Monday 2 March 2026, 12:00 UTC.
const T0 = Date.UTC(2026, 2, 2, 12, 0);
const SURGE_AT = T0 + HOUR;
const LAST_TICK = T0 + 3 * HOUR;
/** The rare code's 10th: written pending at T0 + 2 min, failed at T0 + 4 min (updated in place). */
const TENTH_ID = 500_000;
const TENTH_AT = T0 + 2 * MINUTE;
const TENTH_FAILS_AT = T0 + 4 * MINUTE;

/** A Poisson stream of `code` at `perHour`, ids from `firstId`. */
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
  for (
    let t = from - (Math.log(1 - random()) * HOUR) / perHour;
    t < to;
    t -= (Math.log(1 - random()) * HOUR) / perHour
  )
    rows.push(
      failure(id++, code, Math.floor(t), {
        channel: random() < 0.7 ? 'alipay' : 'unionpay',
        region: random() < 0.5 ? 'CN-GD' : 'CN-SH',
      }),
    );
  return rows;
}

const rare: SpikeAttempt[] = Array.from({ length: 9 }, (_, i) =>
  failure(i + 1, 'E_RARE', T0 - 6 * DAY + i * 15 * HOUR, {
    channel: i < 6 ? 'unionpay' : 'alipay',
    region: 'CN-BJ',
  }),
);
const steadyRows = steady('INSUFFICIENT_BALANCE', 20, T0 - 5 * WEEK - DAY, LAST_TICK, 1, 1_000_000);
const bankRows = [
  ...steady('BANK_DECLINED', 2, T0 - 5 * WEEK - DAY, LAST_TICK, 2, 2_000_000),
  ...Array.from({ length: 40 }, (_, i) =>
    failure(3_000_000 + i, 'BANK_DECLINED', SURGE_AT + i * 45_000, {
      channel: 'wechat_pay',
      region: 'CN-ZJ',
    }),
  ),
];
/** Rows breaking the contract, all with the rare code: counted, they would open its incident early. */
const bad = badAttempts({
  firstId: 900_000_001,
  createdAt: T0 - HOUR,
  channel: 'alipay',
  region: 'CN-BJ',
  userId: 'u1',
}).map((b) => ({ ...b, errorCode: 'E_RARE', status: b.status === 'refunded' ? b.status : 'failed' }));

function raw(a: SpikeAttempt): RawAttempt {
  return {
    id: a.id,
    userId: `u${a.id % 97}`,
    channelId: a.channel,
    region: a.region,
    status: a.status,
    errorCode: a.code,
    latencyMs: null,
    createdAt: a.createdAt,
    finishedAt: a.finishedAt,
  };
}

let db: TestDatabase;
let redisPrefix: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let ctx: AppContext;
let logs: ReturnType<typeof captureLogs>;
const ticks: Array<{ at: number; result: TickResult }> = [];
let dryAtOpen: { result: TickResult; before: unknown; after: unknown } | undefined;

const TICKS = [
  T0,
  T0 + MINUTE,
  T0 + 2 * MINUTE,
  T0 + 3 * MINUTE,
  T0 + 5 * MINUTE,
  ...Array.from({ length: 35 }, (_, i) => T0 + (i + 2) * 5 * MINUTE),
];

async function snapshot() {
  const counts = await forewarnCounts(db.pool);
  const { rows } = await db.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM forewarn.subject_state',
  );
  return { ...counts, subjectStates: rows[0]!.n };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const client = await db.pool.connect();
  try {
    await createPlatformSchema(client, PLATFORM_SCHEMA);
    await client.query(
      `INSERT INTO platform.payment_channels (id, display_name, regions, enabled, priority) VALUES
         ('alipay', '支付宝', '{*}', true, 1), ('wechat_pay', '微信支付', '{*}', true, 2),
         ('unionpay', '云闪付', '{*}', true, 3)`,
    );
  } finally {
    client.release();
  }
  const rows = [...rare, ...steadyRows, ...bankRows].map(raw);
  for (let i = 0; i < rows.length; i += 5_000) await insertRawAttempts(db.pool, rows.slice(i, i + 5_000));
  await insertRawAttempts(db.pool, [
    ...bad,
    // The 10th, as the platform first writes it.
    { ...raw(failure(TENTH_ID, 'E_RARE', TENTH_AT)), status: 'pending', errorCode: null, finishedAt: null },
  ]);
  await db.pool.query('ANALYZE platform.payment_attempts');

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

  for (const at of TICKS) {
    if (at === TENTH_FAILS_AT + MINUTE) {
      // The platform finishes the 10th in place, with its error code.
      await db.pool.query(
        `UPDATE platform.payment_attempts SET status = 'failed', error_code = 'E_RARE', finished_at = $2 WHERE id = $1`,
        [TENTH_ID, new Date(TENTH_FAILS_AT)],
      );
      const before = await snapshot();
      const result = await runErrorSpikesTick(ctx, at, { dryRun: true });
      dryAtOpen = { result, before, after: await snapshot() };
    }
    ticks.push({ at, result: await runErrorSpikesTick(ctx, at) });
  }
}, 120_000);

afterAll(async () => {
  await ctx?.close();
  await redisPrefix?.cleanup();
  await db?.drop();
});

interface IncidentRow {
  id: string;
  detector: string;
  subject_key: string;
  subject: { code: string };
  kind: string;
  opened_at: Date;
  resolved_at: Date | null;
  open_evidence: Record<string, unknown>;
}

async function incidents(): Promise<IncidentRow[]> {
  const { rows } = await db.pool.query<IncidentRow>(
    'SELECT * FROM forewarn.incidents ORDER BY opened_at, id',
  );
  return rows;
}

describe('error-spikes ticks on a real platform schema', () => {
  it('evaluates every tick', () => {
    expect(ticks.map((t) => t.result.outcome)).toEqual(TICKS.map(() => 'evaluated'));
  });

  it('opens the rare code’s count incident when its 10th occurrence is final, not before (bad rows are not counted)', async () => {
    const opening = ticks.filter((t) => t.result.changes.some((c) => c.code === 'E_RARE'));
    expect(opening.map((t) => t.at)).toEqual([TENTH_FAILS_AT + MINUTE]);
    const [incident] = (await incidents()).filter((i) => i.subject_key === 'E_RARE');
    expect(incident).toMatchObject({
      detector: 'error-spikes',
      subject: { code: 'E_RARE' },
      kind: 'count',
      resolved_at: null,
    });
    expect(incident!.opened_at.getTime()).toBe(TENTH_FAILS_AT + MINUTE);
    expect(incident!.open_evidence).toMatchObject({
      countNow: 10,
      countBefore: 0,
      windowMinutes: 10080,
      openAt: 10,
      topChannels: [
        { channel: 'unionpay', count: 6 },
        { channel: 'alipay', count: 4 },
      ],
      // The 10th came from CN-GD (on alipay).
      topRegions: [
        { region: 'CN-BJ', count: 9 },
        { region: 'CN-GD', count: 1 },
      ],
      exampleAttemptIds: [String(TENTH_ID), '9', '8', '7', '6'],
    });
  });

  it('opens one surge for the burst and resolves it once the last hour is back at the baseline; nothing for the steady code', async () => {
    const all = await incidents();
    expect(all.map((i) => `${i.subject_key} ${i.kind} ${i.resolved_at ? 'resolved' : 'open'}`)).toEqual([
      'E_RARE count open',
      'BANK_DECLINED surge resolved',
    ]);
    const surge = all[1]!;
    expect(surge.opened_at.getTime()).toBeGreaterThan(SURGE_AT);
    expect(surge.opened_at.getTime()).toBeLessThanOrEqual(SURGE_AT + 25 * MINUTE);
    expect(surge.resolved_at!.getTime()).toBeGreaterThan(SURGE_AT + 30 * MINUTE);
    expect(surge.resolved_at!.getTime()).toBeLessThanOrEqual(SURGE_AT + 30 * MINUTE + HOUR + 5 * MINUTE);
    expect(surge.open_evidence).toMatchObject({ windowMinutes: 60 });
    expect((surge.open_evidence.topRegions as Array<{ region: string }>)[0]!.region).toBe('CN-ZJ');
    expect(all.some((i) => i.subject_key === 'INSUFFICIENT_BALANCE')).toBe(false);
  });

  it('writes one outbox event per change, carrying the code, the rule and the evidence', async () => {
    const { rows } = await db.pool.query<{
      incident_id: string;
      type: string;
      seq: number;
      payload: ErrorSpikePayload;
    }>(`SELECT e.incident_id, e.type, e.seq, e.payload FROM forewarn.incident_events e ORDER BY e.id`);
    expect(rows.map((r) => `${r.payload.code} ${r.payload.kind} ${r.type}`)).toEqual([
      'E_RARE count opened',
      'BANK_DECLINED surge opened',
      'BANK_DECLINED surge resolved',
    ]);
    const opened = rows[0]!.payload;
    expect(Object.keys(opened).sort()).toEqual(
      ['at', 'code', 'detector', 'evidence', 'incidentId', 'kind', 'subject', 'subjectKey', 'type'].sort(),
    );
    expect(opened).toMatchObject({
      detector: 'error-spikes',
      subjectKey: 'E_RARE',
      subject: { code: 'E_RARE' },
    });
    const resolved = rows[2]!.payload as unknown as Record<string, unknown>;
    expect(resolved).toMatchObject({ reason: 'calmed', openedAt: expect.any(Number) });

    // The ops alert's data for the opened event is what its templates accept.
    const event: CauseEvent<ErrorSpikePayload> = {
      eventId: '1',
      causeId: rows[0]!.incident_id,
      type: 'opened',
      seq: 0,
      payload: opened,
    };
    const messageCtx = { ...ctx, linkKeys: linkKeyring('test') };
    const data = opsErrorSpike.data(
      messageCtx,
      event,
      { userId: null, address: 'ops@example.com', locale: 'zh-CN' },
      undefined,
    );
    expect(templateKinds['ops-error-spike'].schema.parse(data)).toMatchObject({
      code: 'E_RARE',
      rule: 'count',
      countNow: 10,
      dashboardUrl: null,
    });
    const page = await opsErrorSpike.audience(
      messageCtx,
      event,
      { after: null, limit: 100, taken: 0 },
      undefined,
    );
    expect(page).toEqual({
      recipients: [{ userId: null, address: 'ops@example.com', locale: 'zh-CN', channels: ['email'] }],
      cursor: null,
    });
  });

  it('a dry run proposes the change and writes nothing', () => {
    expect(dryAtOpen!.result.changes.map((c) => `${c.type} ${c.kind} ${c.code}`)).toEqual([
      'opened count E_RARE',
    ]);
    expect(dryAtOpen!.after).toEqual(dryAtOpen!.before);
  });

  it('skips rows that break the contract, counts them and logs each id once', () => {
    expect(ticks[0]!.result.skippedRows).toBe(bad.length);
    const lines = logs
      .lines()
      .filter((l) => l.code === 'FW_PLATFORM_ROW_INVALID' && typeof l.rowId === 'string');
    expect(lines.map((l) => l.rowId).sort()).toEqual(bad.map((b) => String(b.id)).sort());
    for (const b of bad) {
      const line = lines.find((l) => l.rowId === String(b.id))!;
      expect(line.reason, String(b.id)).toMatch(b.reason);
    }
  });

  it('keeps each code’s counts in subject_state, small, and reads only new rows after the first tick', async () => {
    const { rows } = await db.pool.query<{ subject_key: string; state: CodeCounts; bytes: number }>(
      `SELECT subject_key, state, length(state::text) AS bytes FROM forewarn.subject_state WHERE detector = 'error-spikes' ORDER BY 1`,
    );
    expect(rows.map((r) => r.subject_key)).toEqual(['BANK_DECLINED', 'E_RARE', 'INSUFFICIENT_BALANCE']);
    for (const r of rows) expect(r.bytes, r.subject_key).toBeLessThan(12_000);
    const { rows: cache } = await db.pool.query<{ window_cache: { settledTo: number } }>(
      `SELECT window_cache FROM forewarn.detector_state WHERE detector = 'error-spikes'`,
    );
    expect(cache[0]!.window_cache.settledTo).toBe(LAST_TICK - 10 * MINUTE);
  });

  it('counts what the in-memory model of the reader counts over the same rows and ticks', () => {
    const model = new SpikeHarness();
    model.add(...rare, ...steadyRows, ...bankRows, {
      ...failure(TENTH_ID, 'E_RARE', TENTH_AT),
      finishedAt: TENTH_FAILS_AT,
    });
    for (const at of TICKS) model.tick(at);
    const summary = (a: NonNullable<TickResult['findings']>['assessments']) =>
      a.map((x) => [
        x.code,
        x.count.countNow,
        x.count.countBefore,
        x.surge.countNow,
        x.surge.countBefore,
        x.open,
      ]);
    expect(summary(ticks.at(-1)!.result.findings!.assessments)).toEqual(summary(model.last!.assessments));
    expect(model.changes.map((c) => `${c.at} ${c.type} ${c.kind} ${c.code}`)).toEqual(
      ticks.flatMap((t) => t.result.changes.map((c) => `${c.at} ${c.type} ${c.kind} ${c.code}`)),
    );
  });
});
