// Loading the simulated platform into a real PostgreSQL: the tables match the platform contract,
// channels, users and attempts survive the round trip unchanged, and live traffic is written as a
// platform writes it (pending first, updated in place to the outcome).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveWriter, type LiveWriterDb } from '../../sim/live.ts';
import { loadPlatform } from '../support/platform.ts';
import { copyAttempts, seedPlatform } from '../../sim/load.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { attemptsAsOf, generateAttempts } from '../../sim/traffic.ts';
import type { Scenario, SimAttempt } from '../../sim/traffic.ts';

const SERVER_URL = 'postgres://postgres@127.0.0.1:5432';
const SCHEMA = 'platform';
const database = `fw_sim_${randomBytes(6).toString('hex')}`;
const platform = referencePlatform();
const users = generateUsers(500, 21);
const from = Date.UTC(2025, 5, 1, 12);

let admin: pg.Client;
let client: pg.Client;

beforeAll(async () => {
  admin = new pg.Client(`${SERVER_URL}/postgres`);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
  client = new pg.Client(`${SERVER_URL}/${database}`);
  await client.connect();
  await createPlatformSchema(client, SCHEMA);
});

afterAll(async () => {
  await client?.end();
  if (admin) {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    await admin.end();
  }
});

function* take<T>(items: Iterable<T>, count: number): Generator<T> {
  if (count <= 0) return;
  let taken = 0;
  for (const item of items) {
    yield item;
    if (++taken === count) return;
  }
}

interface AttemptRow {
  id: string;
  user_id: string;
  channel_id: string;
  region: string;
  status: SimAttempt['status'];
  error_code: string | null;
  latency_ms: number | null;
  created_ms: number;
  finished_ms: number | null;
}

const ATTEMPT_COLUMNS = `id, user_id, channel_id, region, status, error_code, latency_ms,
  (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
  (extract(epoch FROM finished_at) * 1000)::float8 AS finished_ms`;

function attemptOfRow(r: AttemptRow): SimAttempt {
  return {
    id: Number(r.id),
    userId: r.user_id,
    channelId: r.channel_id,
    region: r.region,
    status: r.status,
    errorCode: r.error_code,
    latencyMs: r.latency_ms,
    createdAt: r.created_ms,
    finishedAt: r.finished_ms,
  };
}

describe('createPlatformSchema', () => {
  it('creates the contract tables with the contract types and nullability, and can run again', async () => {
    await createPlatformSchema(client, SCHEMA);
    const { rows } = await client.query<{
      table_name: string;
      column_name: string;
      type: string;
      is_nullable: string;
    }>(
      `SELECT table_name, column_name, format_type(atttypid, atttypmod) AS type, is_nullable
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                            AND a.attname = c.column_name
        WHERE table_schema = $1
        ORDER BY table_name, ordinal_position`,
      [SCHEMA],
    );
    const columns = Object.fromEntries(
      rows.map((r) => [
        `${r.table_name}.${r.column_name}`,
        `${r.type}${r.is_nullable === 'YES' ? ' null' : ''}`,
      ]),
    );
    expect(columns).toEqual({
      'orders.id': 'text',
      'orders.user_id': 'text',
      'orders.product_id': 'text',
      'orders.quantity': 'integer',
      'orders.status': 'text',
      'orders.created_at': 'timestamp with time zone',
      'payment_attempts.id': 'bigint',
      'payment_attempts.user_id': 'text',
      'payment_attempts.channel_id': 'text',
      'payment_attempts.region': 'text',
      'payment_attempts.status': 'text',
      'payment_attempts.error_code': 'text null',
      'payment_attempts.latency_ms': 'integer null',
      'payment_attempts.created_at': 'timestamp with time zone',
      'payment_attempts.finished_at': 'timestamp with time zone null',
      'payment_channels.id': 'text',
      'payment_channels.display_name': 'text',
      'payment_channels.regions': 'text[]',
      'payment_channels.enabled': 'boolean',
      'payment_channels.priority': 'integer',
      'products.id': 'text',
      'products.name': 'text',
      'products.stock': 'integer',
      'products.low_stock_threshold': 'integer null',
      'products.updated_at': 'timestamp with time zone',
      'restock_subscriptions.user_id': 'text',
      'restock_subscriptions.product_id': 'text',
      'restock_subscriptions.created_at': 'timestamp with time zone',
      'users.id': 'text',
      'users.email': 'text null',
      'users.locale': 'text',
      'users.region': 'text',
      'users.timezone': 'text',
      'users.status': 'text',
      'users.last_active_at': 'timestamp with time zone null',
      'users.created_at': 'timestamp with time zone',
    });
    const index = await client.query(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'payment_attempts' AND indexdef LIKE '%(created_at)%'`,
      [SCHEMA],
    );
    expect(index.rowCount).toBe(1);
  });

  it('quotes the schema name, and reset drops what was there', async () => {
    const odd = 'Odd "schema"; name';
    await createPlatformSchema(client, odd);
    await client.query(
      `INSERT INTO ${pg.escapeIdentifier(odd)}.products VALUES ('p1', 'Card', 3, NULL, now())`,
    );
    await createPlatformSchema(client, odd, { reset: true });
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(odd)}.products`,
    );
    expect(rows[0]).toEqual({ n: 0 });
    await client.query(`DROP SCHEMA ${pg.escapeIdentifier(odd)} CASCADE`);
  });
});

