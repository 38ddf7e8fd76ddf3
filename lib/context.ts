// What jobs and workers are given: connections, the live config, the logger, and the deployment
// id read from forewarn's schema (which names the default queue prefix and is stamped on every
// job). Built once per process by lib/daemon.ts (or by a CLI command) and closed in reverse order.
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ConfigStore } from './config/store.ts';
import type { Config } from './config/schema.ts';
import { readDeploymentId } from './db/deployment.ts';
import { connectionErrorLog, connectionTo, watchPool, type ConnectionErrorLog } from './connection-errors.ts';
import { createPool, type Pool } from './db/pool.ts';
import { publicUrlOf, type Env } from './env.ts';
import { ForewarnError } from './errors.ts';
import type { Logger } from './logger.ts';
import { linkKeyring, type LinkKeyring } from './links.ts';
import { InvalidRowReporter } from './platform/invalid-rows.ts';
import { defaultQueuePrefix } from './queue/identity.ts';
import { createRedis } from './queue/redis.ts';
import { Queues, type QueueName } from './queue/queues.ts';
import { createEmailSender, dkimSigning, type EmailSender } from './channels/email.ts';
import { processEnvironment } from './channels/webhook-channel.ts';
import { checkWebhookTargets } from './config/webhooks.ts';
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
  /** This database's deployment (forewarn.deployment): jobs naming another one are not ours. */
  deploymentId: string;
  /** Prefixed with FOREWARN_QUEUE_PREFIX, or by default with one derived from the deployment id. */
  queues: Queues;
  workerId: string;
  invalidRows: InvalidRowReporter;
  /** Where every connection's errors go: one rate-limited JSON line per connection and code. */
  connectionErrors: ConnectionErrorLog;
  /**
   * Sign and verify links that act on an account: FOREWARN_LINK_SECRET signs (in development, made
   * up if unset), FOREWARN_LINK_SECRETS_OLD still verify.
   */
  readonly linkKeys: LinkKeyring;
  /**
   * The base of public links, e.g. restock links (FOREWARN_PUBLIC_URL; in development, unset, the
   * HTTP role's own address; in production, unset, reading it throws FW_ENV_MISSING).
   */
  readonly publicUrl: string;
  /** The message templates, loaded and checked once. */
  templates: () => Promise<TemplateStore>;
  /** The email channel (SMTP pool or .eml outbox), created on first use. */
  email: () => EmailSender;
  /** Ops alerts' own email channel (one connection), so that they never wait behind user mail. */
  opsEmail: () => EmailSender;
  close(): Promise<void>;
}

