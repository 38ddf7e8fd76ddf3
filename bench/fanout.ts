// Benchmark: the fan-out of one incident to a large audience, through the real pipeline (fan-out
// job, BullMQ, notification workers, PostgreSQL), to the in-app inbox and to a local SMTP sink;
// next to two baselines: BullMQ processing no-op jobs, and nodemailer's pooled transport sending
// straight to the same sink.
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { ConfigStore } from '../lib/config/store.ts';
import { writeConfigVariant } from '../lib/config/variant.ts';
import { composeMail } from '../lib/channels/email.ts';
import { enqueueFanouts } from '../jobs/fanout-incident-event.ts';
import { createContext, type AppContext } from '../lib/context.ts';
import { emailMessageFor } from '../lib/channels/email-channel.ts';
import { fanOutCauseEvent } from '../lib/notifications/fanout.ts';
import { renderNotification } from '../lib/notifications/render.ts';
import { claimNotifications } from '../lib/notifications/store.ts';
import { migrate } from '../lib/db/migrate.ts';
import { readEnv } from '../lib/env.ts';
import { recordCauseChange } from '../lib/incidents/store.ts';
import { createLogger } from '../lib/logger.ts';
import { redisOptions } from '../lib/queue/redis.ts';
import { seedPlatform } from '../sim/load.ts';
import { generateUsers, referencePlatform, userIdFor } from '../sim/platform.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import { startDeliveryWorker } from '../workers/delivery.ts';
import { startFanoutWorker } from '../workers/fanout.ts';
import { benchRawNodemailer, pump, startSink } from './email.ts';
import {
  benchDatabase,
  figure,
  positiveIntFromEnv,
  positiveIntsFromEnv,
  profileCpu,
  timed,
  watchMemory,
  type BenchResult,
  type Figure,
  type MemoryPeaks,
} from './support.ts';
import { linkKeyring } from '../lib/links.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const execFileAsync = promisify(execFile);

export async function benchFanout(): Promise<BenchResult> {
  const figures: Figure[] = [];
  const noopCount = positiveIntFromEnv('BENCH_NOOP_COUNT', 100_000);
  const noop = await benchBullmqNoop(noopCount);
  figures.push(
    figure(`baseline: BullMQ, ${noopCount.toLocaleString('en-US')} no-op jobs`, noop.jobsPerSecond, 'jobs/s'),
  );

  const sizes = positiveIntsFromEnv('BENCH_FANOUT_SIZES', [25_000, 50_000, 100_000]);
  for (const audience of sizes) {
    const [run] = await fanOutsInFreshProcess([
      { audience: WARM_UP, channel: 'inapp', warmUp: true },
      { audience, channel: 'inapp' },
    ]);
    const users = `in-app to ${audience.toLocaleString('en-US')} users`;
    figures.push(
      figure(`${users}: all recorded in`, run!.seconds, 's'),
      figure(`${users}: rate`, audience / run!.seconds, 'recipients/s'),
      figure(`${users}: peak RSS`, run!.peakRssMb, 'MiB'),
      figure(`${users}: peak live heap`, run!.peakLiveHeapMb, 'MiB'),
      figure(`${users}: live heap after the run`, run!.liveHeapAfterMb, 'MiB'),
    );
  }

  const emailCount = positiveIntFromEnv('BENCH_EMAIL_COUNT', 20_000);
  const emailRounds = positiveIntFromEnv('BENCH_EMAIL_ROUNDS', 3);
  const tiny = await benchRawNodemailer(emailCount);
  figures.push(
    figure('context: raw nodemailer, small fixed ASCII message', tiny.messagesPerSecond, 'msgs/s'),
  );
  // One process warms both paths up, then alternates them, and each keeps its best round: this
  // machine's speed drifts by up to 30% between runs of the same code, and a process keeps
  // getting faster for a while as more of its code is compiled. Rounds run in pairs, so both
  // paths see the same drift and the same warmth.
  const pairs: FanoutOptions[] = Array.from({ length: emailRounds }, () => [
    { audience: emailCount, channel: 'email' as const },
    { audience: emailCount, channel: 'email' as const, mode: 'raw' as const },
  ]).flat();
  const runs = await fanOutsInFreshProcess([
    { audience: WARM_UP, channel: 'email', warmUp: true },
    { audience: WARM_UP, channel: 'email', mode: 'raw', warmUp: true },
    ...pairs,
  ]);
  const pipelineRuns = runs.filter((_, i) => i % 2 === 0);
  const rawRuns = runs.filter((_, i) => i % 2 === 1);
  const best = (of: FanoutRun[]) => Math.max(...of.map((r) => emailCount / r.seconds));
  const leastCpuMs = (of: FanoutRun[]) => Math.min(...of.map((r) => (1000 * r.cpuSeconds) / emailCount));
  const pipeline = best(pipelineRuns);
  const raw = best(rawRuns);
  // The first pipeline round's memory: later ones follow a baseline round, whose 20,000
  // composed messages leave the process's RSS grown.
  const { peakRssMb, peakLiveHeapMb } = pipelineRuns[0]!;
  const n = emailCount.toLocaleString('en-US');
  figures.push(figure(`baseline: raw nodemailer pool, the same ${n} emails`, raw, 'msgs/s'));
  figures.push(figure(`email to ${n} users through the pipeline`, pipeline, 'msgs/s'));
  figures.push(figure('email: pipeline rate / raw nodemailer rate', (100 * pipeline) / raw, '%'));
  // Both run in one process that the SMTP sink shares; its CPU time per email explains the rates.
  figures.push(figure('email: CPU per message, raw nodemailer (incl. sink)', leastCpuMs(rawRuns), 'ms'));
  figures.push(figure('email: CPU per message, pipeline (incl. sink)', leastCpuMs(pipelineRuns), 'ms'));
  figures.push(figure('email: peak RSS, pipeline', peakRssMb, 'MiB'));
  figures.push(figure('email: peak live heap, pipeline', peakLiveHeapMb, 'MiB'));
  return {
    name: 'fan-out: one incident to many users',
    figures,
    notes: [
      'targets: 100,000 in-app notices in under 10 s; email at 80% or more of raw nodemailer; memory flat as the audience grows',
      `each in-app fan-out runs in a fresh process after a ${WARM_UP.toLocaleString('en-US')}-user warm-up there; peak RSS is that process's`,
      `email, each round's pipeline rate / raw rate: ${pipelineRuns
        .map((r, i) => `${Math.round((100 * rawRuns[i]!.seconds) / r.seconds)}%`)
        .join(', ')}`,
      `email: both in one fresh process, warmed up with ${WARM_UP.toLocaleString('en-US')} each, then best of ${emailRounds} alternating rounds each; the baseline sends the very messages the pipeline sends (same recipients, locales, links, headers) with the same pool settings`,
    ],
  };
}

