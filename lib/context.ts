// What jobs and workers are given: connections, the live config, the logger. Built once per
// process by lib/daemon.ts (or by a CLI command) and closed in reverse order.
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { ConfigStore } from './config/store.ts';
import type { Config } from './config/schema.ts';
import { createPool, type Pool } from './db/pool.ts';
import type { Env } from './env.ts';
import type { Logger } from './logger.ts';
import { InvalidRowReporter } from './platform/invalid-rows.ts';
import { createRedis } from './queue/redis.ts';
import { Queues } from './queue/queues.ts';
import { createEmailSender, type EmailSender } from './channels/email.ts';
import { TemplateStore } from './templates/store.ts';

export interface AppContext {
  env: Env;
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  config: () => Config;
  configStore: ConfigStore;
  logger: Logger;
  redis: Redis;
  queues: Queues;
  workerId: string;
  invalidRows: InvalidRowReporter;
  /** Signs links that act on an account. */
  linkSecret: string;
  /** The message templates, loaded and checked once. */
  templates: () => Promise<TemplateStore>;
  /** The email channel (SMTP pool or .eml outbox), created on first use. */
  email: () => EmailSender;
  close(): Promise<void>;
}

export function createContext(env: Env, configStore: ConfigStore, logger: Logger): AppContext {
  const db = createPool(env.databaseUrl, { applicationName: 'forewarn' });
  const platformDb =
    env.platformDatabaseUrl === env.databaseUrl
      ? db
      : createPool(env.platformDatabaseUrl, { applicationName: 'forewarn-platform' });
  const redis = createRedis(env.redisUrl);
  // ioredis reconnects by itself; without a listener each failed attempt would be an unhandled error.
  redis.on('error', (error) =>
    logger.warn({ component: 'redis', err: error }, 'Redis connection error; reconnecting'),
  );
  const queues = new Queues(redis, env.queuePrefix);
  for (const pool of new Set([db, platformDb])) {
    // An idle client losing its connection must not crash the daemon; the pool replaces it.
    pool.on('error', (error) =>
      logger.warn({ component: 'db', err: error }, 'idle PostgreSQL client failed'),
    );
  }
  let linkSecret = env.linkSecret;
  if (!linkSecret) {
    // Links still work within this process's lifetime, but the platform cannot verify them.
    linkSecret = randomBytes(32).toString('base64url');
    logger.warn(
      { component: 'links' },
      'FOREWARN_LINK_SECRET is not set: signed links use a random per-process secret the platform cannot verify',
    );
  }
  let templates: Promise<TemplateStore> | undefined;
  let email: EmailSender | undefined;
  return {
    env,
    db,
    platformDb,
    platformSchema: env.platformSchema,
    config: () => configStore.get(),
    configStore,
    logger,
    redis,
    queues,
    workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    invalidRows: new InvalidRowReporter(logger),
    linkSecret,
    templates: () => (templates ??= TemplateStore.load()),
    email: () =>
      (email ??= createEmailSender({
        smtpUrl: env.smtpUrl,
        outboxDir: env.outboxDir,
        from: configStore.get().notifications.email.from,
        logger,
        pool: { maxConnections: configStore.get().notifications.email.maxConnections },
      })),
    async close() {
      configStore.close();
      await email?.close();
      await queues.close();
      redis.disconnect();
      await Promise.all([...new Set([db, platformDb])].map((pool) => pool.end()));
    },
  };
}
