// The push channel (lib/channels/push-channel.ts): users reached through the platform's SMS or push
// gateway, against real PostgreSQL, Redis and a local HTTP gateway (node:http on port 0). An
// incident's fan-out with userChannels [email, inapp, push] sends each targeted user one signed
// POST that the gateway verifies as README "Webhooks" says, carrying the user id and the in-app
// copy; a 500 is retried with the same idempotency key and then delivered, a 400 is not retried;
// a user who opted out of push gets nothing there and still gets the other channels. The config
// refuses push without a gateway, or with a chat robot for one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { enqueueFanouts } from '../../jobs/fanout-incident-event.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { savePreferences } from '../../lib/policy/preferences.ts';
import { referencePlatform } from '../../sim/platform.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import {
  attempt,
  DAY,
  paymentIncidentOpened,
  startInProcess,
  user,
  waitForPipelineIdle,
} from '../support/notifications.ts';
import { loadPlatform } from '../support/platform.ts';
import { createTestDatabase, createTestRedisPrefix, type TestDatabase } from '../support/services.ts';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp.ts';

const SECRET = 'push-gateway-secret-0123456789abcdef';
const SECRET_ENV = 'FW_TEST_PUSH_SECRET';

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
}

let dir: string;
let db: TestDatabase;
let smtp: TestSmtpServer;
let gateway: Server;
let gatewayUrl: string;
const received: Received[] = [];
/** What the gateway answers next, per user id; then 200. */
const answers = new Map<string, number[]>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'forewarn-push-'));
  db = await createTestDatabase();
  smtp = await startSmtpServer();
  process.env[SECRET_ENV] = SECRET;
  gateway = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: req.headers, raw });
      const userId = (JSON.parse(raw) as { userId: string }).userId;
      const status = answers.get(userId)?.shift() ?? 200;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status === 200 ? '{"ok":true}' : '{"error":"try later"}');
    });
  });
  gateway.listen(0, '127.0.0.1');
  await once(gateway, 'listening');
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}/push`;
});

afterAll(async () => {
  delete process.env[SECRET_ENV];
  gateway?.closeAllConnections();
  await new Promise((resolve) => gateway?.close(resolve));
  await smtp?.close();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

/** The shipped config with users reached by push too, through `push` (or none). */
async function configFile(name: string, push: unknown, format = 'json'): Promise<string> {
  const config = parse(await readFile(SHIPPED_CONFIG, 'utf8')) as Record<string, Record<string, unknown>>;
  const notifications = config.notifications!;
  notifications.userChannels = ['email', 'inapp', 'push'];
  notifications.ops = { ...(notifications.ops as object), emails: [] };
  notifications.retry = { maxAttempts: 3, baseDelaySeconds: 0.05, maxDelaySeconds: 0.1 };
  notifications.webhooks = {
    targets: [
      { id: 'gateway', url: gatewayUrl, format, secretEnv: format === 'json' ? SECRET_ENV : undefined },
    ],
  };
  if (push !== undefined) notifications.push = push;
  const file = join(dir, name);
  await writeFile(file, stringify(config));
  return file;
}

/** The gateway's check, as README "Webhooks" documents it for the json format. */
function verified(r: Received): boolean {
  const header = String(r.headers['x-forewarn-signature'] ?? '');
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(Date.now() / 1000 - t) > 300) return false;
  const expected = createHmac('sha256', SECRET).update(`${t}.${r.raw}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

it('sends each targeted user one signed POST with their id and the in-app copy, retrying a 500, never a 400, minding opt-outs', async () => {
  const users = Array.from({ length: 6 }, (_, i) =>
    user(`p${i}`, { email: i < 2 ? `p${i}@example.com` : null, locale: i % 2 === 0 ? 'zh-CN' : 'en' }),
  );
  const paidAt = Date.now() - 3 * DAY;
  await loadPlatform(db.pool, {
    platform: referencePlatform(),
    users,
    attempts: users.map((u, i) => attempt(1 + i, u.id, 'wechat_pay', 'succeeded', paidAt)),
  });
  // p5 opted out of service messages by push; p1's gateway answers 500 once, p2's 400.
  await savePreferences(
    db.pool,
    [{ userId: 'p5', category: 'service', channel: 'push', optedOut: true }],
    'api',
  );
  answers.set('p1', [500]);
  answers.set('p2', [400]);
  const prefix = await createTestRedisPrefix();
  const pipeline = await startInProcess({
    databaseUrl: db.url,
    prefix: prefix.prefix,
    configPath: await configFile('push.yaml', { target: 'gateway' }),
    smtpUrl: smtp.url,
  });
  try {
    const recorded = await recordCauseChange(pipeline.ctx.db, paymentIncidentOpened());
    await enqueueFanouts(pipeline.ctx, [recorded.eventId]);
    await waitForPipelineIdle(db.pool, 1, 20_000);
  } finally {
    await pipeline.close();
    await prefix.cleanup();
  }

  expect(received.every(verified)).toBe(true);
  const bodies = received.map((r) => ({
    ...(JSON.parse(r.raw) as { id: string; userId: string; kind: string; subject: string; text: string }),
    key: r.headers['idempotency-key'],
  }));
  // p1 twice (the 500, then the retry), with one key; everyone else once; p5 never.
  expect(bodies.map((b) => b.userId).sort()).toEqual(['p0', 'p1', 'p1', 'p2', 'p3', 'p4']);
  const p1 = bodies.filter((b) => b.userId === 'p1');
  expect(new Set(p1.map((b) => b.key)).size).toBe(1);
  for (const b of bodies) {
    expect(b.kind).toBe('payment-degraded');
    expect(b.key).toBe(b.id);
    expect(b.subject).not.toBe('');
    expect(b.text).not.toBe('');
  }
  const { rows } = await db.pool.query<{
    user_id: string;
    channel: string;
    status: string;
    last_error: string | null;
  }>(`SELECT user_id, channel, status, last_error FROM forewarn.notifications ORDER BY user_id, channel`);
  const push = Object.fromEntries(rows.filter((r) => r.channel === 'push').map((r) => [r.user_id, r]));
  expect(push.p1!.status).toBe('sent');
  expect(push.p2).toMatchObject({
    status: 'failed',
    last_error: expect.stringContaining('webhook "gateway" answered 400'),
  });
  expect(push.p5!.status).toBe('cancelled');
  // p5 still gets the other channels: the in-app message.
  expect(rows.find((r) => r.user_id === 'p5' && r.channel === 'inapp')!.status).toBe('sent');
  expect(smtp.messages.map((m) => m.envelope.to[0]).sort()).toEqual(['p0@example.com', 'p1@example.com']);
});

it('the config refuses push without a gateway, or with a chat robot for one', async () => {
  await expect(loadConfigFile(await configFile('none.yaml', undefined))).rejects.toThrow(
    /notifications\.push.*expected \{ target: <id> \} naming the webhook target of your SMS or push gateway/s,
  );
  await expect(loadConfigFile(await configFile('unknown.yaml', { target: 'sms' }))).rejects.toThrow(
    /notifications\.push\.target.*expected the id of a target in notifications\.webhooks\.targets \("gateway"\)/s,
  );
  await expect(
    loadConfigFile(await configFile('robot.yaml', { target: 'gateway' }, 'slack')),
  ).rejects.toThrow(/expected a target of the json format .*"gateway" is slack/s);
});
