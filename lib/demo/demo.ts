// `npm run demo`: forewarn end to end on a simulated platform, in about two minutes. It builds a
// platform database with channels, users and an hour of history, keeps live traffic flowing
// (each attempt inserted as pending and updated in place when it finishes, as a platform writes
// them), breaks one channel in one region for a while, and runs the real daemon (scheduler, queue,
// workers, detector) until the incident has opened and resolved.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startLiveWriter, type LiveWriter } from '../../sim/live.ts';
import { copyAttempts, seedPlatform } from '../../sim/load.ts';
import { generateUsers, referencePlatform, trafficFactor } from '../../sim/platform.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { generateAttempts, type Scenario } from '../../sim/traffic.ts';
import { startDaemon } from '../daemon.ts';
import { writeConfigVariant } from '../config/variant.ts';
import { migrate } from '../db/migrate.ts';
import { redactUrl, type Env } from '../env.ts';
import { ForewarnError } from '../errors.ts';
import { listIncidents, type IncidentRow } from '../incidents/store.ts';
import { maskId, type Logger } from '../logger.ts';
import { loadConfigFile } from '../config/load.ts';
import { idleAccounts, localTime, seedIdleAccounts, type IdleAccount } from './checkups.ts';
import { RESTOCKED, seedShop, SELLING_DOWN, setStock } from './shop.ts';

export interface DemoOptions {
  env: Env;
  logger: Logger;
  /** The demo's own database (dropped and recreated): never the one forewarn runs against. */
  databaseUrl: string;
  say: (line: string) => void;
  /** Give up after this long. */
  timeoutMs?: number;
}

const BROKEN = { channel: 'wechat_pay', region: 'CN-GD' };
const OUTAGE_AFTER_MS = 10_000;
const OUTAGE_FOR_MS = 60_000;
/**
 * The platform's traffic follows the day (a quarter of the evening's at 4 a.m.): the demo scales it
 * to an evening's level whatever the hour, so that the story takes the same two minutes at any time.
 */
const DEMO_TRAFFIC_LEVEL = 0.8;
const MAX_RATE_SCALE = 4;
const HISTORY_MS = 70 * 60_000;
/** The shipped thresholds, with ticks and confirmation shortened so the story fits in two minutes. */
const DEMO_TIMING = { schedule: '*/5 * * * * *', confirmSeconds: 30, resolveSeconds: 20 };
/**
 * Inventory and inactivity tick every 5 s too (error spikes keep their minute), and ops alerts of
 * one region or code wait 5 s for each other.
 */
const DEMO_SETTINGS = [
  [['detectors', 'inventory', 'schedule'], '*/5 * * * * *'],
  [['detectors', 'inactivity', 'schedule'], '*/5 * * * * *'],
  // The history is 70 minutes: a surge is judged against the 10 minutes before the last hour.
  [['detectors', 'errorSpikes', 'surge', 'minBaselineMinutes'], 5],
  [['notifications', 'ops', 'groupWaitSeconds'], 5],
] as const;
/** When the shop's stock changes, after the start. */
const SELLS_DOWN_AFTER_MS = 15_000;
const RESTOCK_AFTER_MS = 25_000;

