// The `forewarn` command as an operator runs it: a real child process, real exit codes (0 ok,
// 1 failure, 2 usage), messages on stderr, and `migrate` against real PostgreSQL databases.
import { runForewarn } from '../support/cli.ts';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMigrations } from '../../lib/db/migrate.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import {
  createTestDatabase,
  databaseUrl,
  PG_ADMIN_URL,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHIPPED = join(ROOT, 'config/forewarn.yaml');
const COMMANDS = ['migrate', 'config', 'start', 'run', 'backtest', 'incidents'];
/** A database nobody creates: commands that must fail before connecting never notice. */
const UNUSED_DB = databaseUrl('forewarn_cli_test_unused');

interface Result {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function forewarn(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return runForewarn(args, {
    env: { LOG_LEVEL: 'silent', DATABASE_URL: UNUSED_DB, REDIS_URL, FOREWARN_CONFIG: SHIPPED, ...env },
  });
}

function expectExit(result: Result, code: number): void {
  expect(result.signal, `killed; stderr: ${result.stderr}`).toBeNull();
  expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(code);
}

const BACKTEST = ['backtest', '--detector', 'payment-health'];
const FROM = '2026-03-02T00:00:00Z';
const TO = '2026-03-02T01:00:00Z';

let tmp: string;
let shippedText: string;
const databases: TestDatabase[] = [];
const extraDatabases: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'forewarn-cli-'));
  shippedText = await readFile(SHIPPED, 'utf8');
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await Promise.all(databases.map((db) => db.drop()));
  if (extraDatabases.length > 0) {
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      for (const name of extraDatabases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  }
});

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated: false });
  databases.push(db);
  return db;
}

async function appliedVersions(pool: pg.Pool | pg.Client): Promise<number[]> {
  const { rows } = await pool.query<{ version: number }>(
    'SELECT version FROM forewarn.schema_migrations ORDER BY version',
  );
  return rows.map((r) => r.version);
}

