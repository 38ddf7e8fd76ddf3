// Benchmark: email delivery alone. Recorded email notifications are queued as the fan-out queues
// them and delivered by the delivery worker (claims, render, the pooled sender, group-committed
// sent marks) to a local SMTP sink; next to the same messages, rendered beforehand, sent straight
// through nodemailer's pool with the same settings. Unlike `fanout`, no fan-out runs, so it
// measures delivery whatever the state of the fan-out.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { enqueueDeliveries } from '../jobs/deliver-notifications.ts';
import { composeMail, messageIdFor } from '../lib/channels/email.ts';
import { ConfigStore } from '../lib/config/store.ts';
import { writeConfigVariant } from '../lib/config/variant.ts';
import { createContext, type AppContext } from '../lib/context.ts';
import { migrate } from '../lib/db/migrate.ts';
import { readEnv } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { renderNotification } from '../lib/notifications/render.ts';
import { insertNotifications, type NotificationDraft } from '../lib/notifications/store.ts';
import { templateKinds } from '../templates/kinds.ts';
import { startDeliveryWorker } from '../workers/delivery.ts';
import { pump, startSink } from './email.ts';
import { benchDatabase, figure, positiveIntFromEnv, type BenchResult } from './support.ts';
import { linkKeyring } from '../lib/links.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const WARM_UP = 2_000;

export async function benchEmailDelivery(): Promise<BenchResult> {
  const count = positiveIntFromEnv('BENCH_EMAIL_COUNT', 10_000);
  const rounds = positiveIntFromEnv('BENCH_EMAIL_ROUNDS', 3);
  const db = await benchDatabase(`forewarn_bench_delivery_${process.pid}`);
  const dir = await mkdtemp(join(tmpdir(), 'forewarn-bench-delivery-'));
  const logger = createLogger({ level: 'error' });
  const sink = await startSink();
  const prefix = `bench-delivery-${process.pid}`;
  const client = new pg.Client({ connectionString: db.url });
  let ctx: AppContext | undefined;
  try {
    await migrate(db.url, logger);
    await client.connect();
    const configPath = await writeConfigVariant(
      'config/forewarn.yaml',
      [
        [['notifications', 'ops', 'emails'], []],
        [['workers', 'delivery', 'concurrency'], 4],
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
      smtpUrl: sink.url,
      outboxDir: join(dir, 'outbox'),
      linkKeys: linkKeyring('bench-secret-bench-secret-bench-secret-0123'),
    };
    ctx = await createContext(env, await ConfigStore.open(configPath, logger), logger);
    await ctx.templates();
    const worker = startDeliveryWorker(ctx);
    const pipelineRuns: Run[] = [];
    const rawRuns: Run[] = [];
    try {
      let round = 0;
      const run = async (n: number, mode: 'pipeline' | 'raw') => {
        round++;
        await client.query('TRUNCATE forewarn.notifications, forewarn.inbox CASCADE');
        const ids = await insertNotifications(client, drafts(round, n));
        const before = sink.received();
        const result =
          mode === 'pipeline'
            ? await viaPipeline(ctx!, client, ids, round)
            : await viaRaw(ctx!, ids, sink.url);
        if (sink.received() - before !== n)
          throw new Error(`the sink received ${sink.received() - before} of ${n}`);
        return result;
      };
      await run(WARM_UP, 'pipeline');
      await run(WARM_UP, 'raw');
      for (let i = 0; i < rounds; i++) {
        pipelineRuns.push(await run(count, 'pipeline'));
        rawRuns.push(await run(count, 'raw'));
      }
    } finally {
      await worker.close();
    }
    const best = (of: Run[]) => Math.max(...of.map((r) => count / r.seconds));
    const leastCpuMs = (of: Run[]) => Math.min(...of.map((r) => (1000 * r.cpuSeconds) / count));
    const n = count.toLocaleString('en-US');
    const pipeline = best(pipelineRuns);
    const raw = best(rawRuns);
    return {
      name: 'email delivery: recorded notifications through the delivery worker',
      figures: [
        figure(`baseline: raw nodemailer pool, the same ${n} emails`, raw, 'msgs/s'),
        figure(`email to ${n} users through delivery`, pipeline, 'msgs/s'),
        figure('email: delivery rate / raw nodemailer rate', (100 * pipeline) / raw, '%'),
        figure('email: CPU per message, raw nodemailer (incl. sink)', leastCpuMs(rawRuns), 'ms'),
        figure('email: CPU per message, delivery (incl. sink)', leastCpuMs(pipelineRuns), 'ms'),
      ],
      notes: [
        `delivery rounds: ${pipelineRuns.map((r) => Math.round(count / r.seconds)).join(', ')} msgs/s; raw rounds: ${rawRuns.map((r) => Math.round(count / r.seconds)).join(', ')} msgs/s`,
        `one process, warmed up with ${WARM_UP.toLocaleString('en-US')} each, then best of ${rounds} alternating rounds; the worker runs 4 jobs at once, as the fanout bench's`,
      ],
    };
  } finally {
    await ctx?.close();
    const redis = new Redis(REDIS_URL);
    await redis.eval(
      "for _, k in ipairs(redis.call('keys', ARGV[1])) do redis.call('del', k) end",
      0,
      `${prefix}:*`,
    );
    redis.disconnect();
    await client.end();
    await sink.close();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

interface Run {
  seconds: number;
  cpuSeconds: number;
}

/** `n` payment warnings by email, each to its own user, as the fan-out records them. */
function drafts(round: number, n: number): NotificationDraft[] {
  const sample = templateKinds['payment-degraded'].sample;
  return Array.from({ length: n }, (_, i) => {
    const userId = `u${round}-${String(i).padStart(7, '0')}`;
    return {
      dedupeKey: `cause:bench-${round}:payment-degraded:email:${userId}`,
      cause: `bench-${round}`,
      incidentId: null,
      kind: 'payment-degraded',
      channel: 'email',
      audience: 'user',
      userId,
      address: `${userId}@example.com`,
      locale: i % 3 === 0 ? 'en' : 'zh-CN',
      data: { ...sample, preferencesUrl: `https://shop.example.com/notifications?token=${randomUUID()}` },
      category: 'service',
    };
  });
}

async function viaPipeline(ctx: AppContext, client: pg.Client, ids: string[], round: number): Promise<Run> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  await enqueueDeliveries(ctx, ids, `bench-${round}-${randomUUID()}`);
  // Stops at the first row left: counting them all many times a second would load PostgreSQL.
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const { rows } = await client.query<{ done: boolean }>(
      "SELECT NOT EXISTS (SELECT 1 FROM forewarn.notifications WHERE status IN ('pending', 'sending')) AS done",
    );
    if (rows[0]!.done) break;
  }
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSince(cpu) };
}