export async function runDemo(options: DemoOptions): Promise<void> {
  const { say, logger } = options;
  await checkReachable(options.databaseUrl, options.env.redisUrl);
  say(`PostgreSQL and Redis are reachable. Demo database: ${redactUrl(options.databaseUrl)} (recreated)`);

  await recreateDatabase(options.databaseUrl);
  await migrate(options.databaseUrl, logger);
  const platform = referencePlatform();
  const users = generateUsers(2_000, 7, { now: Date.now() });
  const client = new pg.Client({ connectionString: options.databaseUrl, application_name: 'forewarn-demo' });
  await client.connect();
  const configDir = await mkdtemp(join(tmpdir(), 'forewarn-demo-'));
  let traffic: LiveWriter | undefined;
  const timers: NodeJS.Timeout[] = [];
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  try {
    await createPlatformSchema(client, 'platform', { reset: true });
    await seedPlatform(client, 'platform', platform, users);
    const shop = await seedShop(
      client,
      'platform',
      users.map((u) => u.id),
      Date.now(),
    );
    const idle = idleAccounts(await loadConfigFile(options.env.configPath), Date.now());
    await seedIdleAccounts(client, 'platform', idle, Date.now());
    const started = Date.now();
    const outage: Scenario = {
      ...BROKEN,
      from: started + OUTAGE_AFTER_MS,
      to: started + OUTAGE_AFTER_MS + OUTAGE_FOR_MS,
      effect: { type: 'outage' },
    };
    const userRefs = users.map((u) => ({ id: u.id, region: u.region }));
    const rateScale = Math.min(
      MAX_RATE_SCALE,
      DEMO_TRAFFIC_LEVEL / trafficFactor(platform.dailyCycle, started),
    );
    const history = await copyAttempts(
      client,
      'platform',
      generateAttempts({
        platform,
        from: started - HISTORY_MS,
        to: started,
        seed: 1,
        users: userRefs,
        rateScale,
      }),
    );
    say(
      `Simulated platform: ${platform.channels.length} payment channels, ${platform.regions.length} regions, ` +
        `${users.length} users, ${history.toLocaleString('en-US')} attempts of history (last ${HISTORY_MS / 60_000} min).`,
    );
    const deadline = started + (options.timeoutMs ?? 200_000);
    traffic = startLiveWriter({
      db: client,
      schema: 'platform',
      // One lazy stream for the whole run: the writer reads it only as far as the clock has come.
      attempts: generateAttempts({
        platform,
        from: started,
        to: deadline,
        seed: 1_000,
        firstId: history + 1,
        scenarios: [outage],
        users: userRefs,
        rateScale,
      }),
      logger: logger.child({ component: 'demo' }),
    });
    say(
      `Live traffic is flowing. In ${OUTAGE_AFTER_MS / 1000} s, ${BROKEN.channel} breaks in ${BROKEN.region} ` +
        `for ${OUTAGE_FOR_MS / 1000} s (every payment there fails).`,
    );

    say(
      `The shop: ${SELLING_DOWN.name} (${SELLING_DOWN.stock} left, threshold ${SELLING_DOWN.threshold}, ` +
        `${shop.pendingOrders} pending orders) sells down to ${SELLING_DOWN.lowAt} in ${SELLS_DOWN_AFTER_MS / 1000} s; ` +
        `${RESTOCKED.name} is sold out with ${shop.subscribers} restock sign-ups and gets ${RESTOCKED.restockTo} units in ${RESTOCK_AFTER_MS / 1000} s.`,
    );
    timers.push(
      setTimeout(
        () => void setStock(client, 'platform', SELLING_DOWN.id, SELLING_DOWN.lowAt),
        SELLS_DOWN_AFTER_MS,
      ),
      setTimeout(
        () => void setStock(client, 'platform', RESTOCKED.id, RESTOCKED.restockTo),
        RESTOCK_AFTER_MS,
      ),
    );
    const configPath = await writeConfigVariant(
      options.env.configPath,
      [
        ...Object.entries(DEMO_TIMING).map(
          ([key, value]) => [['detectors', 'paymentHealth', key], value] as const,
        ),
        ...DEMO_SETTINGS,
      ],
      configDir,
    );
    say(
      `Starting the daemon (scheduler + workers) with ${options.env.configPath}, ticks every 5 s, ` +
        `confirmation ${DEMO_TIMING.confirmSeconds} s, resolution after ${DEMO_TIMING.resolveSeconds} s of health.`,
    );
    daemon = await startDaemon({
      env: {
        ...options.env,
        databaseUrl: options.databaseUrl,
        platformDatabaseUrl: options.databaseUrl,
        configPath,
        // Links in the demo's mail are signed with a throwaway secret unless one is configured.
        linkSecret: options.env.linkSecret ?? randomBytes(32).toString('base64url'),
      },
      logger,
      roles: ['scheduler', 'detection', 'notifications'],
    });

    const opened = await poll(client, deadline, (rows) => rows.find((r) => matches(r)));
    if (!opened) throw new Error('no incident opened in time; see the logs above');
    say(describeOpened(opened, outage.from));
    const warned = await pollSent(client, opened.id, 'payment-degraded', deadline);
    say(describeSent('Warnings', warned, options.env));
    const resolved = await poll(client, deadline, (rows) =>
      rows.find((r) => matches(r) && r.resolvedAt !== null),
    );
    if (!resolved) throw new Error('the incident did not resolve in time; see the logs above');
    say(
      `RESOLVED ${resolved.kind} on ${BROKEN.channel} in ${BROKEN.region} at ${resolved.resolvedAt!.toISOString()}, ` +
        `${Math.round((resolved.resolvedAt!.getTime() - outage.to) / 1000)} s after the outage ended: ` +
        `${percent(Number(resolved.resolveEvidence?.rate ?? 0))} failures over the last ${String(resolved.resolveEvidence?.windowSeconds)} s.`,
    );
    const recovered = await pollSent(client, opened.id, 'payment-recovered', deadline);
    say(describeSent('Recovery notices', recovered, options.env));
    // The resolved alert waits for the ops group (5 s) like the opened one did.
    const ops = await pollSent(client, opened.id, 'ops-incident-%', deadline);
    say(
      `Ops alerts (opened and resolved, with the numbers): ${ops.email} email(s) to the configured ops addresses.`,
    );
    await reportShop(client, deadline, options.env, say);
    await reportErrorSpikes(client, deadline, say);
    await reportCheckups(client, idle, deadline, say);
    const others = (await listIncidents(client, { limit: 100 })).filter(
      (r) => r.detector === PAYMENT_DETECTOR && !matches(r),
    );
    say(
      others.length === 0
        ? 'No other channel or region was flagged.'
        : `Also flagged: ${others.map(label).join('; ')}`,
    );
    say(
      `Look for yourself: DATABASE_URL=${redactUrl(options.databaseUrl)} npx forewarn incidents; ` +
        `the tables forewarn.incidents, forewarn.notifications and forewarn.inbox (in-app messages); ` +
        (options.env.smtpUrl
          ? `the mail at ${redactUrl(options.env.smtpUrl)}.`
          : `the emails as .eml files in ${resolve(options.env.outboxDir)}.`),
    );
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await daemon?.stop('demo finished');
    const written = await traffic?.stop();
    if (written !== undefined)
      say(
        `Live traffic stopped after ${written.inserted.toLocaleString('en-US')} attempts ` +
          `(${written.finished.toLocaleString('en-US')} updated in place to their outcome, ` +
          `${written.pending.toLocaleString('en-US')} still pending).`,
      );
    await client.end();
    await rm(configDir, { recursive: true, force: true });
  }
}

