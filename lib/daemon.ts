// The long-running process: scheduler, workers and/or the HTTP server, by role, sharing one
// context. Stopping takes no new work (the HTTP server stops accepting connections), lets running
// jobs and requests finish within the grace period, then closes connections.
import type { Worker } from 'bullmq';
import { bounded } from './bounded.ts';
import { ConfigStore } from './config/store.ts';
import { connectionTo, isConnectionError } from './connection-errors.ts';
import { createContext, type AppContext } from './context.ts';
import { checkProductionEnv, type Env } from './env.ts';
import { defaultTemplatesDir } from './templates/store.ts';
import { HTTP_PARTS, startHttpServer, type RunningHttpServer } from './http/server.ts';
import { ForewarnError } from './errors.ts';
import type { Logger } from './logger.ts';
import { readMigrations } from './db/migrate.ts';
import { Scheduler } from './scheduler.ts';
import { startDeliveryWorker } from '../workers/delivery.ts';
import { startDetectionWorker } from '../workers/detection.ts';
import { startFanoutWorker } from '../workers/fanout.ts';
import { startOpsAlertsWorker } from '../workers/ops-alerts.ts';
import { startWatchdog, type RunningWatchdog } from './watchdog/run.ts';

export const ROLES = ['scheduler', 'detection', 'notifications', 'http'] as const;
export type Role = (typeof ROLES)[number];
/**
 * What `forewarn start` runs when no role is named. The HTTP role listens on a port, so it runs
 * only where it is asked for (`--role http`), usually in replicas of its own behind a proxy.
 */
export const DEFAULT_ROLES: readonly Role[] = ['scheduler', 'detection', 'notifications'];

export interface Daemon {
  ctx: AppContext;
  roles: readonly Role[];
  /** Resolves once everything is closed; `forced` when the grace period ran out. */
  stop(reason: string): Promise<{ forced: boolean }>;
}

