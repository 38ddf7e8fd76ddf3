// Helpers for the notification pipeline's integration tests: config copies with a few keys
// changed, an in-process pipeline (context, notification workers, detector ticks), an
// independent oracle of who must be warned, readers for forewarn's notification tables, the
// `forewarn` command as a child process, and the BullMQ keys of one test prefix.
import { runForewarn } from './cli.ts';
import { readFile, writeFile } from 'node:fs/promises';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import { parse, stringify } from 'yaml';
import { runTickAndDispatch } from '../../jobs/detect.ts';
import { paymentHealth } from '../../lib/detection/payment-health-tick.ts';
import { ConfigStore } from '../../lib/config/store.ts';
import { createContext, type AppContext } from '../../lib/context.ts';
import type { TickResult } from '../../lib/detection/payment-health-tick.ts';
import { readEnv } from '../../lib/env.ts';
import type { recordCauseChange } from '../../lib/incidents/store.ts';
import { copyAttempts } from '../../sim/load.ts';
import type { SimUser } from '../../sim/platform.ts';
import type { SimAttempt } from '../../sim/traffic.ts';
import { startDeliveryWorker } from '../../workers/delivery.ts';
import { startFanoutWorker } from '../../workers/fanout.ts';
import { startOpsAlertsWorker } from '../../workers/ops-alerts.ts';
import { SHIPPED_CONFIG, type DaemonEnv } from './daemon.ts';
import { PLATFORM_SCHEMA } from './platform.ts';
import { captureLogs, REDIS_URL, waitFor } from './services.ts';
import { linkKeyring } from '../../lib/links.ts';

export const SECOND = 1_000;
export const MINUTE = 60_000;
export const DAY = 86_400_000;
/** Signs the links in messages; set so that no process warns about a random secret. */
export const LINK_SECRET = 'test-link-secret-0123456789abcdef0123456789';
export const LINK_KEYS = linkKeyring(LINK_SECRET);
export const OPS_EMAIL = 'ops@example.com';

/** `forewarn start`'s environment plus the notification pipeline's variables. */
export type NotificationDaemonEnv = DaemonEnv & {
  PLATFORM_DATABASE_URL?: string;
  SMTP_URL?: string;
  FOREWARN_LINK_SECRET?: string;
  FOREWARN_OUTBOX?: string;
};

type Overrides = { [key: string]: unknown };

/**
 * Writes the shipped config to `file` with `overrides` merged in (objects key by key, anything
 * else replaced), so that a renamed key fails loudly at load instead of being ignored.
 */
export async function writeConfigWith(file: string, overrides: Overrides): Promise<string> {
  const shipped = parse(await readFile(SHIPPED_CONFIG, 'utf8')) as Overrides;
  await writeFile(file, stringify(merge(shipped, overrides, '')));
  return file;
}

function merge(base: Overrides, overrides: Overrides, path: string): Overrides {
  const out: Overrides = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const where = path ? `${path}.${key}` : key;
    if (!(key in base)) throw new Error(`writeConfigWith: ${where} is not a key of ${SHIPPED_CONFIG}`);
    const current = base[key];
    out[key] = isObject(value) && isObject(current) ? merge(current, value, where) : (value as unknown);
  }
  return out;
}

function isObject(value: unknown): value is Overrides {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// The pipeline in this process

export interface InProcessPipeline {
  ctx: AppContext;
  /** The notification workers (fan-out, delivery, ops alerts), when started. */
  workers: Worker[];
  logs: ReturnType<typeof captureLogs>;
  close(): Promise<void>;
}

/**
 * A context as the daemon builds it (lib/context.ts) and, unless `worker: false`, the workers
 * of the notifications role (workers/fanout.ts, delivery.ts, ops-alerts.ts) on the test's queue
 * prefix.
 */
export async function startInProcess(options: {
  databaseUrl: string;
  platformDatabaseUrl?: string;
  platformSchema?: string;
  prefix: string;
  configPath: string;
  smtpUrl?: string;
  /** FOREWARN_PUBLIC_URL: the base of the links messages carry. */
  publicUrl?: string;
  worker?: boolean;
}): Promise<InProcessPipeline> {
  const logs = captureLogs('info');
  const env = readEnv({
    DATABASE_URL: options.databaseUrl,
    PLATFORM_DATABASE_URL: options.platformDatabaseUrl,
    PLATFORM_SCHEMA: options.platformSchema,
    REDIS_URL,
    FOREWARN_QUEUE_PREFIX: options.prefix,
    FOREWARN_CONFIG: options.configPath,
    SMTP_URL: options.smtpUrl,
    FOREWARN_LINK_SECRET: LINK_SECRET,
    FOREWARN_PUBLIC_URL: options.publicUrl,
    LOG_LEVEL: 'info',
  });
  const ctx = await createContext(env, await ConfigStore.open(options.configPath, logs.logger), logs.logger);
  const workers =
    options.worker === false
      ? []
      : [startFanoutWorker(ctx), startDeliveryWorker(ctx), startOpsAlertsWorker(ctx)];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    ctx,
    workers,
    logs,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await ctx.close();
    },
  };
}