const PAYMENT_DETECTOR = 'payment-health';

function matches(r: IncidentRow): boolean {
  return (
    r.detector === PAYMENT_DETECTOR &&
    r.subject.channel === BROKEN.channel &&
    r.subject.region === BROKEN.region
  );
}

/** The shop's story: the low-stock notice to pending orders and the restock wave. */
async function reportShop(
  client: pg.Client,
  deadline: number,
  env: Env,
  say: (line: string) => void,
): Promise<void> {
  const low = await poll(client, deadline, (rows) =>
    rows.find(
      (r) => r.detector === 'inventory' && r.kind === 'low-stock' && r.subject.productId === SELLING_DOWN.id,
    ),
  );
  if (!low) throw new Error(`${SELLING_DOWN.id} was not found low in time; see the logs above`);
  const e = low.openEvidence as { stock?: number; salesPerDay?: number; pendingOrders?: number };
  say(
    `LOW STOCK ${SELLING_DOWN.name} at ${low.openedAt.toISOString()}: ${e.stock} left, ` +
      `${Number(e.salesPerDay ?? 0).toFixed(1)} sold a day, ${e.pendingOrders} pending orders.`,
  );
  say(
    describeSent(
      'Low-stock notices (with a restock-reminder link)',
      await pollSent(client, low.id, 'stock-low', deadline),
      env,
    ),
  );
  const restock = await poll(client, deadline, (rows) =>
    rows.find(
      (r) => r.detector === 'inventory' && r.kind === 'restock' && r.subject.productId === RESTOCKED.id,
    ),
  );
  if (!restock) throw new Error(`${RESTOCKED.id} was not found restocked in time; see the logs above`);
  const wave = await pollSent(client, restock.id, 'restock-alert', deadline);
  const users = await client.query<{ n: number }>(
    `SELECT count(DISTINCT user_id)::int AS n FROM forewarn.notifications WHERE incident_id = $1 AND kind = 'restock-alert'`,
    [restock.id],
  );
  say(
    `RESTOCKED ${RESTOCKED.name} at ${restock.openedAt.toISOString()} with ${RESTOCKED.restockTo} units: wave 1 ` +
      `reached ${users.rows[0]?.n ?? 0} of its subscribers, earliest sign-up first (at most one per unit).`,
  );
  say(describeSent('Restock alerts', wave, env));
}