describe('seedPlatform', () => {
  it('stores channels and users as generated, and can run again', async () => {
    await seedPlatform(client, SCHEMA, platform, users);
    expect(await seedPlatform(client, SCHEMA, platform, users)).toEqual({
      channels: platform.channels.length,
      users: users.length,
    });

    const channels = await client.query(
      `SELECT id, display_name, regions, enabled, priority FROM ${SCHEMA}.payment_channels ORDER BY priority`,
    );
    expect(channels.rows).toEqual(
      [...platform.channels]
        .sort((a, b) => a.priority - b.priority)
        .map((c) => ({
          id: c.id,
          display_name: c.displayName,
          regions: [...c.regions],
          enabled: c.enabled,
          priority: c.priority,
        })),
    );

    const stored = await client.query<{
      id: string;
      email: string | null;
      locale: string;
      region: string;
      timezone: string;
      status: string;
      last_active_ms: number | null;
      created_ms: number;
    }>(
      `SELECT id, email, locale, region, timezone, status,
              (extract(epoch FROM last_active_at) * 1000)::float8 AS last_active_ms,
              (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
         FROM ${SCHEMA}.users ORDER BY id`,
    );
    expect(
      stored.rows.map((r) => ({
        id: r.id,
        email: r.email,
        locale: r.locale,
        region: r.region,
        timezone: r.timezone,
        status: r.status,
        lastActiveAt: r.last_active_ms,
        createdAt: r.created_ms,
      })),
    ).toEqual(users);
  });
});