/**
 * Runs detector ticks every `stepMs` from `from` (through runTickAndDispatch, which also queues
 * the fan-out of each recorded event) until a tick records a change of `type`; returns that tick.
 */
export async function tickUntil(
  ctx: AppContext,
  type: 'opened' | 'resolved',
  range: { from: number; to: number; stepMs: number },
): Promise<{ tickAt: number; result: TickResult; ticks: number }> {
  let ticks = 0;
  for (let tickAt = range.from; tickAt <= range.to; tickAt += range.stepMs) {
    const result = await runTickAndDispatch(paymentHealth.run, ctx, tickAt);
    ticks++;
    if (result.outcome !== 'evaluated') {
      throw new Error(`tick at ${new Date(tickAt).toISOString()} was ${result.outcome}`);
    }
    if (result.recorded.some((r) => r.change.type === type)) return { tickAt, result, ticks };
  }
  throw new Error(
    `no ${type} change between ${new Date(range.from).toISOString()} and ${new Date(range.to).toISOString()}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Who must hear about it, computed from the generated data, independently of forewarn's SQL

export interface AudienceRule {
  channel: string;
  region: string;
  /** The incident's opening. */
  at: number;
  stuckWithinMinutes: number;
  usedWithinDays: number;
}

/**
 * The users the rule targets: active users of the region with a succeeded attempt on
 * the channel within `usedWithinDays`, or a pending or timed-out one within
 * `stuckWithinMinutes`, before `at` (inclusive). Sorted by id.
 */
export function targetedUsers(
  users: readonly SimUser[],
  attempts: Iterable<SimAttempt>,
  rule: AudienceRule,
): SimUser[] {
  const qualifying = new Set<string>();
  const usedFrom = rule.at - rule.usedWithinDays * DAY;
  const stuckFrom = rule.at - rule.stuckWithinMinutes * MINUTE;
  for (const a of attempts) {
    if (a.channelId !== rule.channel || a.createdAt > rule.at) continue;
    if (a.status === 'succeeded' && a.createdAt >= usedFrom) qualifying.add(a.userId);
    if ((a.status === 'pending' || a.status === 'timeout') && a.createdAt >= stuckFrom)
      qualifying.add(a.userId);
  }
  return users
    .filter((u) => u.status === 'active' && u.region === rule.region && qualifying.has(u.id))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A user row with sensible defaults: active, in CN-GD, zh-CN, with an address named after the id. */
export function user(id: string, overrides: Partial<SimUser> = {}): SimUser {
  return {
    id,
    email: `${id}@example.com`,
    locale: 'zh-CN',
    region: 'CN-GD',
    timezone: 'Asia/Shanghai',
    status: 'active',
    lastActiveAt: Date.UTC(2026, 0, 1),
    createdAt: Date.UTC(2024, 0, 1),
    ...overrides,
  };
}

/** One attempt; ids are the caller's to keep unique. */
export function attempt(
  id: number,
  userId: string,
  channelId: string,
  status: SimAttempt['status'],
  createdAt: number,
  region = 'CN-GD',
): SimAttempt {
  return {
    id,
    userId,
    channelId,
    region,
    status,
    errorCode: status === 'failed' ? 'SYSTEMERROR' : status === 'timeout' ? 'GATEWAY_TIMEOUT' : null,
    latencyMs: status === 'succeeded' ? 1_500 : null,
    createdAt,
    finishedAt: null,
  };
}

/** Adds attempts to the platform's payment_attempts with COPY. */
export async function insertAttempts(
  pool: pg.Pool,
  attempts: Iterable<SimAttempt>,
  schema = PLATFORM_SCHEMA,
): Promise<number> {
  const client = await pool.connect();
  try {
    return await copyAttempts(client, schema, attempts);
  } finally {
    client.release();
  }
}

// ---------------------------------------------------------------------------------------------
// forewarn's notification tables

export interface NotificationRecord {
  id: string;
  dedupe_key: string;
  incident_id: string | null;
  kind: string;
  channel: 'email' | 'inapp';
  audience: 'user' | 'ops';
  user_id: string | null;
  address: string | null;
  locale: string;
  data: Record<string, unknown>;
  status: 'pending' | 'sending' | 'sent' | 'failed' | 'cancelled';
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  sent_at: Date | null;
}

export async function readNotifications(db: pg.Pool): Promise<NotificationRecord[]> {
  const { rows } = await db.query<NotificationRecord>(
    `SELECT id, dedupe_key, incident_id, kind, channel, audience, user_id, address, locale, data, status,
            attempts, next_attempt_at, last_error, sent_at
       FROM forewarn.notifications ORDER BY id`,
  );
  return rows;
}

export interface InboxRecord {
  notification_id: string;
  user_id: string;
  kind: string;
  title: string;
  body: string;
  link: string | null;
}

export async function readInbox(db: pg.Pool): Promise<InboxRecord[]> {
  const { rows } = await db.query<InboxRecord>(
    'SELECT notification_id, user_id, kind, title, body, link FROM forewarn.inbox ORDER BY id',
  );
  return rows;
}

/** Notifications by status, and whether every incident event's fan-out finished. */
export async function pipelineProgress(db: pg.Pool): Promise<{
  total: number;
  byStatus: Record<string, number>;
  undispatchedEvents: number;
  events: number;
}> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM forewarn.notifications GROUP BY status',
  );
  const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.n]));
  const events = await db.query<{ events: number; undispatched: number }>(
    `SELECT count(*)::int AS events, count(*) FILTER (WHERE dispatched_at IS NULL)::int AS undispatched
       FROM forewarn.incident_events`,
  );
  return {
    total: rows.reduce((sum, r) => sum + r.n, 0),
    byStatus,
    undispatchedEvents: events.rows[0]!.undispatched,
    events: events.rows[0]!.events,
  };
}

/**
 * Waits until `events` incident events exist, every one of them is fanned out, and no
 * notification is waiting or being sent.
 */
export async function waitForPipelineIdle(
  db: pg.Pool,
  events: number,
  timeoutMs = 30_000,
): Promise<Awaited<ReturnType<typeof pipelineProgress>>> {
  let last: Awaited<ReturnType<typeof pipelineProgress>> | undefined;
  try {
    return await waitFor(
      `${events} incident event(s) fanned out and every notification sent, failed or cancelled`,
      async () => {
        last = await pipelineProgress(db);
        const open = (last.byStatus.pending ?? 0) + (last.byStatus.sending ?? 0);
        return last.events >= events && last.undispatchedEvents === 0 && open === 0 ? last : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify(last)}`);
  }
}

