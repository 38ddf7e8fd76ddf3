// The channel-status API (GET /api/channels/status?region=…) over real HTTP, against a simulated
// platform in PostgreSQL and the real payment-health ticks: without FOREWARN_API_TOKEN, or with
// another, 401 and nothing read; a missing or malformed region is a 400 naming the parameter;
// during a hard outage of alipay in CN-GD it names alipay degraded with its open incident (id,
// kind, opening time, evidence numbers) and healthy backups from the incident's own list; once the
// incident resolves, alipay is healthy again with no incident and no backups.
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext, type AppContext } from '../../lib/context.ts';
import { runPaymentHealthTick } from '../../lib/detection/payment-health-tick.ts';
import { readEnv } from '../../lib/env.ts';
import type { ChannelStatusAnswer } from '../../lib/http/routes/channel-status.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { generateUsers, referencePlatform } from '../../sim/platform.ts';
import { generateAttempts } from '../../sim/traffic.ts';
import { loadPlatform } from '../support/platform.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  databaseUrl,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';
import { tickBounds } from '../../lib/watchdog/bounds.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const TOKEN = 'api-token-for-tests-0123456789abcdef';
const SECOND = 1_000;
const MINUTE = 60_000;
const STEP = 15 * SECOND;
const OUTAGE_START = Date.UTC(2026, 2, 2, 12, 0);
const OUTAGE_END = OUTAGE_START + 3 * MINUTE;
const FIRST_TICK = OUTAGE_START - 30 * SECOND;
const LAST_TICK = OUTAGE_END + 5 * MINUTE;
const REGION = 'CN-GD';

let db: TestDatabase;
let redisPrefix: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let ctx: AppContext;
let http: RunningHttpServer;
const logs = captureLogs('info');
let tickAt = FIRST_TICK;
/** What the HTTP role takes for now: the latest tick's time, unless a test moves it on. */
let clock = FIRST_TICK;