describe('copyAttempts', () => {
  it('loads 10,000 attempts that read back unchanged', async () => {
    const generated = [
      ...take(generateAttempts({ platform, from, to: from + 3_600_000, seed: 4, users }), 10_000),
    ];
    expect(generated).toHaveLength(10_000);
    expect(await copyAttempts(client, SCHEMA, generated)).toBe(10_000);

    const counts = await client.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM ${SCHEMA}.payment_attempts GROUP BY status`,
    );
    const expected = new Map<string, number>();
    for (const a of generated) expected.set(a.status, (expected.get(a.status) ?? 0) + 1);
    expect(new Map(counts.rows.map((r) => [r.status, r.n]))).toEqual(expected);

    const { rows } = await client.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM ${SCHEMA}.payment_attempts ORDER BY id`,
    );
    expect(rows.map(attemptOfRow)).toEqual(generated);
    expect(generated.some((a) => a.status === 'failed' && a.errorCode !== null)).toBe(true);
    expect(generated.some((a) => a.status === 'pending' && a.finishedAt === null)).toBe(true);
  });

  it('round-trips text that needs escaping', async () => {
    const odd: SimAttempt = {
      id: 9_000_000_001,
      userId: 'tab\there\\back\nline\r.',
      channelId: '支付宝\\.',
      region: 'CN-GD',
      status: 'failed',
      errorCode: '\\N',
      latencyMs: null,
      createdAt: Date.UTC(2025, 5, 1, 0, 0, 0, 1),
      finishedAt: Date.UTC(2025, 5, 1, 0, 0, 2, 1),
    };
    expect(await copyAttempts(client, SCHEMA, [odd])).toBe(1);
    const { rows } = await client.query(
      `SELECT user_id, channel_id, error_code, created_at, finished_at FROM ${SCHEMA}.payment_attempts WHERE id = $1`,
      [odd.id],
    );
    expect(rows).toEqual([
      {
        user_id: odd.userId,
        channel_id: odd.channelId,
        error_code: '\\N',
        created_at: new Date(odd.createdAt),
        finished_at: new Date(odd.finishedAt!),
      },
    ]);
  });

  it('stores nothing from a failed COPY and leaves the client usable', async () => {
    const before = await client.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.payment_attempts`);
    const duplicates = [
      ...take(generateAttempts({ platform, from, to: from + 3_600_000, seed: 4, users }), 5),
    ];
    await expect(copyAttempts(client, SCHEMA, duplicates)).rejects.toThrow(/duplicate key/);
    const after = await client.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.payment_attempts`);
    expect(after.rows).toEqual(before.rows);
  });

  it('aborts the COPY when the attempts cannot be produced, after some were sent', async () => {
    function* broken(): Generator<SimAttempt> {
      // More than one chunk, so part of the data has reached the server when the error comes.
      yield* take(
        generateAttempts({ platform, from, to: from + 3_600_000, seed: 99, firstId: 50_000_000, users }),
        2_500,
      );
      throw new Error('generator broke');
    }
    await expect(copyAttempts(client, SCHEMA, broken())).rejects.toThrow(/generator broke/);
    const { rows } = await client.query(
      `SELECT count(*)::int AS n FROM ${SCHEMA}.payment_attempts WHERE id BETWEEN 50000000 AND 50009999`,
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});

describe('startLiveWriter', () => {
  const warnings: string[] = [];
  const logger = {
    warn: (_bindings: Record<string, unknown>, message: string) => void warnings.push(message),
  };

  async function table(schema: string): Promise<SimAttempt[]> {
    const { rows } = await client.query<AttemptRow>(
      `SELECT ${ATTEMPT_COLUMNS} FROM ${pg.escapeIdentifier(schema)}.payment_attempts ORDER BY id`,
    );
    return rows.map(attemptOfRow);
  }

  it('writes 20 s of traffic as the platform had it at every flush: pending first, final at finishedAt', async () => {
    const schema = 'live_clock';
    await createPlatformSchema(client, schema, { reset: true });
    // 20:00 in Beijing, the peak; an outage for timeouts and failures, a stuck share for pending rows.
    const start = Date.UTC(2025, 5, 1, 12);
    const end = start + 20_000;
    const scenarios: Scenario[] = [
      {
        channel: 'wechat_pay',
        region: 'CN-GD',
        from: start + 5_000,
        to: start + 15_000,
        effect: { type: 'outage' },
      },
      {
        channel: 'alipay',
        region: 'CN-ZJ',
        from: start,
        to: end,
        effect: { type: 'stuckPending', share: 0.2 },
      },
    ];
    const traffic = () =>
      generateAttempts({ platform, from: start, to: end, seed: 31, firstId: 70_000_000, scenarios, users });
    const generated = [...traffic()];
    expect(generated.length).toBeGreaterThan(400);
    expect(new Set(generated.map((a) => a.status))).toEqual(
      new Set(['succeeded', 'failed', 'timeout', 'pending']),
    );

    let flushStatements: string[] = [];
    const perFlush: string[][] = [];
    const db: LiveWriterDb = {
      query(text, values) {
        flushStatements.push(text.trim().split(/\s+/)[0]!);
        return client.query(text, values);
      },
    };
    let now = start - 1;
    const writer = startLiveWriter({
      db,
      schema,
      attempts: traffic(),
      logger,
      now: () => now,
      flushEveryMs: null,
    });

    const seenPending = new Set<number>();
    const seenFinal = new Set<number>();
    // Every 250 ms while attempts are created, then every 5 s until the slowest has finished.
    for (now = start; now <= end + 65_000; now += now < end ? 250 : 5_000) {
      flushStatements = [];
      await writer.flush();
      perFlush.push(flushStatements);
      const rows = await table(schema);
      expect(rows, `at start + ${now - start} ms`).toEqual([...attemptsAsOf(generated, now)]);
      for (const r of rows) (r.status === 'pending' ? seenPending : seenFinal).add(r.id);
    }
    const counts = await writer.stop();

    const stuck = generated.filter((a) => a.finishedAt === null).length;
    expect(counts).toEqual({
      inserted: generated.length,
      finished: generated.length - stuck,
      pending: stuck,
      dropped: 0,
      errors: 0,
    });
    expect(await table(schema)).toEqual(generated);
    // Most rows were read both ways: pending at one flush, final at a later one.
    const both = [...seenFinal].filter((id) => seenPending.has(id)).length;
    expect(both).toBeGreaterThan(0.9 * (generated.length - stuck));
    expect(perFlush.every((st) => st.filter((v) => v === 'INSERT').length <= 1)).toBe(true);
    expect(perFlush.every((st) => st.filter((v) => v === 'UPDATE').length <= 1)).toBe(true);
    expect(perFlush.flat().every((v) => v === 'INSERT' || v === 'UPDATE')).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('keeps up with the wall clock on its own timer, as the demo runs it', async () => {
    const schema = 'live_wall';
    await createPlatformSchema(client, schema, { reset: true });
    const start = Date.now();
    // Ten times the reference rate, so that even the quietest hour gives a few hundred attempts.
    const traffic = () =>
      generateAttempts({ platform, from: start, to: start + 3_000, seed: 32, rateScale: 10, users });
    const generated = [...traffic()];
    let last = start;
    const writer = startLiveWriter({
      db: client,
      schema,
      attempts: traffic(),
      logger,
      now: () => (last = Date.now()),
      flushEveryMs: 200,
    });

    const pendingThenFinal = new Set<number>();
    const seenPending = new Set<number>();
    while (Date.now() < start + 4_500) {
      for (const r of await table(schema)) {
        if (r.status === 'pending') seenPending.add(r.id);
        else if (seenPending.has(r.id)) pendingThenFinal.add(r.id);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const counts = await writer.stop();

    expect(counts.inserted).toBe(generated.length);
    expect(counts).toMatchObject({ dropped: 0, errors: 0 });
    expect(await table(schema)).toEqual([...attemptsAsOf(generated, last)]);
    expect(pendingThenFinal.size).toBeGreaterThan(generated.length / 4);
    expect(warnings).toEqual([]);
  });
});

describe('loadPlatform with asOf', () => {
  it('loads the attempts as the platform had them at that moment', async () => {
    const schema = 'as_of';
    const start = Date.UTC(2025, 5, 1, 12);
    const generated = [...generateAttempts({ platform, from: start, to: start + 60_000, seed: 33, users })];
    const asOf = start + 30_000;
    const pool = new pg.Pool({ connectionString: `${SERVER_URL}/${database}`, max: 1 });
    try {
      const stored = await loadPlatform(pool, { platform, users, attempts: generated, schema, asOf });
      const { rows } = await client.query<AttemptRow>(
        `SELECT ${ATTEMPT_COLUMNS} FROM ${schema}.payment_attempts ORDER BY id`,
      );
      const expected = [...attemptsAsOf(generated, asOf)];
      expect(stored).toBe(expected.length);
      expect(rows.map(attemptOfRow)).toEqual(expected);
      expect(expected.length).toBeLessThan(generated.length);
      expect(expected.some((a) => a.status === 'pending' && a.finishedAt === null)).toBe(true);
    } finally {
      await pool.end();
    }
  });
});
