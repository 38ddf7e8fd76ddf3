// A simulated trading platform inside a test database: the contract's tables in a schema, the
// reference channels and users, generated attempts, and rows that break the contract the way a
// sloppy view would (see docs/platform-contract.md#rows-that-break-the-contract).
import { escapeIdentifier } from 'pg';
import type pg from 'pg';
import { copyAttempts, seedPlatform } from '../../sim/load.ts';
import type { Platform, SimUser } from '../../sim/platform.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { attemptsAsOf, type SimAttempt } from '../../sim/traffic.ts';

export const PLATFORM_SCHEMA = 'platform';

/**
 * Creates the platform's tables in `schema` and loads channels, users and attempts; returns the
 * attempts stored. With `asOf`, the attempts are loaded as the platform had them then (see
 * attemptAsOf): those created later are left out, those not finished yet are pending.
 */
export async function loadPlatform(
  pool: pg.Pool,
  data: {
    platform: Platform;
    users: readonly SimUser[];
    attempts: Iterable<SimAttempt>;
    schema?: string;
    asOf?: number;
  },
): Promise<number> {
  const schema = data.schema ?? PLATFORM_SCHEMA;
  const client = await pool.connect();
  try {
    await createPlatformSchema(client, schema);
    await seedPlatform(client, schema, data.platform, data.users);
    const attempts = data.asOf === undefined ? data.attempts : attemptsAsOf(data.attempts, data.asOf);
    const stored = await copyAttempts(client, schema, attempts);
    // A live platform's tables have statistics; without them the planner guesses badly.
    await client.query(`ANALYZE ${escapeIdentifier(schema)}.payment_attempts`);
    return stored;
  } finally {
    client.release();
  }
}

/** A payment_attempts row as a view over a real platform may deliver it: anything may be off. */
export interface RawAttempt {
  id: number;
  userId: string | null;
  channelId: string | null;
  region: string | null;
  status: string | null;
  errorCode: string | null;
  latencyMs: number | null;
  createdAt: number;
  /** Null when left out. */
  finishedAt?: number | null;
}

/** A row that breaks the contract, and a pattern for the reason forewarn must give. */
export interface BadAttempt extends RawAttempt {
  reason: RegExp;
}

/**
 * One row for each way a row can break the contract, on `channel` in `region` (so that, were it
 * counted, a real pair's buckets would change), created at `createdAt`, ids from `firstId`.
 */
export function badAttempts(options: {
  firstId: number;
  createdAt: number;
  channel: string;
  region: string;
  userId: string;
}): BadAttempt[] {
  const { firstId, createdAt, channel, region, userId } = options;
  const ok = { userId, channelId: channel, region, errorCode: null, createdAt };
  return [
    {
      ...ok,
      id: firstId,
      status: 'refunded',
      latencyMs: 1_200,
      reason: /^unknown status 'refunded'$/,
    },
    {
      ...ok,
      id: firstId + 1,
      channelId: 'bitcoin',
      status: 'succeeded',
      latencyMs: 900,
      reason: /^unknown channel 'bitcoin'$/,
    },
    { ...ok, id: firstId + 2, region: null, status: 'failed', latencyMs: null, reason: /region.*null/ },
    { ...ok, id: firstId + 3, userId: null, status: 'failed', latencyMs: null, reason: /user_id.*null/ },
    { ...ok, id: firstId + 4, status: 'succeeded', latencyMs: -250, reason: /negative latency/ },
    { ...ok, id: firstId + 5, region: '', status: 'timeout', latencyMs: null, reason: /region.*empty/ },
  ];
}

/**
 * Inserts rows as they are, NULLs included. The simulator's tables declare the required columns
 * NOT NULL; a view over a real platform cannot promise that, so those constraints are dropped.
 */
export async function insertRawAttempts(
  db: pg.Pool | pg.ClientBase,
  rows: readonly RawAttempt[],
  schema = PLATFORM_SCHEMA,
): Promise<void> {
  const s = escapeIdentifier(schema);
  await db.query(
    `ALTER TABLE ${s}.payment_attempts
       ALTER COLUMN user_id DROP NOT NULL,
       ALTER COLUMN channel_id DROP NOT NULL,
       ALTER COLUMN region DROP NOT NULL,
       ALTER COLUMN status DROP NOT NULL`,
  );
  await db.query(
    `INSERT INTO ${s}.payment_attempts
       (id, user_id, channel_id, region, status, error_code, latency_ms, created_at, finished_at)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::int[], $8::timestamptz[], $9::timestamptz[])`,
    [
      rows.map((r) => r.id),
      rows.map((r) => r.userId),
      rows.map((r) => r.channelId),
      rows.map((r) => r.region),
      rows.map((r) => r.status),
      rows.map((r) => r.errorCode),
      rows.map((r) => r.latencyMs),
      rows.map((r) => new Date(r.createdAt)),
      rows.map((r) => (typeof r.finishedAt === 'number' ? new Date(r.finishedAt) : null)),
    ],
  );
}

export const FOREWARN_TABLES = [
  'incidents',
  'incident_events',
  'detector_state',
  'subject_state',
  'detector_runs',
] as const;
export type ForewarnCounts = Record<(typeof FOREWARN_TABLES)[number], number>;

/** Row counts of forewarn's own tables. */
export async function forewarnCounts(db: pg.Pool): Promise<ForewarnCounts> {
  const { rows } = await db.query<ForewarnCounts>(
    `SELECT ${FOREWARN_TABLES.map((t) => `(SELECT count(*)::int FROM forewarn.${t}) AS ${t}`).join(', ')}`,
  );
  return rows[0]!;
}
