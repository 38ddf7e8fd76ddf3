// Benchmark: exactly once through a slow relay. A relay that takes BENCH_RELAY_DELAY_MS (200 ms) per
// message, two delivery workers (each with a context, pools and SMTP connections of its own, as
// two processes would have), claims of a few seconds (shorter than the job takes) and the sweeper
// every second handing the rest to whichever worker is free. It prints how long the delivery took,
// the messages the relay received once, twice or never, and memory, next to raw nodemailer
// sending the same number of messages over as many connections to the same relay.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { enqueueDeliveries } from '../jobs/deliver-notifications.ts';
import { ConfigStore } from '../lib/config/store.ts';
import { writeConfigVariant } from '../lib/config/variant.ts';
import { createContext, type AppContext } from '../lib/context.ts';
import { migrate } from '../lib/db/migrate.ts';
import { registeredDetectors } from '../lib/detection/registry.ts';
import { readEnv } from '../lib/env.ts';
import { createLogger } from '../lib/logger.ts';
import { insertNotifications, type NotificationDraft } from '../lib/notifications/store.ts';
import { Scheduler } from '../lib/scheduler.ts';
import { templateKinds } from '../templates/kinds.ts';
import { startDeliveryWorker } from '../workers/delivery.ts';
import { startFanoutWorker } from '../workers/fanout.ts';
import { benchDatabase, figure, positiveIntFromEnv, watchMemory, type BenchResult } from './support.ts';
import { linkKeyring } from '../lib/links.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const CONNECTIONS_PER_WORKER = 3;
const CLAIM_SECONDS = 3;

