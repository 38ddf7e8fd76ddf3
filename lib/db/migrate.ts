// Numbered SQL migrations for forewarn's own schema (`forewarn`). Idempotent, each file in its own
// transaction, and serialised across processes by a PostgreSQL advisory lock. A migration that
// was applied and later edited is refused, so schemas cannot silently drift apart. The first run
// also writes the deployment id (lib/db/deployment.ts); later runs keep it.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { ForewarnError } from '../errors.ts';
import { fromPackageRoot } from '../package-root.ts';
import type { Logger } from '../logger.ts';
import { ensureDeploymentId } from './deployment.ts';

export const MIGRATIONS_DIR = fromPackageRoot('migrations');
/** Arbitrary constant: the advisory lock key that serialises migrations. */
const MIGRATION_LOCK = 7_305_011_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d+)_([\w-]+)\.sql$/.exec(file);
    if (!match) {
      throw new ForewarnError(
        'FW_MIGRATION_FAILED',
        `${join(dir, file)}: expected a name like 001_description.sql`,
      );
    }
    const sql = await readFile(join(dir, file), 'utf8');
    migrations.push({
      version: Number(match[1]),
      name: match[2]!,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  return migrations;
}

export interface MigrateResult {
  applied: Migration[];
  current: number;
  /** This database's deployment id, written by the first migrate and kept since. */
  deploymentId: string;
}

export async function migrate(
  connectionString: string,
  logger: Logger,
  options: { dir?: string } = {},
): Promise<MigrateResult> {
  try {
    await ensureDatabase(connectionString, logger);
  } catch (error) {
    if (error instanceof ForewarnError) throw error;
    throw new ForewarnError(
      'FW_SERVICE_UNREACHABLE',
      `cannot reach PostgreSQL for DATABASE_URL: ${(error as Error).message}. Start it (e.g. \`docker compose up -d postgres\`) or set DATABASE_URL.`,
      { cause: error },
    );
  }
  const migrations = await readMigrations(options.dir);
  const client = new pg.Client({ connectionString, application_name: 'forewarn-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE SCHEMA IF NOT EXISTS forewarn');
    await client.query(`CREATE TABLE IF NOT EXISTS forewarn.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; checksum: string; name: string }>(
      'SELECT version, checksum, name FROM forewarn.schema_migrations ORDER BY version',
    );
    const applied = new Map(rows.map((r) => [r.version, r]));
    for (const migration of migrations) {
      const done = applied.get(migration.version);
      if (done && done.checksum !== migration.checksum) {
        throw new ForewarnError(
          'FW_MIGRATION_FAILED',
          `migration ${migration.version}_${migration.name}.sql was edited after it was applied; expected its original text (checksum ${done.checksum.slice(0, 12)}), found checksum ${migration.checksum.slice(0, 12)}. Add a new numbered migration instead.`,
        );
      }
    }
    const pending = migrations.filter((m) => !applied.has(m.version));
    for (const migration of pending) {
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query(
          'INSERT INTO forewarn.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
          [migration.version, migration.name, migration.checksum],
        );
        await client.query('COMMIT');
        logger.info(
          { component: 'migrate', version: migration.version, name: migration.name },
          'migration applied',
        );
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new ForewarnError(
          'FW_MIGRATION_FAILED',
          `migration ${migration.version}_${migration.name}.sql failed and was rolled back: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    const current = Math.max(0, ...migrations.map((m) => m.version));
    const deployment = await ensureDeploymentId(client);
    if (deployment.created)
      logger.info({ component: 'migrate', deploymentId: deployment.id }, 'deployment id written');
    return { applied: pending, current, deploymentId: deployment.id };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await client.end();
  }
}

/** Creates the database named in the URL when the server is there but the database is not. */
async function ensureDatabase(connectionString: string, logger: Logger): Promise<void> {
  const probe = new pg.Client({ connectionString });
  try {
    await probe.connect();
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') throw error;
  } finally {
    await probe.end().catch(() => undefined);
  }
  const url = new URL(connectionString);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    logger.info({ component: 'migrate', database: name }, 'database created');
  } catch (error) {
    // Another process created it between our probe and now: that is fine. PostgreSQL says so
    // with duplicate_database, or with a unique violation on pg_database when the race is tight.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw error;
  } finally {
    await admin.end();
  }
}