/**
 * The security check-ups: those that go out now are sent by email and in-app; the one in quiet
 * hours waits, recorded with its reason and time.
 */
async function reportCheckups(
  client: pg.Client,
  accounts: readonly IdleAccount[],
  deadline: number,
  say: (line: string) => void,
): Promise<void> {
  type Row = { user_id: string; kind: string; channel: string; status: string; next_attempt_at: Date };
  const read = async () =>
    (
      await client.query<Row>(
        `SELECT user_id, kind, channel, status, next_attempt_at FROM forewarn.notifications
          WHERE category = 'security' AND user_id = ANY ($1::text[]) ORDER BY user_id, channel`,
        [accounts.map((a) => a.id)],
      )
    ).rows;
  const settled = (rows: Row[]) =>
    accounts.every((a) => {
      const own = rows.filter((r) => r.user_id === a.id);
      return own.length === 2 && own.every((r) => r.status === (a.heldUntil === null ? 'sent' : 'pending'));
    });
  let rows = await read();
  while (Date.now() < deadline && !settled(rows)) {
    await new Promise((r) => setTimeout(r, 500));
    rows = await read();
  }
  if (!settled(rows))
    throw new Error('the security check-ups were not sent (or held) in time; see the logs above');
  const now = Date.now();
  const told = accounts.map((a) => {
    const own = rows.filter((r) => r.user_id === a.id);
    const what = `${maskId(a.id)} idle ${a.idleDays} days (${a.locale}, ${localTime(now, a.timezone)}): ${own[0]!.kind}`;
    return a.heldUntil === null
      ? `${what} sent by ${own.map((r) => r.channel).join(' and ')}`
      : `${what} held by the quiet hours until ${localTime(own[0]!.next_attempt_at.getTime(), a.timezone)} (${own[0]!.next_attempt_at.toISOString()})`;
  });
  say(`SECURITY CHECK-UPS (account inactivity): ${told.join('; ')}.`);
}

/** Error-code spikes the watcher opened, with their ops alerts. */
async function reportErrorSpikes(
  client: pg.Client,
  deadline: number,
  say: (line: string) => void,
): Promise<void> {
  const spikes = (await listIncidents(client, { limit: 100 })).filter((r) => r.detector === 'error-spikes');
  if (spikes.length === 0) {
    say('No error-code spike was opened.');
    return;
  }
  for (const spike of spikes) {
    const e = spike.openEvidence as { countNow?: number; countBefore?: number; windowMinutes?: number };
    const ops = await pollSent(client, spike.id, 'ops-error-spike', deadline);
    say(
      `ERROR-CODE SPIKE (${spike.kind}) ${spike.subject.code}: ${e.countNow} in the last ${e.windowMinutes} min, ` +
        `usually ${Number(e.countBefore ?? 0).toFixed(1)}; ops alerted (${ops.email} email).`,
    );
  }
}

function label(r: IncidentRow): string {
  return `${r.subject.channel}/${r.subject.region} ${r.kind}`;
}

