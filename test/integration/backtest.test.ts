// `forewarn backtest` as an operator runs it, over three hours of simulated history in a real
// PostgreSQL: a 10-minute outage of wechat_pay in CN-GD is reported once, with the documented
// shape; a 30-second blip of alipay there is not; JSON on stdout, progress and logs on stderr;
// nothing is written to forewarn's tables.
import { runForewarn } from '../support/cli.ts';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SECOND = 1_000;
const MINUTE = 60_000;
// 18:00-21:00 in Beijing: the evening rush.
const TRAFFIC_FROM = Date.UTC(2026, 2, 2, 10, 0);
const TRAFFIC_TO = Date.UTC(2026, 2, 2, 13, 0);
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const OUTAGE_END = OUTAGE_START + 10 * MINUTE;
const BLIP_START = Date.UTC(2026, 2, 2, 11, 30);
const BLIP_END = BLIP_START + 30 * SECOND;
// The shipped config warms up for an hour before --from: the history's first hour.
const FROM = new Date(TRAFFIC_FROM + 60 * MINUTE).toISOString();
const TO = new Date(TRAFFIC_TO).toISOString();
const REGION = 'CN-GD';

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

let db: TestDatabase;
let bad: BadAttempt[];
let countsBefore: ForewarnCounts;

function forewarn(args: string[]): Promise<Result> {
  return runForewarn(args, {
    env: { DATABASE_URL: db.url, FOREWARN_CONFIG: SHIPPED, LOG_LEVEL: 'info' },
    timeoutMs: 50_000,
  });
}

function backtest(from: string, to: string, format: 'json' | 'table'): Promise<Result> {
  return forewarn([
    'backtest',
    '--detector',
    'payment-health',
    '--from',
    from,
    '--to',
    to,
    '--format',
    format,
  ]);
}

function expectExit(result: Result, code: number): void {
  expect(result.signal, `killed; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

/** stderr's JSON log lines; the progress lines are plain text. */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The one JSON array on stdout. */
function incidentsOf(result: Result): Array<Record<string, unknown>> {
  const lines = result.stdout.split('\n').filter((l) => l !== '');
  expect(lines, result.stdout).toHaveLength(1);
  const parsed: unknown = JSON.parse(lines[0]!);
  expect(Array.isArray(parsed)).toBe(true);
  return parsed as Array<Record<string, unknown>>;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function expectDocumentedShape(incident: Record<string, unknown>): void {
  expect(Object.keys(incident).sort()).toEqual(
    [
      'backupChannels',
      'detector',
      'evidence',
      'kind',
      'openedAt',
      'resolvedAt',
      'resolveReason',
      'subject',
    ].sort(),
  );
  expect(incident.resolveReason).toBe(incident.resolvedAt === null ? null : 'recovered');
  expect(incident.detector).toBe('payment-health');
  expect(incident.kind).toBe('failures');
  expect(incident.subject).toEqual({ channel: 'wechat_pay', region: REGION });
  expect(incident.openedAt).toMatch(ISO);
  if (incident.resolvedAt !== null) expect(incident.resolvedAt).toMatch(ISO);
  const evidence = incident.evidence as Record<string, unknown>;
  for (const key of [
    'windowSeconds',
    'attempts',
    'bad',
    'rate',
    'lowerBound',
    'upperBound',
    'baseline',
    'threshold',
    'confidence',
    'users',
  ]) {
    expect(typeof evidence[key], `evidence.${key}`).toBe('number');
  }
  // The failures' codes, most frequent first.
  const codes = evidence.topErrorCodes as Array<{ code: string; count: number }>;
  expect(codes.length).toBeGreaterThan(0);
  expect(codes.map((c) => c.count)).toEqual([...codes.map((c) => c.count)].sort((a, b) => b - a));
  expect(evidence.bad as number).toBeGreaterThan(0);
  expect(evidence.lowerBound as number).toBeGreaterThan(evidence.threshold as number);
  const backups = incident.backupChannels as string[];
  expect(Array.isArray(backups)).toBe(true);
  expect(backups.length).toBeGreaterThanOrEqual(1);
  for (const id of backups) expect(allowedBackups).toContain(id);
}

let allowedBackups: string[];

beforeAll(async () => {
  const platform = referencePlatform();
  const users = generateUsers(5_000, 3, { platform });
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform,
    users,
    attempts: generateAttempts({
      platform,
      from: TRAFFIC_FROM,
      to: TRAFFIC_TO,
      seed: 77,
      users,
      scenarios: [
        {
          channel: 'wechat_pay',
          region: REGION,
          from: OUTAGE_START,
          to: OUTAGE_END,
          effect: { type: 'outage' },
        },
        { channel: 'alipay', region: REGION, from: BLIP_START, to: BLIP_END, effect: { type: 'outage' } },
      ],
    }),
  });
  // Rows that break the contract are skipped by a backtest too, and counted in its log line.
  bad = badAttempts({
    firstId: 900_000_001,
    createdAt: OUTAGE_START + 2 * MINUTE,
    channel: 'wechat_pay',
    region: REGION,
    userId: users[0]!.id,
  });
  await insertRawAttempts(db.pool, bad);
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT id FROM platform.payment_channels
      WHERE enabled AND ('*' = ANY (regions) OR $1 = ANY (regions)) AND id <> 'wechat_pay'`,
    [REGION],
  );
  allowedBackups = rows.map((r) => r.id);
  expect(allowedBackups).not.toContain('paypal');
  countsBefore = await forewarnCounts(db.pool);
});