export const WARM_UP = 2_000;

/**
 * `fanOut` for each of `runs` in turn, in a process of its own (fanout-process.ts): peak RSS is
 * then the runs' own, not what earlier benchmarks left (a process's RSS never shrinks), and every
 * series starts from the same state. Returns the results of the runs that are not warm-ups.
 */
export async function fanOutsInFreshProcess(runs: FanoutOptions[]): Promise<FanoutRun[]> {
  const script = fileURLToPath(new URL('./fanout-process.ts', import.meta.url));
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', script, JSON.stringify(runs)],
    {
      maxBuffer: 64 * 1024 * 1024, // stderr too: a run that logs errors should show them, not die
    },
  );
  const results = JSON.parse(stdout.trim().split('\n').at(-1)!) as FanoutRun[];
  return results.filter((_, i) => !runs[i]!.warmUp);
}

/** BullMQ's own ceiling on this machine: adding and processing jobs that do nothing. */
async function benchBullmqNoop(count: number): Promise<{ jobsPerSecond: number }> {
  const prefix = `bench-noop-${process.pid}`;
  const queue = new Queue('noop', { connection: redisOptions(REDIS_URL), prefix });
  let done = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((resolve) => (finished = resolve));
  const worker = new Worker(
    'noop',
    async () => {
      if (++done === count) finished();
    },
    { connection: redisOptions(REDIS_URL), prefix, concurrency: 50, autorun: false },
  );
  for (let i = 0; i < count; i += 1_000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1_000, count - i) }, (_, j) => ({
        name: 'noop',
        data: { n: i + j },
        opts: { removeOnComplete: true },
      })),
    );
  }
  const { ms } = await timed(async () => {
    void worker.run();
    await allDone;
  });
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { jobsPerSecond: count / (ms / 1000) };
}

export interface FanoutOptions {
  audience: number;
  channel: 'inapp' | 'email';
  /** raw: the same emails, rendered beforehand, sent straight through nodemailer's pool. */
  mode?: 'pipeline' | 'raw';
  /** A warm-up run: never CPU-profiled (see profileCpu). */
  warmUp?: boolean;
  /**
   * The delivery policy with work to do (bench/policy.ts): preferences stored for 10% of the
   * audience (half of them opted out of the fan-out's category in-app) and an in-app cap of
   * POLICY_CAP a day. Without it, no preference rows and no caps. Both get the same history of
   * messages sent today (seedSentToday), so the tables are the same size either way.
   */
  policy?: boolean;
}

export interface FanoutRun extends MemoryPeaks {
  seconds: number;
  /** This process's CPU time (all threads) while it was timed. */
  cpuSeconds: number;
  /** The run's messages the policy withheld (recorded cancelled with a reason), capped ones included. */
  withheld: number;
}

