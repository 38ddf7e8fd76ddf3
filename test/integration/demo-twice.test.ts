// The demo run twice on one Redis (issue: the second run sent 0 warnings and failed with "the
// incident did not resolve in time"). The demo recreates its database, so the second run's first
// event had the first run's id, and a fan-out job named after it was dropped as a duplicate of
// the completed one Redis still kept. Both runs here share one queue prefix, set explicitly, so
// the default prefix (derived from each run's new deployment id) cannot keep them apart: only
// job ids that no recreated database repeats can. About two minutes a run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../../lib/demo/demo.ts';
import { readEnv } from '../../lib/env.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_SECRET } from '../support/notifications.ts';
import {
  captureLogs,
  createTestRedisPrefix,
  databaseUrl,
  PG_ADMIN_URL,
  REDIS_URL,
} from '../support/services.ts';

const DEMO_DB = `fw_test_demo_${Math.random().toString(16).slice(2, 10)}`;

let dir: string;
let redis: Awaited<ReturnType<typeof createTestRedisPrefix>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-demo-twice-'));
  redis = await createTestRedisPrefix();
});

afterAll(async () => {
  await redis?.cleanup();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${DEMO_DB} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await rm(dir, { recursive: true, force: true });
});

interface Sent {
  inapp: number;
  email: number;
}

/** One `forewarn demo`, as the command runs it; returns what it said it sent. */
async function demo(
  run: number,
): Promise<{ warnings: Sent; recoveries: Sent; lowStock: Sent; restock: Sent; said: string[] }> {
  const said: string[] = [];
  const env = readEnv({
    REDIS_URL,
    FOREWARN_QUEUE_PREFIX: redis.prefix,
    FOREWARN_CONFIG: SHIPPED_CONFIG,
    FOREWARN_OUTBOX: join(dir, `outbox-${run}`),
    FOREWARN_LINK_SECRET: LINK_SECRET,
    LOG_LEVEL: 'warn',
  });
  const logs = captureLogs('warn');
  try {
    await runDemo({ env, logger: logs.logger, databaseUrl: databaseUrl(DEMO_DB), say: (l) => said.push(l) });
  } catch (error) {
    throw new Error(`demo run ${run} failed: ${(error as Error).message}\n${said.join('\n')}`, {
      cause: error,
    });
  }
  const sent = (what: string): Sent => {
    const line = said.find((l) => l.startsWith(`${what} sent:`));
    const match = line && /sent: (\d+) in-app, (\d+) email/.exec(line);
    if (!match) throw new Error(`demo run ${run} said no "${what} sent" line:\n${said.join('\n')}`);
    return { inapp: Number(match[1]), email: Number(match[2]) };
  };
  return {
    warnings: sent('Warnings'),
    recoveries: sent('Recovery notices'),
    lowStock: sent('Low-stock notices (with a restock-reminder link)'),
    restock: sent('Restock alerts'),
    said,
  };
}

describe('npm run demo, twice on one Redis and queue prefix', () => {
  it('warns and tells of the recovery in both runs, as many users the second time as the first', async () => {
    const first = await demo(1);
    const second = await demo(2);
    for (const run of [first, second]) {
      expect(run.warnings.inapp).toBeGreaterThan(0);
      expect(run.warnings.email).toBeGreaterThan(0);
      // Recovery notices go to exactly those who were warned.
      expect(run.recoveries).toEqual(run.warnings);
    }
    expect(second.warnings).toEqual(first.warnings);
    // The shop's story is the same both times: 25 pending orders told, a wave of 60 (one per unit).
    for (const run of [first, second]) {
      expect(run.lowStock.inapp).toBe(25);
      expect(run.restock.inapp).toBe(60);
    }
    expect(second.lowStock).toEqual(first.lowStock);
    expect(second.restock).toEqual(first.restock);
  }, 450_000);
});
