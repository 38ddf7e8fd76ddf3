// Benchmark: the fan-out of one incident to a large audience, through the real pipeline (fan-out
// job, BullMQ, notification workers, PostgreSQL), to the in-app inbox and to a local SMTP sink;
// next to two baselines: BullMQ processing no-op jobs, and nodemailer's pooled transport sending
// straight to the same sink.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { ConfigStore } from '../lib/config/store.ts';
import { writeConfigVariant } from '../lib/config/variant.ts';
import { createContext } from '../lib/context.ts';
import { migrate } from '../lib/db/migrate.ts';
import { readEnv } from '../lib/env.ts';
import { recordIncidentChange } from '../lib/incidents/store.ts';
import { createLogger } from '../lib/logger.ts';
import { redisOptions } from '../lib/queue/redis.ts';
import { seedPlatform } from '../sim/load.ts';
import { generateUsers, referencePlatform } from '../sim/platform.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import { startNotificationsWorker } from '../workers/notifications.ts';
import { benchRawNodemailer } from './email.ts';
import { benchDatabase, figure, timed, type BenchResult, type Figure } from './support.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function benchFanout(): Promise<BenchResult> {
  const figures: Figure[] = [];
  const noopCount = Number(process.env.BENCH_NOOP_COUNT ?? 100_000);
  const noop = await benchBullmqNoop(noopCount);
  figures.push(
    figure(`baseline: BullMQ, ${noopCount.toLocaleString('en-US')} no-op jobs`, noop.jobsPerSecond, 'jobs/s'),
  );

  const sizes = (process.env.BENCH_FANOUT_SIZES ?? '25000,50000,100000').split(',').map(Number);
  for (const audience of sizes) {
    const run = await fanOut({ audience, channel: 'inapp' });
    figures.push(
      figure(`in-app to ${audience.toLocaleString('en-US')} users: all recorded in`, run.seconds, 's'),
    );
    figures.push(
      figure(
        `in-app to ${audience.toLocaleString('en-US')} users: rate`,
        audience / run.seconds,
        'recipients/s',
      ),
    );
    figures.push(
      figure(`in-app to ${audience.toLocaleString('en-US')} users: peak RSS`, run.peakRssMb, 'MiB'),
    );
  }

  const emailCount = Number(process.env.BENCH_EMAIL_COUNT ?? 20_000);
  const raw = await benchRawNodemailer(emailCount);
  figures.push(
    figure(
      `baseline: raw nodemailer pool, ${emailCount.toLocaleString('en-US')} messages`,
      raw.messagesPerSecond,
      'msgs/s',
    ),
  );
  const email = await fanOut({ audience: emailCount, channel: 'email' });
  figures.push(
    figure(
      `email to ${emailCount.toLocaleString('en-US')} users through the pipeline`,
      emailCount / email.seconds,
      'msgs/s',
    ),
  );
  figures.push(
    figure(
      'email: pipeline rate / raw nodemailer rate',
      (100 * emailCount) / email.seconds / raw.messagesPerSecond,
      '%',
    ),
  );
  figures.push(figure('email: peak RSS', email.peakRssMb, 'MiB'));
  return {
    name: 'fan-out: one incident to many users',
    figures,
    notes: [
      'targets: 100,000 in-app notices in under 10 s; email at 80% or more of raw nodemailer; memory flat as the audience grows',
    ],
  };
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

interface FanoutRun {
  seconds: number;
  peakRssMb: number;
}

/** Seeds `audience` users who all qualify, opens an incident, and times its fan-out to the end. */
export async function fanOut(options: { audience: number; channel: 'inapp' | 'email' }): Promise<FanoutRun> {
  const db = await benchDatabase(`forewarn_bench_fanout`);
  const dir = await mkdtemp(join(tmpdir(), 'forewarn-bench-'));
  const logger = createLogger({ level: 'error' });
  const sink = options.channel === 'email' ? await startSink() : undefined;
  const prefix = `bench-fanout-${process.pid}-${options.audience}-${options.channel}`;
  const client = new pg.Client({ connectionString: db.url });
  try {
    await migrate(db.url, logger);
    await client.connect();
    await seedAudience(client, options.audience);
    const configPath = await writeConfigVariant(
      'config/forewarn.yaml',
      [
        [['notifications', 'userChannels'], [options.channel]],
        [['notifications', 'batchSize'], 2_000],
        [['notifications', 'ops', 'emails'], []],
        [['workers', 'notifications', 'concurrency'], 4],
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
      linkSecret: 'bench-secret-bench-secret-bench-secret-0123',
    };
    const store = await ConfigStore.open(configPath, logger);
    const ctx = createContext(env, store, logger);
    await ctx.templates();
    const { eventId } = await recordIncidentChange(client, {
      type: 'opened',
      detector: 'payment-health',
      subject: { channel: 'wechat_pay', region: 'CN-GD' },
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
        meanLatencyMs: null,
      },
      backupChannels: ['alipay'],
    });
    const worker = startNotificationsWorker(ctx);
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const started = performance.now();
    await ctx.queues.enqueue('fanout-incident-event', { eventId }, { jobId: `fanout@${eventId}` });
    // Done when the fan-out has finished and nothing is left to deliver (a partial-index count,
    // cheap enough to ask often without slowing what is measured).
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const { rows } = await client.query<{ finished: boolean; left: number }>(
        `SELECT (SELECT finished_at IS NOT NULL FROM forewarn.fanouts WHERE event_id = $1) AS finished,
                (SELECT count(*)::int FROM forewarn.notifications WHERE status IN ('pending', 'sending')) AS left`,
        [eventId],
      );
      if (rows[0]!.finished && rows[0]!.left === 0) break;
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    await worker.close();
    await new Redis(REDIS_URL).eval(
      "for _, k in ipairs(redis.call('keys', ARGV[1])) do redis.call('del', k) end",
      0,
      `${prefix}:*`,
    );
    await ctx.close();
    return { seconds, peakRssMb: peakRss / 1024 / 1024 };
  } finally {
    await client.end();
    await sink?.close();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `count` active users in CN-GD, each with a succeeded wechat_pay attempt an hour ago. */
export async function seedAudience(client: pg.Client, count: number): Promise<void> {
  await createPlatformSchema(client, 'platform', { reset: true });
  const users = generateUsers(count, 1, { now: Date.now() }).map((u) => ({
    ...u,
    region: 'CN-GD',
    status: 'active' as const,
    email: u.email ?? `${u.id}@example.com`,
  }));
  await seedPlatform(client, 'platform', referencePlatform(), users);
  await client.query(
    `INSERT INTO platform.payment_attempts (id, user_id, channel_id, region, status, latency_ms, created_at)
     SELECT row_number() OVER (), id, 'wechat_pay', 'CN-GD', 'succeeded', 1500, now() - interval '1 hour'
       FROM platform.users`,
  );
  await client.query('ANALYZE');
}

async function startSink(): Promise<{ url: string; close(): Promise<void> }> {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => callback());
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `smtp://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
