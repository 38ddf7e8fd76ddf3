// The queue dashboard (Bull Board at /admin/queues) over real HTTP against real Redis: without
// FOREWARN_ADMIN_TOKEN, with another token or another scheme, the page, its static assets, its
// JSON API and paths that match nothing get 401 with the basic-auth challenge; with the token (as
// a bearer token or as the password of basic auth) they are served. Read-only by default: a retry
// and a pause are refused with 405 and nothing changes in Redis; with http.adminQueues.readOnly
// false the pause goes through. A replica without the token refuses everything and says so at
// start. In headless Chromium, with the token as basic-auth credentials, the page's scripts run
// under its own CSP and it lists forewarn's queues (screenshot in /tmp). In production, the HTTP
// role does not start without the token.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../lib/config/schema.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { ADMIN_QUEUES_CSP } from '../../lib/http/routes/admin-queues.ts';
import { SECURITY_HEADERS } from '../../lib/http/security.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { Queues, QUEUE_NAMES } from '../../lib/queue/queues.ts';
import { launchBrowser } from '../support/browser.ts';
import { runForewarn } from '../support/cli.ts';
import { LINK_KEYS, LINK_SECRET } from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  databaseUrl,
  REDIS_URL,
  type TestDatabase,
} from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const TOKEN = 'admin-token-for-tests-0123456789abcdef';
const SCREENSHOT = '/tmp/forewarn-admin-queues.png';

let db: TestDatabase;
let redis: Redis;
let redisPrefix: Awaited<ReturnType<typeof createTestRedisPrefix>>;
let queues: Queues;
let shipped: Config;
let http: RunningHttpServer;
const servers: RunningHttpServer[] = [];
const logs = captureLogs('info');
let jobId: string;

function start(
  options: { adminToken?: string | undefined; readOnly?: boolean; logger?: typeof logs.logger } = {},
): Promise<RunningHttpServer> {
  const config: Config =
    options.readOnly === undefined
      ? shipped
      : { ...shipped, http: { adminQueues: { readOnly: options.readOnly } } };
  return startHttpServer(
    {
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      adminToken: 'adminToken' in options ? options.adminToken : TOKEN,
      config: () => config,
      queues,
      logger: options.logger ?? logs.logger,
      now: Date.now,
    },
    { host: '127.0.0.1', port: 0 },
  ).then((server) => {
    servers.push(server);
    return server;
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  redisPrefix = await createTestRedisPrefix();
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  queues = new Queues(redis, redisPrefix.prefix, randomUUID());
  shipped = await loadConfigFile(SHIPPED);
  // A job for the board to show and for the refused retry to name.
  const job = await queues.get('delivery').add('deliver-notifications', { ids: ['n-1'] });
  jobId = job.id!;
  http = await start();
});

afterAll(async () => {
  for (const server of servers) await server.close();
  await queues?.close();
  redis?.disconnect();
  await redisPrefix?.cleanup();
  await db?.drop();
});

const basic = (password: string, user = 'ops') =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function get(path: string, authorization?: string, server = http) {
  return fetch(new URL(path, server.address), {
    headers: authorization === undefined ? {} : { authorization },
  });
}

/** A static asset the page loads, read from the page itself (its name carries a content hash). */
async function scriptPath(): Promise<string> {
  const page = await (await get('/admin/queues', `Bearer ${TOKEN}`)).text();
  const src = /<script defer src="(static\/js\/main\.[^"]+\.js)"/.exec(page)?.[1];
  expect(src, page).toBeDefined();
  return `/admin/queues/${src}`;
}

const GUARDED = [
  '/admin/queues',
  '/admin/queues/',
  '/admin/queues/queue/delivery',
  '/admin/queues/static/images/logo.svg',
  '/admin/queues/api/queues',
  '/admin/queues/api/redis/stats',
  '/admin/queues/no-such-page',
];

describe('without the admin token', () => {
  it.each([
    ['no Authorization header', undefined],
    ['a wrong bearer token', `Bearer ${TOKEN}x`],
    ['basic auth with a wrong password', basic(`${TOKEN}x`)],
    ['the token as the basic-auth user name', basic('', TOKEN)],
    ['another scheme', `Token ${TOKEN}`],
  ])('%s: the page, its assets and its API are 401 with the basic-auth challenge', async (_what, auth) => {
    for (const path of [...GUARDED, await scriptPath()]) {
      const response = await get(path, auth);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate'), path).toMatch(/^Basic realm="forewarn admin"/);
      const body = await response.text();
      expect(JSON.parse(body), path).toMatchObject({ error: 'FW_ADMIN_UNAUTHORIZED' });
      // Nothing of the board: no queue name, no script.
      expect(body, path).not.toContain('delivery');
    }
  });

  it('an action is 401 too, and changes nothing', async () => {
    const response = await fetch(new URL('/admin/queues/api/queues/delivery/pause', http.address), {
      method: 'PUT',
    });
    expect(response.status).toBe(401);
    expect(await queues.get('delivery').isPaused()).toBe(false);
  });

  it('the token is never logged', () => {
    const text = JSON.stringify(logs.lines());
    expect(text).toContain('admin request refused');
    expect(text).not.toContain(TOKEN);
  });
});

