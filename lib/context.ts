// What jobs and workers are given: connections, the live config, the logger. Built once per
// process by lib/daemon.ts (or by a CLI command) and closed in reverse order.
import { randomUUID } from 'node:crypto';
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
    async close() {
      configStore.close();
      await queues.close();
      redis.disconnect();
      await Promise.all([...new Set([db, platformDb])].map((pool) => pool.end()));
    },
  };
}
