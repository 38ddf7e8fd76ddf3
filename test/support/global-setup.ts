// Once per test run: check that PostgreSQL and Redis are there (with the fix in the message if
// not), and migrate the template database that every test database is cloned from.
import { Redis } from 'ioredis';
import pg from 'pg';
import { migrate } from '../../lib/db/migrate.ts';
import { createLogger } from '../../lib/logger.ts';
import { databaseUrl, PG_ADMIN_URL, REDIS_URL, templateDb } from './services.ts';

export default async function setup(): Promise<() => Promise<void>> {
  process.env.FOREWARN_TEST_TEMPLATE = `forewarn_test_template_${process.pid}`;
  const TEMPLATE_DB = templateDb();
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (error) {
    throw new Error(
      `integration tests need PostgreSQL at ${PG_ADMIN_URL} (${(error as Error).message}); start it with \`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\` or \`docker compose up -d postgres\``,
    );
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  await migrate(databaseUrl(TEMPLATE_DB), createLogger({ level: 'silent' }));

  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    throw new Error(
      `integration tests need Redis at ${REDIS_URL} (${(error as Error).message}); start it with \`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no\``,
    );
  } finally {
    redis.disconnect();
  }
  return async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    } finally {
      await client.end();
    }
  };
}