/** Seeds `audience` users who all qualify, opens an incident, and times its fan-out to the end. */
export async function fanOut(options: FanoutOptions): Promise<FanoutRun> {
  const db = await benchDatabase(`forewarn_bench_fanout`);
  const dir = await mkdtemp(join(tmpdir(), 'forewarn-bench-'));
  const logger = createLogger({ level: 'error' });
  const sink = options.channel === 'email' ? await startSink() : undefined;
  const prefix = `bench-fanout-${process.pid}-${options.audience}-${options.channel}-${options.mode ?? 'pipeline'}`;
  const client = new pg.Client({ connectionString: db.url });
  try {
    await migrate(db.url, logger);
    await client.connect();
    await seedAudience(client, options.audience);
    if (options.policy !== undefined) await seedSentToday(client);
    if (options.policy) await seedPreferences(client);
    const configPath = await writeConfigVariant(
      'config/forewarn.yaml',
      [
        [['notifications', 'userChannels'], [options.channel]],
        [['notifications', 'batchSize'], 2_000],
        [['notifications', 'ops', 'emails'], []],
        [['workers', 'delivery', 'concurrency'], 4],
        [['notifications', 'caps'], options.policy ? { inapp: { perDay: POLICY_CAP } } : {}],
      ],
      dir,
    );
    const env = {
      ...readEnv({}),
      databaseUrl: db.url,
      platformDatabaseUrl: db.url,
      redisUrl: REDIS_URL,
      configPath,
      queuePrefix: prefix,
      smtpUrl: sink?.url,
      outboxDir: join(dir, 'outbox'),
      linkKeys: linkKeyring('bench-secret-bench-secret-bench-secret-0123'),
    };
    const store = await ConfigStore.open(configPath, logger);
    const ctx = await createContext(env, store, logger);
    await ctx.templates();
    const { eventId } = await recordCauseChange(client, {
      type: 'opened',
      detector: 'payment-health',
      subject: { channel: 'wechat_pay', region: 'CN-GD' },
      subjectKey: 'wechat_pay:CN-GD',
      kind: 'failures',
      at: Date.now(),
      evidence: {
        windowSeconds: 30,
        attempts: 150,
        bad: 150,
        rate: 1,
        lowerBound: 0.9,
        upperBound: 1,
        baseline: 0.03,
        threshold: 0.11,
        confidence: 0.9999,
        medianLatencyMs: null,
        baselineLatencyMs: null,
        users: 0,
        topErrorCodes: [],
      },
      backupChannels: ['alipay'],
    });
    // Stopped before the run's objects are released (the worker and the context are closed
    // after it), so that anything the run holds is counted.
    const memory = watchMemory();
    const label = `fanout-${options.channel}-${options.mode ?? 'pipeline'}-${options.audience}`;
    const profile = options.warmUp ? { stop: async () => undefined } : await profileCpu(label);
    let seconds: number;
    let cpuSeconds: number;
    const workers: Array<ReturnType<typeof startDeliveryWorker>> = [];
    if (options.mode === 'raw') {
      ({ seconds, cpuSeconds } = await sendRaw(ctx, eventId, sink!.url));
    } else {
      // No ops alerts here (ops.emails is empty), so no ops-alerts worker.
      workers.push(startFanoutWorker(ctx), startDeliveryWorker(ctx));
      const started = performance.now();
      const cpu = process.cpuUsage();
      await enqueueFanouts(ctx, [eventId]);
      // Done when the fan-out has finished and nothing is left to deliver. The check must not
      // load the database it measures (counting every row left, many times a second, costs
      // PostgreSQL more CPU than the deliveries do), so it stops at the first row left.
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const { rows } = await client.query<{ done: boolean }>(
          `SELECT (SELECT finished_at IS NOT NULL FROM forewarn.fanouts WHERE event_id = $1)
                  AND NOT EXISTS (SELECT 1 FROM forewarn.notifications WHERE status IN ('pending', 'sending')) AS done`,
          [eventId],
        );
        if (rows[0]!.done) break;
      }
      seconds = (performance.now() - started) / 1000;
      cpuSeconds = cpuSecondsSince(cpu);
    }
    const peaks = memory.stop();
    await profile.stop();
    await Promise.all(workers.map((w) => w.close()));
    if (sink && sink.received() !== options.audience) {
      throw new Error(`the sink received ${sink.received()} of ${options.audience} messages`);
    }
    const redis = new Redis(REDIS_URL);
    await redis.eval(
      "for _, k in ipairs(redis.call('keys', ARGV[1])) do redis.call('del', k) end",
      0,
      `${prefix}:*`,
    );
    redis.disconnect();
    await ctx.close();
    const { rows } = await client.query<{ withheld: number }>(
      `SELECT count(*)::int AS withheld FROM forewarn.notifications WHERE cause <> 'bench:earlier' AND status = 'cancelled'`,
    );
    return { seconds, cpuSeconds, withheld: rows[0]!.withheld, ...peaks };
  } finally {
    await client.end();
    await sink?.close();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The baseline for the pipeline's email rate: records the fan-out's notifications, renders each
 * into exactly the message the delivery job would hand to nodemailer (untimed), then times
 * nodemailer's pooled transport sending them with the same pool settings and nothing else.
 */
async function sendRaw(
  ctx: AppContext,
  eventId: string,
  smtpUrl: string,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const ids: string[] = [];
  await fanOutCauseEvent(ctx, eventId, async (created) => void ids.push(...created));
  const { claimed } = await claimNotifications(ctx.db, ids, {
    token: randomUUID(),
    worker: ctx.workerId,
    claimSeconds: 3_600,
    maxAttempts: ctx.config().notifications.retry.maxAttempts,
  });
  const templates = await ctx.templates();
  const config = ctx.config().notifications.email;
  const mails = claimed.map((n) =>
    composeMail(config.from, emailMessageFor(n, renderNotification(templates, n), config.messageIdDomain)),
  );
  const transport = nodemailer.createTransport({
    pool: true,
    url: smtpUrl,
    maxConnections: config.maxConnections,
    maxMessages: 100,
    logger: false,
  });
  try {
    const cpu = process.cpuUsage();
    const rate = await pump(mails.length, config.maxConnections * 2, (i) => transport.sendMail(mails[i]!));
    return { seconds: mails.length / rate, cpuSeconds: cpuSecondsSince(cpu) };
  } finally {
    transport.close();
  }
}

function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}