export async function createContext(env: Env, configStore: ConfigStore, logger: Logger): Promise<AppContext> {
  // Before anything connects: a DKIM key without its domain and selector (or the reverse) stops here.
  const dkim = dkimSigning(env.dkimPrivateKey, configStore.get().notifications.email.dkim);
  // So does, in production, a plain http webhook target or one whose secret variable is unset.
  checkWebhookTargets(configStore.get().notifications.webhooks.targets, {
    production: env.production,
    secret: processEnvironment.secret,
  });
  const connectionErrors = connectionErrorLog(logger);
  const db = createPool(env.databaseUrl, { applicationName: 'forewarn' });
  watchPool(connectionErrors, db, connectionTo('postgres', 'forewarn', env.databaseUrl));
  let deploymentId: string;
  try {
    deploymentId = await identify(db);
  } catch (error) {
    await db.end().catch(() => undefined);
    throw error;
  }
  const platformDb =
    env.platformDatabaseUrl === env.databaseUrl
      ? db
      : createPool(env.platformDatabaseUrl, { applicationName: 'forewarn-platform' });
  if (platformDb !== db) {
    watchPool(connectionErrors, platformDb, connectionTo('postgres', 'platform', env.platformDatabaseUrl));
  }
  const redis = createRedis(env.redisUrl);
  // ioredis reconnects by itself; without a listener it prints each failed attempt raw. Its
  // "ready" after errors says the server is back.
  connectionErrors.watch(redis, connectionTo('redis', 'shared', env.redisUrl), 'ready');
  // A BullMQ queue re-emits its connection's errors and, with no listener, prints them as raw
  // stack traces: each gets one as it is created (the shared client's errors are recognised and
  // logged once). Created on first use, as before: a dry run writes nothing to Redis.
  const queues = new WatchedQueues(
    redis,
    env.queuePrefix ?? defaultQueuePrefix(deploymentId),
    deploymentId,
    (queue, name) => connectionErrors.watch(queue, connectionTo('redis', `queue:${name}`, env.redisUrl)),
  );
  let linkSecret = env.linkSecret;
  if (!linkSecret && !env.production) {
    // Links still work within this process's lifetime, but the platform cannot verify them.
    linkSecret = randomBytes(32).toString('base64url');
    logger.warn(
      { component: 'links' },
      'FOREWARN_LINK_SECRET is not set: signed links use a random per-process secret the platform cannot verify',
    );
  }
  // The one place the keyring is built from the environment.
  const linkKeys = linkSecret === undefined ? undefined : linkKeyring(linkSecret, env.oldLinkSecrets);
  let templates: Promise<TemplateStore> | undefined;
  let email: EmailSender | undefined;
  let opsEmail: EmailSender | undefined;
  return {
    env,
    db,
    platformDb,
    platformSchema: env.platformSchema,
    config: () => configStore.get(),
    configStore,
    logger,
    redis,
    deploymentId,
    queues,
    workerId: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    invalidRows: new InvalidRowReporter(logger),
    connectionErrors,
    // Production never makes one up: a process whose roles do not need it (checkProductionEnv)
    // starts without it, and fails here should it ever sign a link.
    get linkKeys() {
      if (linkKeys === undefined) {
        throw new ForewarnError(
          'FW_ENV_MISSING',
          'environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production to sign links: expected at least 32 characters, got nothing',
        );
      }
      return linkKeys;
    },
    get publicUrl() {
      return publicUrlOf(env);
    },
    templates: () => (templates ??= TemplateStore.load()),
    email: () =>
      (email ??= createEmailSender({
        smtpUrl: env.smtpUrl,
        outboxDir: env.outboxDir,
        from: configStore.get().notifications.email.from,
        logger,
        connectionErrors,
        pool: { maxConnections: configStore.get().notifications.email.maxConnections },
        dkim,
      })),
    opsEmail: () =>
      (opsEmail ??= createEmailSender({
        smtpUrl: env.smtpUrl,
        outboxDir: env.outboxDir,
        from: configStore.get().notifications.email.from,
        logger,
        connectionErrors,
        pool: { maxConnections: 1 },
        dkim,
      })),
    async close() {
      configStore.close();
      await Promise.all([email?.close(), opsEmail?.close()]);
      await queues.close();
      redis.disconnect();
      await Promise.all([...new Set([db, platformDb])].map((pool) => pool.end()));
    },
  };
}

/** Queues that hand each BullMQ queue to `created` when they create it. */
class WatchedQueues extends Queues {
  private readonly watched = new WeakSet<Queue>();
  private readonly created: (queue: Queue, name: QueueName) => void;

  constructor(
    connection: Redis,
    prefix: string,
    deploymentId: string,
    created: (queue: Queue, name: QueueName) => void,
  ) {
    super(connection, prefix, deploymentId);
    this.created = created;
  }

  override get(name: QueueName): Queue {
    const queue = super.get(name);
    if (!this.watched.has(queue)) {
      this.watched.add(queue);
      this.created(queue, name);
    }
    return queue;
  }
}

/** The deployment id, with the fix in the message when it cannot be read. */
async function identify(db: Pool): Promise<string> {
  let id: string | null;
  try {
    id = await readDeploymentId(db);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // undefined_table, invalid_schema_name: a schema from before migration 003, or none at all.
    if (code === '42P01' || code === '3F000') id = null;
    else if (code && /^[0-9A-Z]{5}$/.test(code) && !/^(08|28|3D|57P)/.test(code)) throw error;
    else {
      // A socket error, or PostgreSQL refusing the connection (no such database, credentials).
      throw new ForewarnError(
        'FW_SERVICE_UNREACHABLE',
        `cannot reach PostgreSQL for DATABASE_URL: ${(error as Error).message}. Start it (e.g. \`docker compose up -d postgres\`) or set DATABASE_URL.`,
        { cause: error },
      );
    }
  }
  if (id === null) {
    throw new ForewarnError(
      'FW_SCHEMA_OUTDATED',
      "forewarn's schema in DATABASE_URL has no deployment id (forewarn.deployment, migration 003): run `npx forewarn migrate` first.",
    );
  }
  return id;
}