afterAll(async () => {
  await db?.drop();
});

describe('forewarn backtest --detector payment-health', () => {
  it('the history holds the blip: every alipay CN-GD attempt in those 30 s failed', async () => {
    const { rows } = await db.pool.query<{ attempts: number; failures: number }>(
      `SELECT count(*)::int AS attempts, count(*) FILTER (WHERE status IN ('failed', 'timeout'))::int AS failures
         FROM platform.payment_attempts
        WHERE channel_id = 'alipay' AND region = $1 AND created_at >= $2 AND created_at < $3`,
      [REGION, new Date(BLIP_START), new Date(BLIP_END)],
    );
    expect(rows[0]!.attempts).toBeGreaterThan(100);
    expect(rows[0]!.failures).toBe(rows[0]!.attempts);
  });

  it('--format json: the outage once, the blip not at all, progress and a log line on stderr', async () => {
    const result = await backtest(FROM, TO, 'json');
    expectExit(result, 0);
    const incidents = incidentsOf(result);
    expect(incidents).toHaveLength(1);
    const incident = incidents[0]!;
    expectDocumentedShape(incident);

    const openedAt = Date.parse(incident.openedAt as string);
    expect(openedAt - OUTAGE_START).toBeGreaterThan(0);
    expect(openedAt - OUTAGE_START).toBeLessThanOrEqual(90 * SECOND);
    expect(incident.resolvedAt).not.toBeNull();
    const resolvedAt = Date.parse(incident.resolvedAt as string);
    expect(resolvedAt).toBeGreaterThan(OUTAGE_END);
    expect(resolvedAt).toBeLessThanOrEqual(OUTAGE_END + 5 * MINUTE);
    expect(incidents.some((i) => (i.subject as { channel: string }).channel === 'alipay')).toBe(false);

    expect(result.stderr).toMatch(/^replaying: (\d+)\/\1 ticks \(100%\)$/m);
    const finished = logLines(result.stderr).filter((l) => l.msg === 'backtest finished');
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({
      level: 'info',
      component: 'backtest',
      detector: 'payment-health',
      skippedRows: bad.length,
    });
    // Without a live daemon's stored baselines, the warm-up stretches to a baseline half-life
    // (6 h) so that baselines are learned; ticks cover it and the asked range.
    expect(finished[0]).toMatchObject({ baselinesFrom: 'warm-up', warmupMinutes: 360 });
    const firstTick = Date.parse(FROM) - 360 * MINUTE;
    expect(finished[0]!.ticks).toBe((TRAFFIC_TO - firstTick) / (15 * SECOND) + 1);
  });

  it('--to inside the outage: the incident is still open', async () => {
    const to = new Date(OUTAGE_START + 5 * MINUTE).toISOString();
    const result = await backtest(FROM, to, 'json');
    expectExit(result, 0);
    const incidents = incidentsOf(result);
    expect(incidents).toHaveLength(1);
    expectDocumentedShape(incidents[0]!);
    expect(incidents[0]!.resolvedAt).toBeNull();
    const openedAt = Date.parse(incidents[0]!.openedAt as string);
    expect(openedAt - OUTAGE_START).toBeGreaterThan(0);
    expect(openedAt - OUTAGE_START).toBeLessThanOrEqual(90 * SECOND);
  });

  it('--format table: a table for people that names the channel', async () => {
    const result = await backtest(FROM, TO, 'table');
    expectExit(result, 0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^channel\s+region\s+kind\s+opened\s+resolved/);
    expect(lines[1]).toMatch(/^-+(\s+-+)+$/);
    const rows = lines.slice(2, -1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^wechat_pay\s+CN-GD\s+failures\s/);
    expect(lines[lines.length - 1]).toMatch(/^1 incident\(s\) in \d+ ticks$/);
  });

  it('writes nothing to forewarn’s tables', async () => {
    expect(await forewarnCounts(db.pool)).toEqual(countsBefore);
  });

  it('a --from that is not a time exits 2', async () => {
    const result = await forewarn([
      'backtest',
      '--detector',
      'payment-health',
      '--from',
      '2026-03-02T25:00:00Z',
      '--to',
      TO,
      '--format',
      'json',
    ]);
    expectExit(result, 2);
    expect(result.stderr).toContain('--from');
    expect(result.stdout).toBe('');
  });
});