function status(region: string | null = REGION, token: string | null = TOKEN, extra = '') {
  const url = new URL('/api/channels/status', http.address);
  if (region !== null) url.searchParams.set('region', region);
  return fetch(`${url}${extra}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
}

async function answer(): Promise<ChannelStatusAnswer> {
  const response = await status();
  expect(response.status).toBe(200);
  return (await response.json()) as ChannelStatusAnswer;
}

async function openIncidents(): Promise<Array<{ id: string; backup_channels: string[] }>> {
  const { rows } = await db.pool.query<{ id: string; backup_channels: string[] }>(
    'SELECT id, backup_channels FROM forewarn.incidents WHERE resolved_at IS NULL ORDER BY id',
  );
  return rows;
}

/** Ticks on, one step of simulated time at a time, until `done` holds (at most until LAST_TICK). */
async function tickUntil(what: string, done: () => Promise<boolean>): Promise<void> {
  while (!(await done())) {
    if (tickAt > LAST_TICK) throw new Error(`no ${what} by ${new Date(LAST_TICK).toISOString()}`);
    await runPaymentHealthTick(ctx, tickAt);
    clock = tickAt;
    tickAt += STEP;
  }
}

beforeAll(async () => {
  const platform = referencePlatform();
  const local = { ...platform, pairs: platform.pairs.filter((p) => p.region === REGION) };
  const users = generateUsers(2_000, 11, { platform });
  db = await createTestDatabase();
  await loadPlatform(db.pool, {
    platform: local,
    users,
    attempts: generateAttempts({
      platform: local,
      from: OUTAGE_START - 70 * MINUTE,
      to: OUTAGE_END + 10 * MINUTE,
      seed: 2026,
      users,
      scenarios: [
        { channel: 'alipay', region: REGION, from: OUTAGE_START, to: OUTAGE_END, effect: { type: 'outage' } },
      ],
    }),
  });
  redisPrefix = await createTestRedisPrefix();
  const env = readEnv({
    DATABASE_URL: db.url,
    REDIS_URL,
    FOREWARN_QUEUE_PREFIX: redisPrefix.prefix,
    FOREWARN_CONFIG: SHIPPED,
    LOG_LEVEL: 'info',
  });
  ctx = await createContext(env, await ConfigStore.open(SHIPPED, logs.logger), logs.logger);
  http = await startHttpServer(
    {
      db: ctx.db,
      platformDb: ctx.platformDb,
      platformSchema: ctx.platformSchema,
      linkKeys: LINK_KEYS,
      apiToken: TOKEN,
      config: ctx.config,
      logger: logs.logger,
      // The simulated platform's clock: the answer says whether the last tick is recent by it.
      now: () => clock,
    },
    { host: '127.0.0.1', port: 0 },
  );
}, 60_000);

afterAll(async () => {
  await http?.close();
  await ctx?.close();
  await redisPrefix?.cleanup();
  await db?.drop();
});

describe('refusals', () => {
  it.each([
    ['missing', null],
    ['wrong', `${TOKEN}x`],
    ['empty', ''],
  ])('a %s token: 401 with WWW-Authenticate, nothing read', async (_what, token) => {
    // Databases that do not exist: any read would fail the call with 500 (as the token shows).
    const nowhere = new pg.Pool({ connectionString: databaseUrl('forewarn_channel_status_nowhere') });
    nowhere.on('error', () => undefined);
    const blind = await startHttpServer(
      {
        db: nowhere,
        platformDb: nowhere,
        platformSchema: 'platform',
        linkKeys: LINK_KEYS,
        apiToken: TOKEN,
        config: ctx.config,
        logger: logs.logger,
        now: Date.now,
      },
      { host: '127.0.0.1', port: 0 },
    );
    try {
      const call = (t: string | null) =>
        fetch(new URL(`/api/channels/status?region=${REGION}`, blind.address), {
          headers: t === null ? {} : { authorization: `Bearer ${t}` },
        });
      const response = await call(token);
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      expect(await response.json()).toMatchObject({ error: 'FW_API_UNAUTHORIZED' });
      expect((await call(TOKEN)).status).toBe(500);
    } finally {
      await blind.close();
      await nowhere.end();
    }
  });

  it.each([
    ['missing', null, '', 'got nothing'],
    ['lower case', 'cn-gd', '', 'got "cn-gd"'],
    ['no subdivision', 'CN', '', 'got "CN"'],
    ['not a code', "CN-GD' OR 1=1", '', `got "CN-GD' OR 1=1"`],
    ['given twice', REGION, `&region=${REGION}`, 'got it more than once'],
  ])('a %s region: 400 naming the parameter and what it expects', async (_what, region, extra, got) => {
    const response = await status(region, TOKEN, extra);
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: string; field: string; message: string };
    expect(body.error).toBe('FW_API_INVALID');
    expect(body.field).toBe('region');
    expect(body.message).toBe(
      `the query parameter region: expected an ISO 3166-2 region code such as CN-GD (two capital letters, "-", 1-3 capital letters or digits), ${got}`,
    );
  });
});

describe('a region through an outage of alipay', () => {
  it('before the first tick: the channels offered in the region, all unknown', async () => {
    const body = await answer();
    expect(body.region).toBe(REGION);
    expect(body.evaluatedAt).toBeNull();
    // No tick yet: nothing here is known.
    expect(body.stale).toBe(true);
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id FROM platform.payment_channels WHERE enabled AND ('*' = ANY (regions) OR $1 = ANY (regions))`,
      [REGION],
    );
    expect(body.channels.map((c) => c.channel).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(body.channels.every((c) => c.state === 'unknown' && c.incidents.length === 0)).toBe(true);
  });

  it('a region nobody pays from: an answer, every channel offered there unknown', async () => {
    const response = await status('ZZ-99');
    expect(response.status).toBe(200);
    const body = (await response.json()) as ChannelStatusAnswer;
    expect(body.channels.every((c) => c.state === 'unknown')).toBe(true);
  });

  it('during the incident: alipay degraded, its incident with its numbers, healthy backups', async () => {
    await tickUntil('incident', async () => (await openIncidents()).length > 0);
    const [incident] = await openIncidents();
    const body = await answer();
    expect(Date.parse(body.evaluatedAt!)).toBe(tickAt - STEP);
    expect(body.stale).toBe(false);
    const alipay = body.channels.find((c) => c.channel === 'alipay')!;
    expect(alipay.state).toBe('degraded');
    expect(alipay.incidents).toHaveLength(1);
    const shown = alipay.incidents[0]!;
    expect(shown.id).toBe(incident!.id);
    expect(shown.kind).toBe('failures');
    expect(Date.parse(shown.openedAt)).toBeGreaterThan(OUTAGE_START);
    for (const key of ['attempts', 'bad', 'rate', 'lowerBound', 'baseline', 'threshold'] as const)
      expect(shown.evidence[key], key).toEqual(expect.any(Number));
    expect(shown.evidence.lowerBound).toBeGreaterThan(shown.evidence.threshold);

    // The backups are the incident's own, those healthy now, in its order.
    expect(alipay.backups.length).toBeGreaterThan(0);
    const healthy = body.channels.filter((c) => c.state === 'healthy' && !c.confirming).map((c) => c.channel);
    expect(alipay.backups).toEqual(incident!.backup_channels.filter((id) => healthy.includes(id)));
    for (const backup of alipay.backups) {
      const channel = body.channels.find((c) => c.channel === backup)!;
      expect(channel.state).toBe('healthy');
      expect(channel.incidents).toEqual([]);
      expect(channel.backups).toEqual([]);
    }
  }, 120_000);

  it('after it resolves: alipay healthy, no incident, no backups', async () => {
    await tickUntil('resolution', async () => (await openIncidents()).length === 0);
    const body = await answer();
    const alipay = body.channels.find((c) => c.channel === 'alipay')!;
    expect(alipay).toMatchObject({ state: 'healthy', incidents: [], backups: [] });
    expect(body.channels.every((c) => c.incidents.length === 0)).toBe(true);
  }, 120_000);

  it('when the detector stops ticking: the last states, marked stale past the watchdog bound', async () => {
    const bound = tickBounds(ctx.config()).find((b) => b.detector === 'payment-health')!.boundMs;
    const last = clock;
    clock = last + bound;
    expect((await answer()).stale).toBe(false);
    clock = last + bound + SECOND;
    const body = await answer();
    expect(body.stale).toBe(true);
    expect(Date.parse(body.evaluatedAt!)).toBe(last);
    expect(body.channels.find((c) => c.channel === 'alipay')!.state).toBe('healthy');
  });
});