export async function startDaemon(options: {
  env: Env;
  logger: Logger;
  roles: readonly Role[];
}): Promise<Daemon> {
  const { env, logger, roles } = options;
  // Before anything connects: in production a missing secret or mail server is a refusal, not a
  // development default. The HTTP role stands for itself and each of its routes.
  checkProductionEnv(env, roles.includes('http') ? [...roles, ...HTTP_PARTS] : roles);
  const configStore = await ConfigStore.open(env.configPath, logger);
  const ctx = await createContext(env, configStore, logger);
  try {
    await checkServices(ctx);
    // Broken templates must stop a delivery worker at start, not at the first incident.
    if (roles.includes('notifications')) await ctx.templates();
  } catch (error) {
    await ctx.close();
    throw error;
  }
  configStore.watch();

  const workers: Worker[] = [];
  if (roles.includes('detection')) workers.push(startDetectionWorker(ctx));
  // Notifications: one worker per queue, so that fan-outs and ops alerts never wait for email.
  if (roles.includes('notifications'))
    workers.push(startFanoutWorker(ctx), startDeliveryWorker(ctx), startOpsAlertsWorker(ctx));
  for (const worker of workers) {
    const log = logger.child({ component: 'worker', queue: worker.name });
    worker.on('failed', (job, error) =>
      log.error({ jobId: job?.id, job: job?.name, attempt: job?.attemptsMade, err: error }, 'job failed'),
    );
    // BullMQ reconnects a worker's own Redis clients and reports each failed attempt here.
    const connection = connectionTo('redis', `worker:${worker.name}`, env.redisUrl);
    worker.on('error', (error) =>
      isConnectionError(error)
        ? ctx.connectionErrors.report(connection, error)
        : log.error({ err: error }, 'worker error'),
    );
  }
  let http: RunningHttpServer | undefined;
  if (roles.includes('http')) {
    try {
      http = await startHttpServer(
        {
          db: ctx.db,
          platformDb: ctx.platformDb,
          platformSchema: ctx.platformSchema,
          linkKeys: ctx.linkKeys,
          apiToken: env.apiToken,
          adminToken: env.adminToken,
          config: ctx.config,
          queues: ctx.queues,
          redis: ctx.redis,
          studio: { templatesDir: defaultTemplatesDir, email: ctx.email, config: ctx.config },
          logger,
          now: Date.now,
        },
        { host: env.httpHost, port: env.httpPort },
      );
    } catch (error) {
      await Promise.all(workers.map((w) => w.close(true)));
      await ctx.close();
      throw error;
    }
  }
  const scheduler = roles.includes('scheduler') ? new Scheduler(ctx) : undefined;
  scheduler?.start();
  // In every notifications process, not only the scheduler's: it must notice a dead scheduler.
  const watchdog: RunningWatchdog | undefined = roles.includes('notifications')
    ? startWatchdog(ctx)
    : undefined;
  logger.info(
    {
      component: 'daemon',
      roles,
      worker: ctx.workerId,
      deploymentId: ctx.deploymentId,
      queuePrefix: ctx.queues.prefix,
      ...(http ? { http: http.address } : {}),
    },
    'forewarn started',
  );

  let stopping: Promise<{ forced: boolean }> | undefined;
  const stop = (reason: string) => {
    stopping ??= (async () => {
      const graceMs = ctx.config().shutdown.graceSeconds * 1000;
      logger.info({ component: 'daemon', reason, graceMs }, 'stopping: no new work, finishing running jobs');
      await scheduler?.stop();
      let forced = false;
      // The HTTP server stops accepting at once and finishes the requests in flight meanwhile.
      // A watchdog check in progress finishes too (no new one starts).
      const drained = Promise.all([...workers.map((w) => w.close()), http?.close(), watchdog?.stop()]);
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, graceMs, 'timeout').unref());
      if ((await Promise.race([drained, timeout])) === 'timeout') {
        forced = true;
        logger.warn(
          { component: 'daemon', graceMs },
          'grace period over; running jobs are abandoned and will be retried',
        );
        // Even a forced close can wait on the abandoned processor's connection: bound it too.
        await Promise.race([
          Promise.all(workers.map((w) => w.close(true))),
          new Promise((resolve) => setTimeout(resolve, 500).unref()),
        ]);
      }
      // A pool waits for its checked-out clients; after a forced stop an abandoned job may hold
      // one for as long as its query runs, so closing gets a bound of its own.
      const closed = ctx.close().then(() => 'closed' as const);
      const closeTimeout = new Promise<'timeout'>((resolve) =>
        setTimeout(resolve, forced ? 1_000 : graceMs, 'timeout').unref(),
      );
      if ((await Promise.race([closed, closeTimeout])) === 'timeout') {
        forced = true;
        logger.warn({ component: 'daemon' }, 'connections did not close in time; exiting anyway');
      }
      logger.info({ component: 'daemon', forced }, 'forewarn stopped');
      return { forced };
    })();
    return stopping;
  };
  return { ctx, roles, stop };
}

/** Fails fast, with the fix in the message, when a service is down or the schema is behind. */
export async function checkServices(ctx: AppContext): Promise<void> {
  try {
    await ctx.db.query('SELECT 1');
  } catch (error) {
    throw new ForewarnError(
      'FW_SERVICE_UNREACHABLE',
      `cannot reach PostgreSQL for DATABASE_URL: ${(error as Error).message}. Start it (e.g. \`docker compose up -d postgres\`) or set DATABASE_URL.`,
      { cause: error },
    );
  }
  try {
    // The shared connection retries forever (BullMQ needs that), so bound the first contact.
    await bounded(ctx.redis.ping(), 5_000);
  } catch (error) {
    throw new ForewarnError(
      'FW_SERVICE_UNREACHABLE',
      `cannot reach Redis for REDIS_URL: ${(error as Error).message}. Start it (e.g. \`docker compose up -d redis\`) or set REDIS_URL.`,
      { cause: error },
    );
  }
  const latest = Math.max(0, ...(await readMigrations()).map((m) => m.version));
  const exists = await ctx.db.query<{ present: boolean }>(
    "SELECT to_regclass('forewarn.schema_migrations') IS NOT NULL AS present",
  );
  const { rows } = exists.rows[0]?.present
    ? await ctx.db.query<{ version: number | null }>(
        'SELECT max(version) AS version FROM forewarn.schema_migrations',
      )
    : { rows: [] };
  const current = rows[0]?.version ?? null;
  if (current === null || current < latest) {
    throw new ForewarnError(
      'FW_SCHEMA_OUTDATED',
      `forewarn's schema is at version ${current ?? 'none'}, this release needs ${latest}: run \`npx forewarn migrate\` first.`,
    );
  }
}