describe('help', () => {
  it('--help exits 0 and lists every command', async () => {
    const result = await forewarn(['--help']);
    expectExit(result, 0);
    const commandsSection = result.stdout.split(/^Commands:$/m)[1];
    expect(commandsSection).toBeDefined();
    const listed = [...commandsSection!.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]);
    for (const command of COMMANDS) expect(listed).toContain(command);
  });

  it('backtest --help describes every option', async () => {
    const result = await forewarn(['backtest', '--help']);
    expectExit(result, 0);
    for (const option of ['--detector <name>', '--from <time>', '--to <time>', '--step <duration>']) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${option}\\s+\\S`, 'm'));
    }
    expect(result.stdout).toMatch(/^\s+--config <file>\s+\S/m);
    expect(result.stdout).toMatch(/^\s+--format <format>\s+\S/m);
    expect(result.stdout).toContain('payment-health');
    expect(result.stdout).toContain('"json"');
  });
});

describe('usage errors exit 2 with a message on stderr', () => {
  it('an unknown command', async () => {
    const result = await forewarn(['frobnicate']);
    expectExit(result, 2);
    expect(result.stderr).toContain("unknown command 'frobnicate'");
    expect(result.stdout).toBe('');
  });

  it('an unknown option', async () => {
    const result = await forewarn(['migrate', '--frobnicate']);
    expectExit(result, 2);
    expect(result.stderr).toContain('--frobnicate');
  });

  it('a --step that is not a multiple of 5s', async () => {
    const result = await forewarn([...BACKTEST, '--from', FROM, '--to', TO, '--step', '7s']);
    expectExit(result, 2);
    expect(result.stderr).toContain('--step');
    expect(result.stderr).toContain('multiple of 5s');
    expect(result.stderr).toContain('7s');
  });

  it('a --step that is not a duration', async () => {
    const result = await forewarn([...BACKTEST, '--from', FROM, '--to', TO, '--step', 'abc']);
    expectExit(result, 2);
    expect(result.stderr).toContain('--step');
    expect(result.stderr).toContain('"abc"');
  });

  it('a --from that is not a time', async () => {
    const result = await forewarn([...BACKTEST, '--from', 'yesterday', '--to', TO]);
    expectExit(result, 2);
    expect(result.stderr).toContain('--from');
    expect(result.stderr).toContain('ISO 8601');
  });

  it('--to before --from', async () => {
    const result = await forewarn([...BACKTEST, '--from', TO, '--to', FROM]);
    expectExit(result, 2);
    expect(result.stderr).toContain('--to');
    expect(result.stderr).toContain('after --from');
  });

  it('an unknown detector', async () => {
    const result = await forewarn(['backtest', '--detector', 'nope', '--from', FROM, '--to', TO]);
    expectExit(result, 2);
    expect(result.stderr).toContain('--detector');
  });

  it('start --role with an unknown role', async () => {
    const result = await forewarn(['start', '--role', 'nope']);
    expectExit(result, 2);
    expect(result.stderr).toContain('--role');
    expect(result.stderr).toContain('"nope"');
  });
});

describe('config check', () => {
  it('a valid file exits 0 and says ok', async () => {
    const file = join(tmp, 'valid.yaml');
    await writeFile(file, shippedText);
    const result = await forewarn(['config', 'check', file]);
    expectExit(result, 0);
    expect(result.stdout).toBe(`${file}: ok\n`);
  });

  it('an invalid file exits 1 and lists every problem with path, line, expected and found', async () => {
    const lines = shippedText.split('\n');
    const tzLine = lines.findIndex((l) => /^timezone:/.test(l));
    const confirmLine = lines.findIndex((l) => /^\s*confirmSeconds:/.test(l));
    expect(tzLine).toBeGreaterThanOrEqual(0);
    expect(confirmLine).toBeGreaterThanOrEqual(0);
    lines[tzLine] = 'timezone: Atlantis/Capital';
    lines[confirmLine] = lines[confirmLine]!.replace(/:.*$/, ': -5');
    const file = join(tmp, 'invalid.yaml');
    await writeFile(file, lines.join('\n'));

    const result = await forewarn(['config', 'check', file]);
    expectExit(result, 1);
    expect(result.stdout).toBe('');
    const err = result.stderr.split('\n');
    expect(err).toContain(
      `${file}: timezone (line ${tzLine + 1}): expected an IANA time zone such as "Asia/Shanghai", got "Atlantis/Capital"`,
    );
    expect(err).toContain(
      `${file}: detectors.paymentHealth.confirmSeconds (line ${confirmLine + 1}): expected a value >= 0, got -5`,
    );
    expect(err).toContain(`2 problem(s) found in ${file}`);
  });

  it('a file that is not YAML exits 1 naming the line', async () => {
    const file = join(tmp, 'not-yaml.yaml');
    await writeFile(file, 'timezone: UTC\ndetectors: [unclosed\nworkers: {}\n');
    const result = await forewarn(['config', 'check', file]);
    expectExit(result, 1);
    expect(result.stderr).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: line \\d+: `, 'm'),
    );
  });

  it('a missing file exits 1 naming the file', async () => {
    const file = join(tmp, 'no-such-config.yaml');
    const result = await forewarn(['config', 'check', file]);
    expectExit(result, 1);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toContain('cannot read');
  });

  it('without an argument checks $FOREWARN_CONFIG', async () => {
    const file = join(tmp, 'from-env.yaml');
    await writeFile(file, shippedText.replace(/^timezone:.*$/m, 'timezone: Not/AZone'));
    const result = await forewarn(['config', 'check'], { FOREWARN_CONFIG: file });
    expectExit(result, 1);
    expect(result.stderr).toContain(`${file}: timezone`);
  });
});

