// Webhook targets that production cannot use stop `forewarn start` before it connects to
// anything: a plain http target (development takes one to localhost) and a target whose secret
// variable is unset. The refusal names the target and the variable, never a secret's value.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { runForewarn, type CliResult } from '../support/cli.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import { databaseUrl, REDIS_URL } from '../support/services.ts';

/** Nobody creates it: a refused start never gets as far as connecting. */
const UNUSED_DB = databaseUrl('forewarn_webhook_start_unused');
const SECRET_VALUE = 'webhook-secret-value-0123456789abcdef';

let dir: string;
let configPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-webhook-start-'));
  const doc = parseDocument(await readFile(SHIPPED_CONFIG, 'utf8'));
  doc.setIn(
    ['notifications', 'webhooks', 'targets'],
    doc.createNode([
      { id: 'local-dev', url: 'http://127.0.0.1:9/hook', format: 'slack' },
      {
        id: 'sms-gateway',
        url: 'https://sms.example.com/hook',
        format: 'json',
        secretEnv: 'FW_TEST_SMS_SECRET',
      },
    ]),
  );
  configPath = join(dir, 'forewarn.yaml');
  await writeFile(configPath, String(doc));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>): Promise<CliResult> {
  return runForewarn(['start', '--role', 'notifications'], {
    env: {
      DATABASE_URL: UNUSED_DB,
      REDIS_URL,
      FOREWARN_CONFIG: configPath,
      LOG_LEVEL: 'info',
      SMTP_URL: `outbox:${dir}/outbox`,
      FOREWARN_LINK_SECRET: 'link-secret-0123456789abcdef0123456789',
      FOREWARN_PUBLIC_URL: 'https://notify.example.com',
      ...env,
    },
  });
}

describe('forewarn start with webhook targets', () => {
  it('in production, refuses the http target and the unset secret variable, naming both', async () => {
    const result = await start({ NODE_ENV: 'production' });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).not.toContain('FW_SERVICE_UNREACHABLE');
    expect(result.stderr).toContain(
      'notifications.webhooks.targets "local-dev": url: expected https with NODE_ENV=production',
    );
    expect(result.stderr).toContain(
      'environment variable FW_TEST_SMS_SECRET: required with NODE_ENV=production by webhook target "sms-gateway"',
    );
  });

  it('in development, gets past both (then stops at the database nobody created)', async () => {
    const result = await start({});
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('FW_SERVICE_UNREACHABLE');
    expect(result.stderr).not.toContain('notifications.webhooks');
    expect(result.stderr).not.toContain('FW_TEST_SMS_SECRET');
  });

  it('in production with the secret set, still refuses the http target, and never shows the secret', async () => {
    const result = await start({ NODE_ENV: 'production', FW_TEST_SMS_SECRET: SECRET_VALUE });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('"local-dev"');
    expect(result.stderr).not.toContain('FW_TEST_SMS_SECRET');
    expect(result.stdout + result.stderr).not.toContain(SECRET_VALUE);
  });
});