/** The same messages, rendered and composed beforehand (untimed), through nodemailer's pool. */
async function viaRaw(ctx: AppContext, ids: string[], smtpUrl: string): Promise<Run> {
  const templates = await ctx.templates();
  const config = ctx.config().notifications.email;
  const { rows } = await ctx.db.query<{
    dedupe_key: string;
    address: string;
    locale: string;
    data: Record<string, unknown>;
  }>(
    'SELECT dedupe_key, address, locale, data FROM forewarn.notifications WHERE id = ANY ($1::bigint[]) ORDER BY id',
    [ids],
  );
  const mails = rows.map((r) => {
    const message = renderNotification(templates, {
      kind: 'payment-degraded',
      channel: 'email',
      locale: r.locale,
      data: r.data,
    } as NotificationDraft);
    return composeMail(config.from, {
      to: r.address,
      subject: message.subject ?? '',
      text: message.text,
      html: message.html ?? '',
      messageId: messageIdFor(r.dedupe_key, config.messageIdDomain),
      headers: { 'List-Unsubscribe': `<${String(r.data.preferencesUrl)}>` },
    });
  });
  const transport = nodemailer.createTransport({
    pool: true,
    url: smtpUrl,
    maxConnections: config.maxConnections,
    maxMessages: 100,
    logger: false,
  });
  try {
    const cpu = process.cpuUsage();
    const started = performance.now();
    await pump(mails.length, config.maxConnections * 2, (i) => transport.sendMail(mails[i]!));
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: cpuSince(cpu) };
  } finally {
    transport.close();
  }
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
}