/** Occurrences of each value. */
export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** The values that occur more than once, with their counts. */
export function duplicates<T>(items: Iterable<T>, key: (item: T) => string): Array<[string, number]> {
  return [...countBy(items, key)].filter(([, n]) => n > 1);
}

// ---------------------------------------------------------------------------------------------
// The command line

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** `node bin/forewarn.js ...args` with a clean environment plus `env`. */
export function forewarnCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<CliResult> {
  return runForewarn(args, {
    env: { REDIS_URL, LOG_LEVEL: 'warn', FOREWARN_LINK_SECRET: LINK_SECRET, ...env },
    timeoutMs,
  });
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Every key under the test's BullMQ prefix. */
export async function keysUnder(prefix: string): Promise<string[]> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    return keys;
  } finally {
    redis.disconnect();
  }
}

// One atomic step, as FLUSHALL is: no worker can take a job between the check and the deletion.
// ARGV: key pattern, wait list, '1' to flush only if a waiting job's id starts with ARGV[4].
const FLUSH_SCRIPT = `
local waiting = 0
for _, id in ipairs(redis.call('LRANGE', ARGV[2], 0, -1)) do
  if string.sub(id, 1, string.len(ARGV[4])) == ARGV[4] then waiting = waiting + 1 end
end
if ARGV[3] == '1' and waiting == 0 then return {-1, 0} end
local cursor = '0'
local deleted = 0
repeat
  local found = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = found[1]
  for _, key in ipairs(found[2]) do deleted = deleted + redis.call('DEL', key) end
until cursor == '0'
return {deleted, waiting}`;

/**
 * What FLUSHALL does to one deployment, without touching anyone else's keys on a shared server:
 * deletes every key under `prefix`, atomically. With `onlyIfWaiting` (a job id prefix such as
 * "deliver@"), does nothing and returns null unless such a job is waiting in `queue`, so that a
 * test knows work was lost. Returns the keys deleted and the matching jobs that were waiting.
 */
export async function flushPrefix(
  prefix: string,
  options: { queue?: string; onlyIfWaiting?: string } = {},
): Promise<{ deleted: number; waiting: number } | null> {
  const redis = new Redis(REDIS_URL);
  try {
    const [deleted, waiting] = (await redis.eval(
      FLUSH_SCRIPT,
      0,
      `${prefix}:*`,
      `${prefix}:${options.queue ?? 'delivery'}:wait`,
      options.onlyIfWaiting === undefined ? '0' : '1',
      options.onlyIfWaiting ?? '',
    )) as [number, number];
    return deleted < 0 ? null : { deleted, waiting };
  } finally {
    redis.disconnect();
  }
}

/**
 * A payment incident's opening on `channel` in `region` as the detector records it (every
 * attempt of its 30 s window failed; alipay its backup): the fan-out reads subject, kind, time
 * and backups, and only ops mail shows the numbers.
 */
export function paymentIncidentOpened(
  channel = 'wechat_pay',
  region = 'CN-GD',
): Parameters<typeof recordCauseChange>[1] {
  return {
    type: 'opened',
    detector: 'payment-health',
    subject: { channel, region },
    subjectKey: `${channel}:${region}`,
    kind: 'failures',
    at: Date.now(),
    evidence: { windowSeconds: 30, attempts: 120, bad: 120, rate: 1, baseline: 0.03 },
    backupChannels: ['alipay'],
  } as unknown as Parameters<typeof recordCauseChange>[1];
}