/** An SMTP server that answers each message after `delayMs` and counts each Message-ID it got. */
async function startSlowRelay(delayMs: number) {
  const seen = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 8_192) head += chunk.toString('utf8');
      });
      stream.on('end', () => {
        const id = /^Message-ID:\s*(\S+)/im.exec(head)?.[1] ?? `(none ${randomUUID()})`;
        seen.set(id, (seen.get(id) ?? 0) + 1);
        setTimeout(callback, delayMs);
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function benchSlowRelay(): Promise<BenchResult> {
  const count = positiveIntFromEnv('BENCH_RELAY_MESSAGES', 600);
  const delayMs = positiveIntFromEnv('BENCH_RELAY_DELAY_MS', 200);
  const db = await benchDatabase(`forewarn_bench_relay_${process.pid}`);
  const dir = await mkdtemp(join(tmpdir(), 'forewarn-bench-relay-'));
  const logger = createLogger({ level: 'error' });
  const relay = await startSlowRelay(delayMs);
  const client = new pg.Client({ connectionString: db.url });
  const contexts: AppContext[] = [];
  const closers: Array<() => Promise<unknown>> = [];
  try {
    await migrate(db.url, logger);
    await client.connect();
    const configPath = await writeConfigVariant(
      'config/forewarn.yaml',
      [
        // Only deliveries run: no detector ticks beside them.
        ...registeredDetectors.map((d) => [['detectors', d.configKey, 'enabled'], false] as const),
        [['notifications', 'ops', 'emails'], []],
        [['notifications', 'claimSeconds'], CLAIM_SECONDS],
        [['notifications', 'email', 'maxConnections'], CONNECTIONS_PER_WORKER],
        [['notifications', 'sweeper', 'schedule'], '* * * * * *'],
        [['notifications', 'sweeper', 'staleSeconds'], 1],
        [['workers', 'delivery', 'concurrency'], 1],
      ],
      dir,
    );
    const env = {
      ...readEnv({}),
      databaseUrl: db.url,
      platformDatabaseUrl: db.url,
      redisUrl: REDIS_URL,
      configPath,
      queuePrefix: `bench-relay-${process.pid}`,
      smtpUrl: relay.url,
      outboxDir: join(dir, 'outbox'),
      linkKeys: linkKeyring('bench-secret-bench-secret-bench-secret-0123'),
    };
    for (let i = 0; i < 2; i++) {
      const ctx = await createContext(env, await ConfigStore.open(configPath, logger), logger);
      contexts.push(ctx);
      await ctx.templates();
      const worker = startDeliveryWorker(ctx);
      closers.push(() => worker.close());
      await worker.waitUntilReady();
    }
    // The sweeper's job runs on the fan-out queue.
    const fanout = startFanoutWorker(contexts[0]!);
    closers.push(() => fanout.close());
    await fanout.waitUntilReady();
    const sweeper = new Scheduler(contexts[0]!);
    sweeper.start();
    closers.push(() => sweeper.stop());

    const ids = await insertNotifications(client, drafts(count));
    const memory = watchMemory();
    const started = performance.now();
    // One job with every id, as a fan-out batch queues them: the other worker gets its share
    // through the sweeper.
    await enqueueDeliveries(contexts[0]!, ids, `bench-relay-${randomUUID()}`);
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const { rows } = await client.query<{ done: boolean }>(
        "SELECT NOT EXISTS (SELECT 1 FROM forewarn.notifications WHERE status IN ('pending', 'sending')) AS done",
      );
      if (rows[0]!.done) break;
    }
    const seconds = (performance.now() - started) / 1000;
    const peaks = memory.stop();
    const { rows: outcome } = await client.query<{ sent: number; retried: number; by_workers: number }>(
      `SELECT count(*) FILTER (WHERE status = 'sent')::int AS sent,
              count(*) FILTER (WHERE attempts > 1)::int AS retried,
              count(DISTINCT claimed_by)::int AS by_workers
         FROM forewarn.notifications`,
    );
    const copies = [...relay.seen.values()];
    const twice = copies.filter((n) => n > 1).length;

    // The same number of messages straight through nodemailer over as many connections.
    relay.seen.clear();
    const raw = nodemailer.createTransport({
      url: relay.url,
      pool: true,
      maxConnections: 2 * CONNECTIONS_PER_WORKER,
    });
    const rawStarted = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 * CONNECTIONS_PER_WORKER }, async () => {
        while (next < count) {
          const i = next++;
          await raw.sendMail({
            from: 'bench@example.com',
            to: `u${i}@example.com`,
            subject: 'raw',
            text: 'raw',
            messageId: `<raw-${i}@bench>`,
          });
        }
      }),
    );
    const rawSeconds = (performance.now() - rawStarted) / 1000;
    raw.close();

    return {
      name: `slow relay (${delayMs} ms a message, 2 workers x ${CONNECTIONS_PER_WORKER} connections, ${CLAIM_SECONDS} s claims), ${count} emails`,
      figures: [
        figure('delivered through the pipeline', seconds, 's'),
        figure('raw nodemailer, 6 connections', rawSeconds, 's'),
        figure('sent (of all)', outcome[0]!.sent, `of ${count}`),
        figure('received by the relay once', copies.filter((n) => n === 1).length, 'messages'),
        figure('received twice or more', twice, 'messages'),
        figure('never received', count - copies.length, 'messages'),
        figure('delivered in more than one attempt', outcome[0]!.retried, 'messages'),
        figure('workers that delivered', outcome[0]!.by_workers, 'workers'),
        figure('peak RSS', peaks.peakRssMb, 'MiB'),
        figure('peak live heap', peaks.peakLiveHeapMb, 'MiB'),
      ],
      notes: [
        'Claims are made a few rows at a time and renewed while a job works, and every outcome is written under its claim token: a slow relay never lets a live claim run out, so nothing is sent twice.',
      ],
    };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    for (const ctx of contexts) await ctx.close().catch(() => undefined);
    await client.end().catch(() => undefined);
    await relay.close();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

function drafts(n: number): NotificationDraft[] {
  const sample = templateKinds['payment-degraded'].sample;
  return Array.from({ length: n }, (_, i) => {
    const userId = `u-relay-${String(i).padStart(6, '0')}`;
    return {
      dedupeKey: `cause:bench-relay:payment-degraded:email:${userId}`,
      cause: 'cause:bench-relay',
      incidentId: null,
      kind: 'payment-degraded',
      channel: 'email',
      audience: 'user',
      userId,
      address: `${userId}@example.com`,
      locale: 'zh-CN',
      data: { ...sample },
      category: 'service',
    };
  });
}