describe('migrate', () => {
  it('migrates a fresh database, then says it is up to date', async () => {
    const db = await freshDatabase();
    const versions = (await readMigrations()).map((m) => m.version);
    expect(versions.length).toBeGreaterThan(0);

    const first = await forewarn(['migrate'], { DATABASE_URL: db.url });
    expectExit(first, 0);
    expect(first.stdout).toContain(`at version ${Math.max(...versions)}`);
    expect(first.stdout).toContain('(applied ');
    expect(first.stdout).not.toContain('already up to date');
    expect(await appliedVersions(db.pool)).toEqual(versions);

    const second = await forewarn(['migrate'], { DATABASE_URL: db.url });
    expectExit(second, 0);
    expect(second.stdout).toContain('already up to date');
    expect(second.stdout).not.toContain('(applied ');
    expect(await appliedVersions(db.pool)).toEqual(versions);
  });

  it('does not print the password from DATABASE_URL', async () => {
    const db = await freshDatabase();
    const url = new URL(db.url);
    url.password = 'cli-test-secret';
    const result = await forewarn(['migrate'], { DATABASE_URL: url.toString() });
    expectExit(result, 0);
    expect(result.stdout + result.stderr).not.toContain('cli-test-secret');
  });

  it('two concurrent runs both succeed and apply each migration once', async () => {
    const db = await freshDatabase();
    const versions = (await readMigrations()).map((m) => m.version);
    const results = await Promise.all([
      forewarn(['migrate'], { DATABASE_URL: db.url }),
      forewarn(['migrate'], { DATABASE_URL: db.url }),
    ]);
    for (const result of results) expectExit(result, 0);
    expect(await appliedVersions(db.pool)).toEqual(versions);
    // Exactly one of them applied the migrations.
    expect(results.filter((r) => r.stdout.includes('(applied ')).length).toBe(1);
  });

  it('concurrent runs against a database that does not exist yet create it once and all succeed', async () => {
    const versions = (await readMigrations()).map((m) => m.version);
    // The race is between the existence probe and CREATE DATABASE; two rounds make it likely.
    for (let round = 0; round < 2; round++) {
      const name = `fw_test_cli_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
      extraDatabases.push(name);
      const url = databaseUrl(name);
      const results = await Promise.all(
        Array.from({ length: 3 }, () => forewarn(['migrate'], { DATABASE_URL: url })),
      );
      for (const result of results) expectExit(result, 0);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        expect(await appliedVersions(client)).toEqual(versions);
      } finally {
        await client.end();
      }
    }
  }, 120_000);
});

describe('run', () => {
  it('against an unmigrated database exits 1 telling to run forewarn migrate', async () => {
    const db = await freshDatabase();
    const result = await forewarn(['run', 'payment-health'], { DATABASE_URL: db.url });
    expectExit(result, 1);
    expect(result.stderr).toContain('FW_SCHEMA_OUTDATED');
    expect(result.stderr).toContain('forewarn migrate');
    expect(result.stdout).toBe('');
  });

  it('a future --at is refused with FW_CLOCK_SKEW unless --dry-run is given', async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const client = await db.pool.connect();
    try {
      await createPlatformSchema(client, 'platform');
    } finally {
      client.release();
    }
    const at = new Date(Date.now() + 10 * 60_000).toISOString();
    const refused = await forewarn(['run', 'payment-health', '--at', at], { DATABASE_URL: db.url });
    expectExit(refused, 1);
    expect(refused.stderr).toContain('FW_CLOCK_SKEW');
    expect(refused.stderr).toContain('--dry-run');
    const { rows } = await db.pool.query<{ outcome: string }>('SELECT outcome FROM forewarn.detector_runs');
    expect(rows).toEqual([{ outcome: 'refused' }]);

    const dry = await forewarn(['run', 'payment-health', '--at', at, '--dry-run'], { DATABASE_URL: db.url });
    expectExit(dry, 0);
    expect(dry.stdout).toContain('dry run: nothing written');
  });
});