describe('with the admin token', () => {
  it.each([
    ['as a bearer token', `Bearer ${TOKEN}`],
    ['as the basic-auth password, any user name', basic(TOKEN, 'whoever')],
  ])('%s: the page, its assets and its API are served', async (_what, auth) => {
    const page = await get('/admin/queues', auth);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/" />');
    expect(html).toContain('forewarn queues');

    const script = await get(await scriptPath(), auth);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);

    const api = await get('/admin/queues/api/queues', auth);
    expect(api.status).toBe(200);
    const { queues: listed } = (await api.json()) as {
      queues: Array<{ name: string; readOnlyMode: boolean }>;
    };
    expect(listed.map((q) => q.name).sort()).toEqual([...QUEUE_NAMES].sort());
    expect(listed.every((q) => q.readOnlyMode)).toBe(true);
  });

  it("the board's responses carry its own CSP; every other route keeps the strict one", async () => {
    const page = await get('/admin/queues', `Bearer ${TOKEN}`);
    expect(page.headers.get('content-security-policy')).toBe(ADMIN_QUEUES_CSP);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const health = await get('/healthz');
    expect(health.headers.get('content-security-policy')).toBe(SECURITY_HEADERS['content-security-policy']);
  });

  it('a path of the board that matches nothing is 404 (after the token)', async () => {
    expect((await get('/admin/queues/no-such-page', `Bearer ${TOKEN}`)).status).toBe(404);
  });
});

describe('read-only by default', () => {
  const act = (path: string, server = http) =>
    fetch(new URL(`/admin/queues/api/queues/${path}`, server.address), {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}` },
    });

  it.each([`delivery/JOB/retry`, 'delivery/pause', 'pause', 'delivery/clean/failed', 'delivery/JOB/clean'])(
    'PUT %s is refused with 405 and changes nothing',
    async (path) => {
      const response = await act(path.replace('JOB', jobId));
      expect(response.status).toBe(405);
      expect(await response.json()).toMatchObject({ error: 'FW_ADMIN_READ_ONLY' });
      expect(await queues.get('delivery').isPaused()).toBe(false);
      expect(await queues.get('delivery').getJob(jobId)).toBeDefined();
    },
  );

  it('adding a job is refused too', async () => {
    const response = await fetch(new URL('/admin/queues/api/queues/delivery/add', http.address), {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', data: {}, options: {} }),
    });
    expect(response.status).toBe(405);
    expect(await queues.get('delivery').getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it('with http.adminQueues.readOnly false, ops can act: a pause goes through', async () => {
    const writable = await start({ readOnly: false });
    const listed = (await (await get('/admin/queues/api/queues', `Bearer ${TOKEN}`, writable)).json()) as {
      queues: Array<{ readOnlyMode: boolean }>;
    };
    expect(listed.queues.every((q) => !q.readOnlyMode)).toBe(true);
    const response = await act('ops-alerts/pause', writable);
    expect(response.status).toBe(200);
    expect(await queues.get('ops-alerts').isPaused()).toBe(true);
    await queues.get('ops-alerts').resume();
  });
});

describe('a replica without FOREWARN_ADMIN_TOKEN', () => {
  it('refuses every request, with the token of another replica too, and says so once at start', async () => {
    const own = captureLogs('info');
    const server = await start({ adminToken: undefined, logger: own.logger });
    for (const path of GUARDED) {
      expect((await get(path, undefined, server)).status, path).toBe(401);
      expect((await get(path, `Bearer ${TOKEN}`, server)).status, path).toBe(401);
      expect((await get(path, basic(''), server)).status, path).toBe(401);
    }
    const warnings = own.lines().filter((l) => l.code === 'FW_ADMIN_UNAUTHORIZED' && l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('/admin/queues refuses every request');
  });
});

describe('in Chromium', () => {
  it('with the token as basic-auth credentials, the page runs its scripts and lists the queues', async () => {
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({
        httpCredentials: { username: 'ops', password: TOKEN },
        viewport: { width: 1280, height: 800 },
      });
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('console', (message) => {
        // The board's stylesheet asks Google for a font; the CSP keeps the page offline on purpose.
        if (message.type() === 'error' && !message.text().includes('fonts.googleapis.com'))
          problems.push(message.text());
      });
      page.on('pageerror', (error) => problems.push(error.message));
      const response = await page.goto(new URL('/admin/queues', http.address).toString());
      expect(response?.status()).toBe(200);
      // Rendered by the board's scripts from its API: every queue is named on the page.
      for (const name of QUEUE_NAMES)
        await page
          .getByRole('link', { name: new RegExp(`^${name}\\b`) })
          .first()
          .waitFor({ timeout: 20_000 });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(problems).toEqual([]);

      // Without credentials the browser gets the challenge and no board (headless, it has no
      // prompt to show: the navigation fails with the refusal).
      const anonymous = await (await browser.newContext()).newPage();
      await expect(anonymous.goto(new URL('/admin/queues', http.address).toString())).rejects.toThrow(
        /ERR_INVALID_AUTH_CREDENTIALS/,
      );
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('in production', () => {
  it('the HTTP role does not start without FOREWARN_ADMIN_TOKEN, naming it and the dashboard', async () => {
    const result = await runForewarn(['start', '--role', 'http'], {
      env: {
        NODE_ENV: 'production',
        DATABASE_URL: databaseUrl('forewarn_admin_queues_unused'),
        REDIS_URL,
        FOREWARN_CONFIG: SHIPPED,
        FOREWARN_LINK_SECRET: LINK_SECRET,
        FOREWARN_PUBLIC_URL: 'https://notify.example.com',
        FOREWARN_API_TOKEN: 'api-token-never-printed-0123456789abcdef',
        FOREWARN_HTTP_PORT: '0',
      },
    });
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).not.toContain('FW_SERVICE_UNREACHABLE');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error \[FW_ENV_MISSING\]: environment variable FOREWARN_ADMIN_TOKEN: required with NODE_ENV=production by the HTTP route \/admin\/queues\b/,
    );
    expect(result.stderr).not.toContain('api-token-never-printed');
  });
});