const SEED_CHUNK = 10_000;

/** `count` active users in CN-GD, each with a succeeded wechat_pay attempt an hour ago. */
export async function seedAudience(client: pg.Client, count: number): Promise<void> {
  await createPlatformSchema(client, 'platform', { reset: true });
  const platform = referencePlatform();
  // In chunks, so that seeding does not leave the process's RSS grown with the audience.
  for (let start = 0; start < count; start += SEED_CHUNK) {
    const chunk = generateUsers(Math.min(SEED_CHUNK, count - start), 1 + start, { now: Date.now() }).map(
      (u, i) => {
        const id = userIdFor(start + i);
        const domain = u.email?.split('@')[1] ?? 'example.com';
        return { ...u, id, region: 'CN-GD', status: 'active' as const, email: `${id}@${domain}` };
      },
    );
    await seedPlatform(client, 'platform', platform, chunk);
  }
  await client.query(
    `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at)
     SELECT row_number() OVER (), id, 'wechat_pay', 'CN-GD', 'succeeded', 1500, now() - interval '1 hour'
       FROM platform.users`,
  );
  await client.query('ANALYZE');
}

/** The in-app cap a day when the bench runs with the policy (options.policy). */
export const POLICY_CAP = 50;

/**
 * Messages sent in-app today, before the fan-out, so that the caps' count finds rows: 3 each
 * to one user in 10, and POLICY_CAP each to one in 1,000 (whose fan-out message is then capped).
 * Sent a minute ago, so that they fall in every user's local day whatever the zone.
 */
async function seedSentToday(client: pg.Client): Promise<void> {
  await client.query(
    `INSERT INTO forewarn.notifications
       (dedupe_key, cause, kind, channel, audience, user_id, locale, data, category, status, attempts, sent_at, finished_at)
     SELECT 'bench:earlier:' || u.id || ':' || k, 'bench:earlier', 'payment-degraded', 'inapp', 'user',
            u.id, 'zh-CN', '{}'::jsonb, 'service', 'sent', 1, now() - interval '1 minute', now() - interval '1 minute'
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM platform.users) u
       CROSS JOIN LATERAL generate_series(1, CASE WHEN u.n % 1000 = 7 THEN $1::int WHEN u.n % 10 = 5 THEN 3 ELSE 0 END) AS k`,
    [POLICY_CAP],
  );
  await client.query('ANALYZE forewarn.notifications');
}

/**
 * Stored preferences for one user in 10: half of them opted out of service messages in-app (the
 * fan-out's category and channel: withheld), the other half opted in explicitly.
 */
async function seedPreferences(client: pg.Client): Promise<void> {
  await client.query(
    `INSERT INTO forewarn.preferences (user_id, category, channel, opted_out, source)
     SELECT id, 'service', 'inapp', n % 20 = 0, 'api'
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM platform.users) u
      WHERE n % 10 = 0`,
  );
  await client.query('ANALYZE forewarn.preferences');
}
