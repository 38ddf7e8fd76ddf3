// DKIM settings stop `forewarn start` when they do not fit together, before it connects to
// anything: a key that is no private key, a key without notifications.email.dkim, or that config
// without a key. Each refusal names the variable or key and what was expected, never the key.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runForewarn, type CliResult } from '../support/cli.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import { databaseUrl, REDIS_URL } from '../support/services.ts';

/** Nobody creates it: a start refused for its DKIM settings never gets as far as connecting. */
const UNUSED_DB = databaseUrl('forewarn_dkim_start_unused');
const PEM = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();
/** The base64 body of the key: no part of it may show in any output. */
const KEY_LINE = PEM.split('\n')[1]!;

let dir: string;
let signedConfig: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-dkim-start-'));
  const shipped = await readFile(SHIPPED_CONFIG, 'utf8');
  const withDkim = shipped.replace(
    /^( {4})maxConnections: (\d+)$/m,
    '$1maxConnections: $2\n$1dkim: { domainName: notify.example.com, keySelector: fw2026 }',
  );
  expect(withDkim).not.toBe(shipped);
  signedConfig = join(dir, 'forewarn.yaml');
  await writeFile(signedConfig, withDkim);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>): Promise<CliResult> {
  return runForewarn(['start', '--role', 'notifications'], {
    env: { DATABASE_URL: UNUSED_DB, REDIS_URL, FOREWARN_CONFIG: SHIPPED_CONFIG, LOG_LEVEL: 'info', ...env },
  });
}

function refusal(result: CliResult): string {
  expect(result.signal, result.stderr).toBeNull();
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).not.toContain('FW_SERVICE_UNREACHABLE');
  expect(result.stdout + result.stderr).not.toContain(KEY_LINE);
  return result.stderr;
}

describe('forewarn start with DKIM settings that do not fit', () => {
  it('refuses a FOREWARN_DKIM_PRIVATE_KEY that is not a private key', async () => {
    const stderr = refusal(
      await start({ FOREWARN_DKIM_PRIVATE_KEY: 'hunter2-not-a-key', FOREWARN_CONFIG: signedConfig }),
    );
    expect(stderr).toContain(
      'error [FW_ENV_INVALID]: environment variable FOREWARN_DKIM_PRIVATE_KEY: expected an RSA private key in PEM',
    );
    expect(stderr).not.toContain('hunter2');
  });

  it('refuses a key without notifications.email.dkim in the config', async () => {
    const stderr = refusal(await start({ FOREWARN_DKIM_PRIVATE_KEY: PEM }));
    expect(stderr).toContain(
      'error [FW_EMAIL_CONFIG_INVALID]: a DKIM key is set (FOREWARN_DKIM_PRIVATE_KEY or FOREWARN_DKIM_PRIVATE_KEY_FILE) but the config has no notifications.email.dkim',
    );
  });

  it('refuses notifications.email.dkim without a key', async () => {
    const stderr = refusal(await start({ FOREWARN_CONFIG: signedConfig }));
    expect(stderr).toContain(
      'error [FW_EMAIL_CONFIG_INVALID]: notifications.email.dkim is set (domainName "notify.example.com", keySelector "fw2026") but there is no key to sign with',
    );
  });

  it('gets past the DKIM check with both (then stops at the database nobody created)', async () => {
    const result = await start({ FOREWARN_DKIM_PRIVATE_KEY: PEM, FOREWARN_CONFIG: signedConfig });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('FW_SERVICE_UNREACHABLE');
    expect(result.stderr).not.toContain('DKIM');
    expect(result.stdout + result.stderr).not.toContain(KEY_LINE);
  });
});
