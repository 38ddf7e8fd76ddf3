// Fail closed in production: `forewarn start` with NODE_ENV=production refuses to start, before
// connecting to anything, when a setting that its roles need is missing, and names it; chosen
// explicitly (SMTP_URL=outbox:<dir>) the outbox still works. Development starts as before.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runForewarn, type CliResult } from '../support/cli.ts';
import { createPlatform, Daemons, SHIPPED_CONFIG, type DaemonEnv } from '../support/daemon.ts';
import { LINK_SECRET } from '../support/notifications.ts';
import {
  createTestDatabase,
  createTestRedisPrefix,
  databaseUrl,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';

/** Nobody creates it: a start that fails closed never gets as far as connecting. */
const UNUSED_DB = databaseUrl('forewarn_production_env_unused');
const SMTP_PASSWORD = 'smtp-Pa55word-never-printed';
const START_TIMEOUT_MS = 30_000;

const daemons = new Daemons();
const cleanups: Array<() => Promise<void>> = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-production-'));
});

afterEach(async () => {
  await daemons.killAll();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>, args: string[] = []): Promise<CliResult> {
  return runForewarn(['start', ...args], {
    env: { DATABASE_URL: UNUSED_DB, REDIS_URL, FOREWARN_CONFIG: SHIPPED_CONFIG, LOG_LEVEL: 'info', ...env },
  });
}

function refusal(result: CliResult): string[] {
  expect(result.signal, result.stderr).toBeNull();
  expect(result.code, result.stderr).toBe(1);
  expect(result.stdout).toBe('');
  // Before anything connected: no "cannot reach PostgreSQL" for the database nobody created.
  expect(result.stderr).not.toContain('FW_SERVICE_UNREACHABLE');
  return result.stderr.trim().split('\n');
}

const PUBLIC_URL = 'https://notify.example.com';
const API_TOKEN = 'api-token-never-printed-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-never-printed-0123456789abcdef';
const ADMIN_TOKEN_LINE =
  'environment variable FOREWARN_ADMIN_TOKEN: required with NODE_ENV=production by the HTTP route /admin/queues and the HTTP route /admin/studio: ' +
  'expected at least 32 characters, known to ops only (the queue dashboard and the template studio ask for it, as a bearer token or as the password of basic auth), got nothing';
const API_TOKEN_LINE =
  'environment variable FOREWARN_API_TOKEN: required with NODE_ENV=production by the HTTP route /api/preferences and the HTTP route /api/channels/status: ' +
  'expected at least 32 characters, known to the platform (its calls to the preferences and channel-status APIs carry it as a bearer token), got nothing';

describe('NODE_ENV=production, forewarn start refuses to start', () => {
  it('without SMTP_URL, FOREWARN_LINK_SECRET and FOREWARN_PUBLIC_URL, naming each and what it expects', async () => {
    const lines = refusal(await start({ NODE_ENV: 'production' }));
    expect(lines).toEqual([
      'error [FW_ENV_MISSING]: environment variable SMTP_URL: required with NODE_ENV=production by the notifications role: ' +
        'expected smtp://user:pass@host:587 or smtps://user:pass@host:465 (email is sent there), ' +
        'or outbox:<dir> to write .eml files instead, on purpose, got nothing',
      'environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production by the notifications role: ' +
        'expected at least 32 characters, the same on every replica and known to the platform ' +
        '(it signs the links in messages; a secret made up per process signs links nobody can verify), got nothing',
      'environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production by the notifications role: ' +
        "expected the http(s) URL where users reach forewarn's HTTP role, e.g. https://notify.example.com " +
        '(links in messages point there), got nothing',
    ]);
  });

  it('without SMTP_URL: mail is never written to .eml files unasked', async () => {
    const lines = refusal(
      await start({
        NODE_ENV: 'production',
        FOREWARN_LINK_SECRET: LINK_SECRET,
        FOREWARN_PUBLIC_URL: PUBLIC_URL,
      }),
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error \[FW_ENV_MISSING\]: environment variable SMTP_URL: required /);
    expect(lines.join('\n')).not.toContain(LINK_SECRET);
  });

  it('without FOREWARN_LINK_SECRET, never printing the SMTP password', async () => {
    const result = await start({
      NODE_ENV: 'production',
      SMTP_URL: `smtp://mailer:${SMTP_PASSWORD}@smtp.example.com:587`,
      FOREWARN_PUBLIC_URL: PUBLIC_URL,
    });
    const lines = refusal(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error \[FW_ENV_MISSING\]: environment variable FOREWARN_LINK_SECRET: required /,
    );
    expect(result.stderr).not.toContain(SMTP_PASSWORD);
  });

  it('--role http without FOREWARN_LINK_SECRET, FOREWARN_PUBLIC_URL, FOREWARN_API_TOKEN and FOREWARN_ADMIN_TOKEN, naming each and the routes that need them', async () => {
    const lines = refusal(
      await start({ NODE_ENV: 'production', FOREWARN_HTTP_PORT: '0' }, ['--role', 'http']),
    );
    expect(lines).toEqual([
      'error [FW_ENV_MISSING]: environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production by ' +
        'the HTTP route /restock/subscribe and the HTTP route /restock/stop and the HTTP route /unsubscribe: ' +
        'expected at least 32 characters, the same on every replica and known to the platform ' +
        '(it signs the links in messages; a secret made up per process signs links nobody can verify), got nothing',
      'environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production by the http role: ' +
        "expected the http(s) URL where users reach forewarn's HTTP role, e.g. https://notify.example.com " +
        '(links in messages point there), got nothing',
      API_TOKEN_LINE,
      ADMIN_TOKEN_LINE,
    ]);
  });

  it('--role http without FOREWARN_API_TOKEN: the preferences API does not start open', async () => {
    const lines = refusal(
      await start(
        {
          NODE_ENV: 'production',
          FOREWARN_LINK_SECRET: LINK_SECRET,
          FOREWARN_PUBLIC_URL: PUBLIC_URL,
          FOREWARN_ADMIN_TOKEN: ADMIN_TOKEN,
          FOREWARN_HTTP_PORT: '0',
        },
        ['--role', 'http'],
      ),
    );
    expect(lines).toEqual([`error [FW_ENV_MISSING]: ${API_TOKEN_LINE}`]);
  });

  it('--role http with the link secret and the API token but no public URL, never printing either', async () => {
    const result = await start(
      {
        NODE_ENV: 'production',
        FOREWARN_LINK_SECRET: LINK_SECRET,
        FOREWARN_API_TOKEN: API_TOKEN,
        FOREWARN_ADMIN_TOKEN: ADMIN_TOKEN,
        FOREWARN_HTTP_PORT: '0',
      },
      ['--role', 'http'],
    );
    const lines = refusal(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error \[FW_ENV_MISSING\]: environment variable FOREWARN_PUBLIC_URL: required /,
    );
    expect(result.stderr).not.toContain(LINK_SECRET);
    expect(result.stderr).not.toContain(API_TOKEN);
    expect(result.stderr).not.toContain(ADMIN_TOKEN);
  });

  it('for the roles that need them only when those roles are asked for', async () => {
    const lines = refusal(await start({ NODE_ENV: 'production' }, ['--role', 'scheduler,notifications']));
    expect(lines.join('\n')).toContain('SMTP_URL');
  });
});

describe('starting', () => {
  async function fixture(): Promise<{ db: TestDatabase; env: DaemonEnv }> {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    await createPlatform(db.pool);
    const redis = await createTestRedisPrefix();
    cleanups.push(() => redis.cleanup());
    return {
      db,
      env: { DATABASE_URL: db.url, FOREWARN_QUEUE_PREFIX: redis.prefix, FOREWARN_CONFIG: SHIPPED_CONFIG },
    };
  }

  it('in production with SMTP_URL=outbox:<dir> and a link secret, logging neither', async () => {
    const { env } = await fixture();
    const daemon = daemons.start({
      ...env,
      NODE_ENV: 'production',
      SMTP_URL: `outbox:${join(dir, 'outbox')}`,
      FOREWARN_LINK_SECRET: LINK_SECRET,
      FOREWARN_PUBLIC_URL: PUBLIC_URL,
    } as DaemonEnv);
    await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
    expect(daemon.logged('FOREWARN_LINK_SECRET is not set')).toEqual([]);
    daemon.signal('SIGTERM');
    expect((await daemon.waitForExit(START_TIMEOUT_MS)).code).toBe(0);
    expect(daemon.stderr).not.toContain(LINK_SECRET);
  });

  it('in production, an HTTP replica with the link secret, the public URL, the API and admin tokens, SMTP_URL not needed', async () => {
    const { env } = await fixture();
    const daemon = daemons.start(
      {
        ...env,
        NODE_ENV: 'production',
        FOREWARN_LINK_SECRET: LINK_SECRET,
        FOREWARN_PUBLIC_URL: 'https://notify.example.com',
        FOREWARN_API_TOKEN: API_TOKEN,
        FOREWARN_ADMIN_TOKEN: ADMIN_TOKEN,
        FOREWARN_HTTP_PORT: '0',
      } as DaemonEnv,
      ['--role', 'http'],
    );
    const started = await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
    const health = await fetch(new URL('/healthz', String(started.http)));
    expect(health.status).toBe(200);
    // The API takes the token the replica was started with.
    const api = await fetch(new URL('/api/preferences/u-1', String(started.http)), {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    expect(api.status).toBe(200);
    // So does the queue dashboard, with the daemon's own queues.
    const board = await fetch(new URL('/admin/queues/api/queues', String(started.http)), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(board.status).toBe(200);
    expect(((await board.json()) as { queues: unknown[] }).queues).toHaveLength(4);
    expect((await fetch(new URL('/admin/queues', String(started.http)))).status).toBe(401);
    daemon.signal('SIGTERM');
    expect((await daemon.waitForExit(START_TIMEOUT_MS)).code).toBe(0);
    expect(daemon.stderr).not.toContain(LINK_SECRET);
    expect(daemon.stderr).not.toContain(API_TOKEN);
    expect(daemon.stderr).not.toContain(ADMIN_TOKEN);
  });

  it('in production, a scheduler and detection replica needs neither', async () => {
    const { env } = await fixture();
    const daemon = daemons.start({ ...env, NODE_ENV: 'production' } as DaemonEnv, [
      '--role',
      'scheduler,detection',
    ]);
    await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
    daemon.signal('SIGTERM');
    expect((await daemon.waitForExit(START_TIMEOUT_MS)).code).toBe(0);
  });

  it('in development without either, as before: the outbox and a per-process secret, with a warning', async () => {
    const { env } = await fixture();
    const daemon = daemons.start(env);
    await daemon.waitForLog('forewarn started', START_TIMEOUT_MS);
    expect(daemon.logged('FOREWARN_LINK_SECRET is not set')).toHaveLength(1);
    daemon.signal('SIGTERM');
    expect((await daemon.waitForExit(START_TIMEOUT_MS)).code).toBe(0);
  });
});