function describeOpened(r: IncidentRow, outageFrom: number): string {
  const e = r.openEvidence as {
    rate?: number;
    baseline?: number;
    attempts?: number;
    bad?: number;
    windowSeconds?: number;
  };
  return (
    `OPENED ${r.kind} incident on ${BROKEN.channel} in ${BROKEN.region} at ${r.openedAt.toISOString()}, ` +
    `${Math.round((r.openedAt.getTime() - outageFrom) / 1000)} s after the outage began: ` +
    `${e.bad}/${e.attempts} attempts failed in the last ${e.windowSeconds} s (${percent(e.rate ?? 0)}, normally ${percent(e.baseline ?? 0)}). ` +
    `Backup channels for ${BROKEN.region}: ${r.backupChannels.join(', ') || 'none'}.`
  );
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

async function poll(
  client: pg.Client,
  deadline: number,
  find: (rows: IncidentRow[]) => IncidentRow | undefined,
): Promise<IncidentRow | undefined> {
  while (Date.now() < deadline) {
    const found = find(await listIncidents(client, { limit: 100 }));
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  return undefined;
}

async function checkReachable(databaseUrl: string, redisUrl: string): Promise<void> {
  const admin = new URL(databaseUrl);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new ForewarnError(
      'FW_SERVICE_UNREACHABLE',
      `PostgreSQL is not reachable at ${redactUrl(admin.toString())} (${(error as Error).message}).\n` +
        `Start it with \`docker compose up -d postgres redis\` (see README.md), or on Debian with\n` +
        '`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, or set DATABASE_URL.',
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new ForewarnError(
      'FW_SERVICE_UNREACHABLE',
      `Redis is not reachable at ${redactUrl(redisUrl)} (${(error as Error).message}).\n` +
        'Start it with `docker compose up -d redis` (see README.md), or with\n' +
        '`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`, or set REDIS_URL.',
      { cause: error },
    );
  } finally {
    redis.disconnect();
  }
}

async function recreateDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
}

interface SentCounts {
  email: number;
  inapp: number;
  pending: number;
  failed: number;
  sample: Array<{ userId: string; channel: string; locale: string }>;
}

async function sentCounts(client: pg.Client, incidentId: string, kind: string): Promise<SentCounts> {
  const { rows } = await client.query<{ channel: string; status: string; n: number }>(
    `SELECT channel, status, count(*)::int AS n FROM forewarn.notifications
      WHERE incident_id = $1 AND kind LIKE $2 GROUP BY 1, 2`,
    [incidentId, kind],
  );
  const count = (channel: string | null, status: string) =>
    rows
      .filter((r) => (channel === null || r.channel === channel) && r.status === status)
      .reduce((n, r) => n + r.n, 0);
  const sample = await client.query<{ user_id: string; channel: string; locale: string }>(
    `SELECT user_id, channel, locale FROM forewarn.notifications
      WHERE incident_id = $1 AND kind LIKE $2 AND status = 'sent' AND user_id IS NOT NULL ORDER BY id LIMIT 3`,
    [incidentId, kind],
  );
  return {
    email: count('email', 'sent'),
    inapp: count('inapp', 'sent'),
    pending: count(null, 'pending') + count(null, 'sending'),
    failed: count(null, 'failed'),
    sample: sample.rows.map((r) => ({ userId: r.user_id, channel: r.channel, locale: r.locale })),
  };
}

/** Waits until the fan-out has recorded some and every recorded one has gone out. */
async function pollSent(
  client: pg.Client,
  incidentId: string,
  kind: string,
  deadline: number,
): Promise<SentCounts> {
  let last = await sentCounts(client, incidentId, kind);
  while (Date.now() < deadline && (last.email + last.inapp === 0 || last.pending > 0)) {
    await new Promise((r) => setTimeout(r, 500));
    last = await sentCounts(client, incidentId, kind);
  }
  return last;
}

function describeSent(what: string, counts: SentCounts, env: Env): string {
  const sample = counts.sample.map((s) => `${maskId(s.userId)} (${s.channel}, ${s.locale})`).join(', ');
  return (
    `${what} sent: ${counts.inapp} in-app, ${counts.email} email${env.smtpUrl ? '' : ' (written to the outbox)'}` +
    `${counts.failed > 0 ? `, ${counts.failed} failed` : ''}; e.g. ${sample || 'nobody'}.`
  );
}
