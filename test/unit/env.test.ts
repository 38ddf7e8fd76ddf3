// The environment: defaults for a local setup, and invalid values refused with the variable's
// name but never its value (connection URLs carry passwords).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  checkProductionEnv,
  PRODUCTION_REQUIREMENTS,
  publicUrlOf,
  readEnv,
  redactUrl,
  type ProductionRequirement,
} from '../../lib/env.ts';
import { ForewarnError } from '../../lib/errors.ts';

const PASSWORD = 'Sup3r-S3cret-pw';

function envError(source: NodeJS.ProcessEnv): ForewarnError {
  try {
    readEnv(source);
  } catch (error) {
    expect(error).toBeInstanceOf(ForewarnError);
    return error as ForewarnError;
  }
  throw new Error(`expected readEnv to refuse ${Object.keys(source).join(', ')}`);
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('readEnv defaults', () => {
  it('an empty environment gets the local defaults', () => {
    const env = readEnv({});
    expect(env.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/forewarn');
    expect(env.platformDatabaseUrl).toBe(env.databaseUrl);
    expect(env.platformSchema).toBe('platform');
    expect(env.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(env.configPath).toBe('config/forewarn.yaml');
    // Unset: the context derives the prefix from the deployment id (lib/queue/identity.ts).
    expect(env.queuePrefix).toBeUndefined();
    expect(env.logLevel).toBe('info');
    // Development: mail goes to ./outbox because nothing else was said.
    expect(env.production).toBe(false);
    expect(env.smtpUrl).toBeUndefined();
    expect(env.emailTransport).toBe('default-outbox');
    expect(env.outboxDir).toBe('./outbox');
    // The HTTP role on the loopback interface; public links point at it in development.
    expect(env.httpHost).toBe('127.0.0.1');
    expect(env.httpPort).toBe(8787);
    expect(env.publicUrl).toBeUndefined();
    expect(publicUrlOf(env)).toBe('http://127.0.0.1:8787');
  });

  it('empty strings count as unset', () => {
    const env = readEnv({ DATABASE_URL: '', REDIS_URL: '', PLATFORM_SCHEMA: '', FOREWARN_CONFIG: '' });
    expect(env).toEqual(readEnv({}));
  });

  it('PLATFORM_DATABASE_URL defaults to DATABASE_URL, and can differ from it', () => {
    const databaseUrl = 'postgresql://forewarn:pw@db.internal:6543/fw';
    expect(readEnv({ DATABASE_URL: databaseUrl }).platformDatabaseUrl).toBe(databaseUrl);
    const platformUrl = 'postgres://reader@replica.internal/shop';
    const env = readEnv({ DATABASE_URL: databaseUrl, PLATFORM_DATABASE_URL: platformUrl });
    expect(env.databaseUrl).toBe(databaseUrl);
    expect(env.platformDatabaseUrl).toBe(platformUrl);
  });

  it('takes every variable that is set', () => {
    const env = readEnv({
      DATABASE_URL: 'postgres://a@h1/db1',
      PLATFORM_SCHEMA: 'shop_v2',
      REDIS_URL: 'rediss://:pw@cache.internal:6380/2',
      FOREWARN_CONFIG: '/etc/forewarn/forewarn.yaml',
      FOREWARN_QUEUE_PREFIX: 'fw-staging',
      LOG_LEVEL: 'debug',
      SMTP_URL: 'smtps://mailer:pw@smtp.internal:465',
      FOREWARN_OUTBOX: '/var/spool/forewarn',
      FOREWARN_LINK_SECRET: 'l'.repeat(40),
      FOREWARN_LINK_SECRETS_OLD: `${'o'.repeat(32)}, ${'p'.repeat(33)}`,
      FOREWARN_HTTP_HOST: '0.0.0.0',
      FOREWARN_HTTP_PORT: '9000',
      FOREWARN_PUBLIC_URL: 'https://notify.example.com/fw',
    });
    expect(env).toEqual({
      databaseUrl: 'postgres://a@h1/db1',
      platformDatabaseUrl: 'postgres://a@h1/db1',
      platformSchema: 'shop_v2',
      redisUrl: 'rediss://:pw@cache.internal:6380/2',
      configPath: '/etc/forewarn/forewarn.yaml',
      queuePrefix: 'fw-staging',
      logLevel: 'debug',
      production: false,
      smtpUrl: 'smtps://mailer:pw@smtp.internal:465',
      emailTransport: 'smtp',
      outboxDir: '/var/spool/forewarn',
      linkSecret: 'l'.repeat(40),
      oldLinkSecrets: ['o'.repeat(32), 'p'.repeat(33)],
      httpHost: '0.0.0.0',
      httpPort: 9000,
      publicUrl: 'https://notify.example.com/fw',
    });
    expect(publicUrlOf(env)).toBe('https://notify.example.com/fw');
  });

  it("public links: FOREWARN_PUBLIC_URL, or in development the HTTP role's own address", () => {
    expect(publicUrlOf(readEnv({ FOREWARN_HTTP_HOST: '::1', FOREWARN_HTTP_PORT: '8080' }))).toBe(
      'http://[::1]:8080',
    );
    expect(() => publicUrlOf(readEnv({ NODE_ENV: 'production' }))).toThrow(
      /^environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production to build public links: expected the http\(s\) URL/,
    );
  });

  it('refuses a link secret too short to be one, without echoing it', () => {
    expect(() => readEnv({ FOREWARN_LINK_SECRET: 'short-secret' })).toThrow(
      /FOREWARN_LINK_SECRET: expected at least 32 characters/,
    );
    try {
      readEnv({ FOREWARN_LINK_SECRET: 'short-secret' });
    } catch (error) {
      expect((error as Error).message).not.toContain('short-secret');
    }
  });

  it('reads old link secrets as a comma-separated list, refusing a short or empty entry by its position only', () => {
    expect(readEnv({}).oldLinkSecrets).toEqual([]);
    const short = 'old-but-short';
    const message = envError({ FOREWARN_LINK_SECRETS_OLD: `${'o'.repeat(32)},${short}` }).message;
    expect(message).toMatch(
      /^environment variable FOREWARN_LINK_SECRETS_OLD: entry 2 of 2: expected a comma-separated list of secrets of at least 32 characters each$/,
    );
    expect(message).not.toContain(short);
    expect(message).not.toContain('o'.repeat(32));
    expect(envError({ FOREWARN_LINK_SECRETS_OLD: `${'o'.repeat(32)},` }).message).toMatch(
      /entry 2 of 2: .*\(this one is empty: a stray comma\?\)/,
    );
  });

  it('refuses an API token too short to be one, without echoing it', () => {
    let message = '';
    try {
      readEnv({ FOREWARN_API_TOKEN: 'short-api-token' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/FOREWARN_API_TOKEN: expected at least 32 characters/);
    expect(message).not.toContain('short-api-token');
    expect(readEnv({ FOREWARN_API_TOKEN: 't'.repeat(32) }).apiToken).toBe('t'.repeat(32));
  });

  it('reads process.env when given nothing', () => {
    vi.stubEnv('PLATFORM_SCHEMA', 'tenant_a');
    vi.stubEnv('FOREWARN_CONFIG', '/tmp/other.yaml');
    const env = readEnv();
    expect(env.platformSchema).toBe('tenant_a');
    expect(env.configPath).toBe('/tmp/other.yaml');
  });
});

describe('SMTP_URL chooses how email leaves', () => {
  it('an smtp:// or smtps:// URL: that server', () => {
    for (const url of ['smtp://u:pw@mail.internal:587', 'smtps://u:pw@mail.internal:465']) {
      expect(readEnv({ SMTP_URL: url })).toMatchObject({ smtpUrl: url, emailTransport: 'smtp' });
    }
  });

  it('outbox:<dir>: .eml files in that directory, chosen on purpose', () => {
    expect(readEnv({ SMTP_URL: 'outbox:/var/spool/forewarn', FOREWARN_OUTBOX: '/elsewhere' })).toMatchObject({
      smtpUrl: undefined,
      emailTransport: 'outbox',
      outboxDir: '/var/spool/forewarn',
    });
    expect(readEnv({ SMTP_URL: 'outbox:./mail' }).outboxDir).toBe('./mail');
  });

  it('outbox: alone: the outbox in FOREWARN_OUTBOX (default ./outbox)', () => {
    expect(readEnv({ SMTP_URL: 'outbox:' })).toMatchObject({
      emailTransport: 'outbox',
      outboxDir: './outbox',
    });
    expect(readEnv({ SMTP_URL: 'outbox:', FOREWARN_OUTBOX: '/srv/eml' }).outboxDir).toBe('/srv/eml');
  });

  it('anything else is refused, saying what is accepted, without echoing it', () => {
    const error = envError({ SMTP_URL: `http://u:${PASSWORD}@mail.internal` });
    expect(error.message).toBe(
      'environment variable SMTP_URL: expected a URL starting with smtp:// or smtps://, or outbox:<dir> for .eml files',
    );
  });
});

describe('checkProductionEnv', () => {
  const production = (extra: NodeJS.ProcessEnv = {}) => readEnv({ NODE_ENV: 'production', ...extra });
  const SECRET = 's'.repeat(40);

  function missing(env: ReturnType<typeof readEnv>, parts: string[], list?: ProductionRequirement[]) {
    try {
      checkProductionEnv(env, parts, list);
    } catch (error) {
      expect(error).toBeInstanceOf(ForewarnError);
      expect((error as ForewarnError).code).toBe('FW_ENV_MISSING');
      return (error as Error).message.split('\n');
    }
    return [];
  }

  it('NODE_ENV=production is production; any other value or none is development', () => {
    expect(production().production).toBe(true);
    for (const value of ['development', 'test', 'Production', '']) {
      expect(readEnv({ NODE_ENV: value }).production).toBe(false);
    }
  });

  it('development refuses nothing: the outbox and a made-up link secret stay its defaults', () => {
    expect(missing(readEnv({}), ['scheduler', 'detection', 'notifications'])).toEqual([]);
  });

  it('production without SMTP_URL, FOREWARN_LINK_SECRET and FOREWARN_PUBLIC_URL names each, with what it expects', () => {
    const lines = missing(production(), ['scheduler', 'detection', 'notifications']);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(
      'environment variable SMTP_URL: required with NODE_ENV=production by the notifications role: ' +
        'expected smtp://user:pass@host:587 or smtps://user:pass@host:465 (email is sent there), ' +
        'or outbox:<dir> to write .eml files instead, on purpose, got nothing',
    );
    expect(lines[1]).toMatch(
      /^environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production by the notifications role: expected at least 32 characters, .*got nothing$/,
    );
    // The restock links in messages point at the HTTP role's public address.
    expect(lines[2]).toMatch(
      /^environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production by the notifications role: expected the http\(s\) URL .*got nothing$/,
    );
  });

  it('production takes an SMTP server or the outbox chosen explicitly, with a link secret', () => {
    const parts = ['notifications'];
    const production = (extra: NodeJS.ProcessEnv = {}) =>
      readEnv({ NODE_ENV: 'production', FOREWARN_PUBLIC_URL: 'https://notify.example.com', ...extra });
    expect(missing(production({ SMTP_URL: 'smtp://mail:25', FOREWARN_LINK_SECRET: SECRET }), parts)).toEqual(
      [],
    );
    expect(
      missing(production({ SMTP_URL: 'outbox:/var/spool/fw', FOREWARN_LINK_SECRET: SECRET }), parts),
    ).toEqual([]);
    expect(missing(production({ SMTP_URL: 'outbox:', FOREWARN_LINK_SECRET: SECRET }), parts)).toEqual([]);
    // FOREWARN_OUTBOX alone is no choice: it only says where the outbox would be.
    expect(missing(production({ FOREWARN_OUTBOX: '/srv', FOREWARN_LINK_SECRET: SECRET }), parts)).toEqual([
      expect.stringMatching(/^environment variable SMTP_URL: /),
    ]);
  });

  it('production needs FOREWARN_API_TOKEN for the preferences API only', () => {
    const lines = missing(production(), ['http:/api/preferences']);
    expect(lines).toEqual([
      expect.stringMatching(
        /^environment variable FOREWARN_API_TOKEN: required with NODE_ENV=production by the HTTP route \/api\/preferences: expected at least 32 characters/,
      ),
    ]);
    expect(missing(production({ FOREWARN_API_TOKEN: 't'.repeat(32) }), ['http:/api/preferences'])).toEqual(
      [],
    );
    expect(missing(production(), ['notifications']).join('\n')).not.toContain('FOREWARN_API_TOKEN');
  });

  it('checks only what the parts that run need', () => {
    expect(missing(production(), ['scheduler', 'detection'])).toEqual([]);
    expect(missing(production({ FOREWARN_LINK_SECRET: SECRET }), ['notifications'])).toHaveLength(2);
  });

  it('never echoes a value that is set', () => {
    const lines = missing(production({ SMTP_URL: `smtp://u:${PASSWORD}@mail:587` }), ['notifications']);
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });

  it('is a list: an HTTP route that needs a secret plugs in by naming itself', () => {
    const withRoute: ProductionRequirement[] = [
      ...PRODUCTION_REQUIREMENTS,
      {
        variable: 'FOREWARN_LINK_SECRET',
        expected: 'the secret that signed the links',
        neededBy: ['http:POST /restock/subscribe'],
        isSet: (env) => env.linkSecret !== undefined,
      },
    ];
    const env = production({ SMTP_URL: 'smtp://mail:25', FOREWARN_PUBLIC_URL: 'https://notify.example.com' });
    expect(missing(env, ['http', 'http:GET /healthz'], withRoute)).toEqual([]);
    expect(missing(env, ['http', 'http:POST /restock/subscribe'], withRoute)).toEqual([
      'environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production by the HTTP route POST /restock/subscribe: expected the secret that signed the links, got nothing',
    ]);
  });

  it('the HTTP role needs the public URL, and its restock routes the link secret', () => {
    const parts = ['http', 'http:/healthz', 'http:/restock/subscribe', 'http:/restock/stop'];
    expect(missing(production(), parts)).toEqual([
      'environment variable FOREWARN_LINK_SECRET: required with NODE_ENV=production by the HTTP route /restock/subscribe and the HTTP route /restock/stop: ' +
        'expected at least 32 characters, the same on every replica and known to the platform ' +
        '(it signs the links in messages; a secret made up per process signs links nobody can verify), got nothing',
      "environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production by the http role: expected the http(s) URL where users reach forewarn's HTTP role, e.g. https://notify.example.com (links in messages point there), got nothing",
    ]);
    const set = { FOREWARN_LINK_SECRET: SECRET, FOREWARN_PUBLIC_URL: 'https://notify.example.com' };
    expect(missing(production(set), parts)).toEqual([]);
    // SMTP is the notifications role's: an HTTP-only replica does not need it.
    expect(
      missing(production({ FOREWARN_PUBLIC_URL: 'https://n.example.com' }), ['http', 'http:/healthz']),
    ).toEqual([]);
  });

  it('the unsubscribe route needs an https public URL (one-click unsubscribe), naming what it holds instead', () => {
    const set = { FOREWARN_LINK_SECRET: SECRET, FOREWARN_PUBLIC_URL: 'http://notify.example.com' };
    const https =
      'environment variable FOREWARN_PUBLIC_URL: required with NODE_ENV=production by the HTTP route /unsubscribe: ' +
      'expected an https URL: the List-Unsubscribe header of emails points there, and mail providers take only https ' +
      'for one-click unsubscribe (RFC 8058), got an http:// URL';
    expect(missing(production(set), ['http', 'http:/unsubscribe'])).toEqual([https]);
    expect(missing(production(set), ['http', 'http:/restock/stop'])).toEqual([]);
    expect(
      missing(production({ ...set, FOREWARN_PUBLIC_URL: 'https://notify.example.com' }), [
        'http',
        'http:/unsubscribe',
      ]),
    ).toEqual([]);
    // Unset is one refusal, not two.
    expect(missing(production({ FOREWARN_LINK_SECRET: SECRET }), ['http', 'http:/unsubscribe'])).toHaveLength(
      1,
    );
  });
});

describe('readEnv refuses invalid values', () => {
  it.each([
    ['FOREWARN_HTTP_PORT', `port-${PASSWORD}`],
    ['FOREWARN_HTTP_PORT', '70000'],
    ['FOREWARN_PUBLIC_URL', `ftp://u:${PASSWORD}@files.example.com`],
    ['DATABASE_URL', `mysql://forewarn:${PASSWORD}@db.internal/forewarn`],
    ['DATABASE_URL', `postgres//forewarn:${PASSWORD}@db.internal/forewarn`],
    ['PLATFORM_DATABASE_URL', `https://reader:${PASSWORD}@replica.internal/shop`],
    ['REDIS_URL', `postgres://:${PASSWORD}@cache.internal:6379`],
    ['REDIS_URL', `redis://:${PASSWORD}@cache.internal:99999`],
    ['PLATFORM_SCHEMA', `platform; DROP TABLE x -- ${PASSWORD}`],
    ['LOG_LEVEL', `loud-${PASSWORD}`],
  ])('%s = %s is FW_ENV_INVALID, named, value not echoed', (name, value) => {
    const error = envError({ [name]: value });
    expect(error.code).toBe('FW_ENV_INVALID');
    expect(error.message).toContain(`environment variable ${name}:`);
    expect(error.message).toMatch(/expected/);
    expect(error.message).not.toContain(PASSWORD);
    expect(error.message).not.toContain(value);
  });

  it('reports every invalid variable at once and only those', () => {
    const error = envError({
      DATABASE_URL: `mysql://u:${PASSWORD}@h/db`,
      REDIS_URL: 'http://cache',
      FOREWARN_CONFIG: 'config/forewarn.yaml',
    });
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('environment variable DATABASE_URL:'))).toBe(true);
    expect(lines.some((l) => l.startsWith('environment variable REDIS_URL:'))).toBe(true);
    expect(error.message).not.toContain('FOREWARN_CONFIG');
    expect(error.message).not.toContain(PASSWORD);
  });

  it('says which URL schemes are accepted', () => {
    expect(envError({ DATABASE_URL: 'mysql://h/db' }).message).toContain('postgres://');
    expect(envError({ REDIS_URL: 'http://h' }).message).toContain('redis://');
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps the rest', () => {
    const redacted = redactUrl(`postgres://forewarn:${PASSWORD}@db.internal:5432/forewarn`);
    expect(redacted).not.toContain(PASSWORD);
    expect(redacted).toBe('postgres://forewarn:***@db.internal:5432/forewarn');
  });

  it('hides a password without a user name (Redis style)', () => {
    const redacted = redactUrl(`redis://:${PASSWORD}@cache.internal:6379/0`);
    expect(redacted).not.toContain(PASSWORD);
    expect(redacted).toContain('cache.internal:6379');
  });

  it('hides a percent-encoded password', () => {
    const redacted = redactUrl('postgres://u:p%40ss%2Fword@h/db');
    expect(redacted).not.toContain('p%40ss');
    expect(redacted).not.toContain('p@ss');
  });

  it('leaves a URL without password as it is', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/forewarn')).toBe(
      'postgres://postgres@127.0.0.1:5432/forewarn',
    );
  });

  it('never echoes an unparseable value', () => {
    const redacted = redactUrl(`not a url with ${PASSWORD}`);
    expect(redacted).not.toContain(PASSWORD);
  });
});

describe('the DKIM key (FOREWARN_DKIM_PRIVATE_KEY, FOREWARN_DKIM_PRIVATE_KEY_FILE)', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'forewarn-dkim-env-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is absent by default: mail is not signed', () => {
    expect(readEnv({}).dkimPrivateKey).toBeUndefined();
  });

  it('reads the PEM from the variable, also with its line breaks written as \\n', () => {
    expect(readEnv({ FOREWARN_DKIM_PRIVATE_KEY: pem }).dkimPrivateKey).toBe(pem);
    const oneLine = pem.replace(/\n/g, '\\n');
    expect(readEnv({ FOREWARN_DKIM_PRIVATE_KEY: oneLine }).dkimPrivateKey).toBe(pem);
  });

  it('reads the PEM from the file the _FILE variable names', async () => {
    const file = path.join(dir, 'dkim.pem');
    await writeFile(file, pem, { mode: 0o600 });
    expect(readEnv({ FOREWARN_DKIM_PRIVATE_KEY_FILE: file }).dkimPrivateKey).toBe(pem);
  });

  it('refuses a value that is no private key, naming the variable and never echoing the value', () => {
    const error = envError({ FOREWARN_DKIM_PRIVATE_KEY: `not-a-key-${PASSWORD}` });
    expect(error.code).toBe('FW_ENV_INVALID');
    expect(error.message).toMatch(
      /^environment variable FOREWARN_DKIM_PRIVATE_KEY: expected an RSA private key in PEM .*got something that does not parse as a private key$/,
    );
    expect(error.message).not.toContain(PASSWORD);
  });

  it('refuses a public key, and a key of another type than RSA (nodemailer signs rsa-sha256 only)', () => {
    const publicPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(envError({ FOREWARN_DKIM_PRIVATE_KEY: publicPem }).message).toMatch(
      /FOREWARN_DKIM_PRIVATE_KEY: .*does not parse as a private key/,
    );
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(envError({ FOREWARN_DKIM_PRIVATE_KEY: ed }).message).toMatch(
      /FOREWARN_DKIM_PRIVATE_KEY: expected an RSA private key .*got a key of type ed25519$/,
    );
    const small = generateKeyPairSync('rsa', { modulusLength: 512 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    expect(envError({ FOREWARN_DKIM_PRIVATE_KEY: small }).message).toMatch(/got an RSA key of 512 bits$/);
  });

  it('refuses a file that cannot be read or holds no key, naming the variable and the path', async () => {
    const missing = path.join(dir, 'missing.pem');
    const error = envError({ FOREWARN_DKIM_PRIVATE_KEY_FILE: missing });
    expect(error.message).toContain(
      `environment variable FOREWARN_DKIM_PRIVATE_KEY_FILE: cannot read ${JSON.stringify(missing)} (ENOENT)`,
    );
    const garbage = path.join(dir, 'garbage.pem');
    await writeFile(garbage, `-----BEGIN PRIVATE KEY-----\n${PASSWORD}\n-----END PRIVATE KEY-----\n`);
    const bad = envError({ FOREWARN_DKIM_PRIVATE_KEY_FILE: garbage });
    expect(bad.message).toMatch(
      /^environment variable FOREWARN_DKIM_PRIVATE_KEY_FILE: expected an RSA private key/,
    );
    expect(bad.message).not.toContain(PASSWORD);
  });

  it('refuses both variables at once', () => {
    expect(
      envError({ FOREWARN_DKIM_PRIVATE_KEY: pem, FOREWARN_DKIM_PRIVATE_KEY_FILE: '/x.pem' }).message,
    ).toBe(
      'environment variables FOREWARN_DKIM_PRIVATE_KEY and FOREWARN_DKIM_PRIVATE_KEY_FILE: expected at most one of them, got both',
    );
  });
});
