// The HTTP role's restock links over real HTTP (fastify on port 0, real fetch) against real
// PostgreSQL, with the platform's tables in a database of their own (as with PLATFORM_DATABASE_URL
// on another server: nothing can be joined across). A GET only shows what the link will do, in
// the user's language, with the platform's product name escaped; the POST records it; any refused
// token (missing, malformed, forged, altered, for another purpose, expired) changes nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHttpServer, startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import {
  restockStopUrl,
  restockSubscribeUrl,
  signLinkToken,
  type LinkClaims,
  linkKeyring,
} from '../../lib/links.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { Daemons, SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_SECRET, LINK_KEYS } from '../support/notifications.ts';
import {
  captureLogs,
  createTestDatabase,
  createTestRedisPrefix,
  type TestDatabase,
} from '../support/services.ts';

const NOW_MS = Date.UTC(2026, 11, 3, 12, 0, 0);
const NOW = NOW_MS / 1000;
const DAY = 86_400;
const HOSTILE_NAME = `<script>alert("x")</script> & 'gift' </p><form action="https://evil.example">`;
const ESCAPED_NAME =
  '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;gift&#39; &lt;/p&gt;&lt;form action=&quot;https://evil.example&quot;&gt;';

const USERS = [
  { id: 'u-zh-000001', email: 'zhang.san@example.com', locale: 'zh-CN' },
  { id: 'u-en-000002', email: 'jane.doe@example.com', locale: 'en-US' },
  { id: 'u-fr-000003', email: 'jean@example.com', locale: 'fr-FR' },
];
const [ZH, EN, FR] = USERS.map((u) => u.id) as [string, string, string];

let forewarn: TestDatabase;
let platform: TestDatabase;
let http: RunningHttpServer;
const logs = captureLogs('info');

beforeAll(async () => {
  [forewarn, platform] = await Promise.all([createTestDatabase(), createTestDatabase({ migrated: false })]);
  const client = await platform.pool.connect();
  try {
    await createPlatformSchema(client, 'platform');
  } finally {
    client.release();
  }
  await platform.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, created_at)
     SELECT id, email, locale, 'CN-GD', 'Asia/Shanghai', 'active', now()
       FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, email, locale)`,
    [USERS.map((u) => u.id), USERS.map((u) => u.email), USERS.map((u) => u.locale)],
  );
  await platform.pool.query(
    `INSERT INTO platform.products (id, name, stock, updated_at)
     VALUES ('p-hostile', $1, 0, now()), ('p-card-100', '100 元礼品卡', 0, now())`,
    [HOSTILE_NAME],
  );
  http = await startHttpServer(
    {
      db: forewarn.pool,
      platformDb: platform.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      logger: logs.logger,
      now: () => NOW_MS,
    },
    { host: '127.0.0.1', port: 0 },
  );
});

afterAll(async () => {
  await http?.close();
  await Promise.all([forewarn?.drop(), platform?.drop()]);
});

beforeEach(async () => {
  await forewarn.pool.query('TRUNCATE forewarn.restock_requests, forewarn.restock_optouts');
});

function link(
  kind: 'subscribe' | 'stop',
  userId: string,
  productId: string,
  expiresAt = NOW + 30 * DAY,
): string {
  const build = kind === 'subscribe' ? restockSubscribeUrl : restockStopUrl;
  // The public URL is the server itself here: the links in messages are what is fetched.
  return build({ publicUrl: http.address, keys: LINK_KEYS, userId, productId, expiresAt });
}

const tokenOf = (url: string) => new URL(url).searchParams.get('token')!;

async function post(
  path: string,
  form: Record<string, string> | string,
  headers: Record<string, string> = {},
) {
  return fetch(new URL(path, http.address), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
    redirect: 'manual',
  });
}

async function requests(): Promise<Array<{ user_id: string; product_id: string; requested_at: Date }>> {
  const { rows } = await forewarn.pool.query<{ user_id: string; product_id: string; requested_at: Date }>(
    'SELECT user_id, product_id, requested_at FROM forewarn.restock_requests ORDER BY user_id, product_id',
  );
  return rows;
}

async function optouts(): Promise<Array<{ user_id: string; product_id: string }>> {
  const { rows } = await forewarn.pool.query<{ user_id: string; product_id: string }>(
    'SELECT user_id, product_id FROM forewarn.restock_optouts ORDER BY user_id, product_id',
  );
  return rows;
}

function expectTokenPageHeaders(response: Response): void {
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  const csp = response.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).not.toMatch(/script-src/);
  expect(csp).toContain("form-action 'self'");
  expect(response.headers.get('x-content-type-options')).toBe('nosniff');
}

describe('GET /healthz', () => {
  it('answers 200 {"status":"ok"}', async () => {
    const response = await fetch(new URL('/healthz', http.address));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
    expect(response.headers.get('cache-control')).toBe('no-store');
  });
});

describe('GET /restock/subscribe', () => {
  it("shows a confirmation in the user's language (zh-CN), the product name escaped, a button that POSTs, and writes nothing", async () => {
    const url = link('subscribe', ZH, 'p-hostile');
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expectTokenPageHeaders(response);
    const html = await response.text();
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('到货提醒');
    expect(html).toContain(`「${ESCAPED_NAME}」`);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('evil.example">');
    expect(html.match(/<form /g)).toHaveLength(1);
    expect(html).toContain('<form method="post" action="subscribe">');
    expect(html).toContain(`<input type="hidden" name="token" value="${tokenOf(url)}">`);
    expect(html).toContain('<button type="submit">到货提醒我</button>');
    expect(await requests()).toEqual([]);
  });

  it('in English for an en-US user', async () => {
    const html = await (await fetch(link('subscribe', EN, 'p-card-100'))).text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('Would you like us to tell you when “100 元礼品卡” is back in stock?');
    expect(html).toContain('<button type="submit">Remind me</button>');
  });

  it('in zh-CN for a locale without pages, and for a user the platform does not have', async () => {
    for (const user of [FR, 'u-gone-000009']) {
      const html = await (await fetch(link('subscribe', user, 'p-card-100'))).text();
      expect(html, user).toContain('<html lang="zh-CN">');
      expect(html, user).toContain('「100 元礼品卡」');
    }
  });

  it('answers 404 for a product the platform does not have', async () => {
    const response = await fetch(link('subscribe', ZH, 'p-unknown'));
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('找不到此商品');
  });
});

describe('POST /restock/subscribe', () => {
  it('records exactly one request; a second POST moves requested_at forward', async () => {
    const url = link('subscribe', EN, 'p-card-100');
    const first = await post('/restock/subscribe', { token: tokenOf(url) });
    expect(first.status).toBe(200);
    expectTokenPageHeaders(first);
    const done = await first.text();
    expect(done).toContain('<html lang="en">');
    expect(done).toContain('We will let you know as soon as “100 元礼品卡” is back in stock.');
    expect(done).not.toContain('<form');
    const once = await requests();
    expect(once).toEqual([{ user_id: EN, product_id: 'p-card-100', requested_at: expect.any(Date) }]);

    await new Promise((resolve) => setTimeout(resolve, 20));
    // The token in the query this time: a form posted to the link itself works too.
    const second = await post(`/restock/subscribe?token=${tokenOf(url)}`, '');
    expect(second.status).toBe(200);
    const twice = await requests();
    expect(twice).toHaveLength(1);
    expect(twice[0]!.requested_at.getTime()).toBeGreaterThan(once[0]!.requested_at.getTime());
  });

  it('takes back an earlier "stop alerts" for the same product only', async () => {
    await forewarn.pool.query(
      `INSERT INTO forewarn.restock_optouts (user_id, product_id) VALUES ($1, 'p-card-100'), ($1, 'p-hostile')`,
      [ZH],
    );
    const response = await post('/restock/subscribe', {
      token: tokenOf(link('subscribe', ZH, 'p-card-100')),
    });
    expect(response.status).toBe(200);
    expect(await optouts()).toEqual([{ user_id: ZH, product_id: 'p-hostile' }]);
  });

  it('answers JSON to a client that asks for it', async () => {
    const response = await post(
      '/restock/subscribe',
      { token: tokenOf(link('subscribe', ZH, 'p-card-100')) },
      { accept: 'application/json' },
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: 'done',
      purpose: 'restock-subscribe',
      productId: 'p-card-100',
    });
  });
});

describe('a refused link changes nothing', () => {
  const claims: LinkClaims = {
    userId: ZH,
    purpose: 'restock-subscribe',
    subject: 'p-card-100',
    expiresAt: NOW + DAY,
  };
  const good = () => signLinkToken(claims, LINK_KEYS);
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  const alter = (index: number, value: string) =>
    good()
      .split('.')
      .map((part, i) => (i === index ? value : part))
      .join('.');

  const cases: Array<[string, () => string | undefined, number, string]> = [
    ['missing', () => undefined, 400, 'malformed'],
    ['malformed', () => 'not-a-token', 400, 'malformed'],
    ['truncated', () => good().slice(0, 30), 400, 'malformed'],
    [
      'forged (another secret)',
      () => signLinkToken(claims, linkKeyring(`${LINK_SECRET}-other`)),
      403,
      'forged',
    ],
    ['altered (another user)', () => alter(2, b64(EN)), 403, 'forged'],
    ['altered (another product)', () => alter(4, b64('p-hostile')), 403, 'forged'],
    ['altered (a later expiry)', () => alter(5, String(NOW + 365 * DAY)), 403, 'forged'],
    [
      'for another purpose',
      () => signLinkToken({ ...claims, purpose: 'restock-stop' }, LINK_KEYS),
      403,
      'wrong-purpose',
    ],
    [
      'for another purpose, without a subject',
      () =>
        signLinkToken({ userId: ZH, purpose: 'notification-preferences', expiresAt: NOW + DAY }, LINK_KEYS),
      403,
      'wrong-purpose',
    ],
    ['expired', () => signLinkToken({ ...claims, expiresAt: NOW - 1 }, LINK_KEYS), 410, 'expired'],
  ];

  it.each(cases.map(([name, token, status, reason]) => ({ name, token, status, reason })))(
    '$name: GET and POST answer $status ($reason), as a page or as JSON',
    async ({ token, status, reason }) => {
      const value = token();
      const query = value === undefined ? '' : `?token=${encodeURIComponent(value)}`;
      const get = await fetch(new URL(`/restock/subscribe${query}`, http.address));
      expect(get.status).toBe(status);
      expect(get.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(get.headers.get('referrer-policy')).toBe('no-referrer');
      expect(await get.text()).not.toContain('<form');

      const form: Record<string, string> = value === undefined ? {} : { token: value };
      const html = await post('/restock/subscribe', form);
      expect(html.status).toBe(status);
      const json = await post('/restock/subscribe', form, { accept: 'application/json' });
      expect(json.status).toBe(status);
      expect(await json.json()).toEqual({
        error: 'FW_LINK_INVALID',
        reason,
        message: expect.any(String),
      });
      expect(await requests()).toEqual([]);
      expect(await optouts()).toEqual([]);
    },
  );

  it('a token given twice is malformed', async () => {
    const response = await post('/restock/subscribe', `token=${good()}&token=${good()}`);
    expect(response.status).toBe(400);
    expect(await requests()).toEqual([]);
  });

  it('an unknown product: 404, nothing recorded', async () => {
    const response = await post(
      '/restock/subscribe',
      { token: signLinkToken({ ...claims, subject: 'p-unknown' }, LINK_KEYS) },
      { accept: 'application/json' },
    );
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({
      error: 'FW_LINK_SUBJECT_UNKNOWN',
      reason: 'unknown-subject',
    });
    expect(await requests()).toEqual([]);
  });

  it('the expiry is read on the server clock: a token valid until now still works', async () => {
    const response = await post('/restock/subscribe', {
      token: signLinkToken({ ...claims, expiresAt: NOW }, LINK_KEYS),
    });
    expect(response.status).toBe(200);
    expect(await requests()).toHaveLength(1);
  });
});

describe('/restock/stop', () => {
  it("GET asks, in the user's language; POST records an opt-out and leaves requests alone", async () => {
    await forewarn.pool.query(
      `INSERT INTO forewarn.restock_requests (user_id, product_id) VALUES ($1, 'p-card-100')`,
      [EN],
    );
    const url = link('stop', EN, 'p-card-100');
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expectTokenPageHeaders(page);
    const html = await page.text();
    expect(html).toContain('Stop alerts when “100 元礼品卡” is back in stock?');
    expect(html).toContain('<form method="post" action="stop">');
    expect(await optouts()).toEqual([]);

    for (let i = 0; i < 2; i++) {
      const done = await post('/restock/stop', { token: tokenOf(url) });
      expect(done.status).toBe(200);
      expect(await done.text()).toContain('You will no longer get restock alerts for “100 元礼品卡”.');
    }
    expect(await optouts()).toEqual([{ user_id: EN, product_id: 'p-card-100' }]);
    expect((await requests()).map((r) => r.user_id)).toEqual([EN]);
  });

  it('in zh-CN, with the hostile name escaped', async () => {
    const html = await (await fetch(link('stop', ZH, 'p-hostile'))).text();
    expect(html).toContain(`不再接收「${ESCAPED_NAME}」的到货提醒吗？`);
    expect(html).not.toContain('<script');
  });

  it('refuses a subscribe token, and a stop token is refused by subscribe', async () => {
    const stop = await post('/restock/stop', { token: tokenOf(link('subscribe', ZH, 'p-card-100')) });
    expect(stop.status).toBe(403);
    const subscribe = await post('/restock/subscribe', { token: tokenOf(link('stop', ZH, 'p-card-100')) });
    expect(subscribe.status).toBe(403);
    expect(await optouts()).toEqual([]);
    expect(await requests()).toEqual([]);
  });
});

describe('logs', () => {
  it('are JSON lines by route, never with a token, an address or a whole user id', async () => {
    const url = link('subscribe', ZH, 'p-card-100');
    await fetch(url);
    await post('/restock/subscribe', { token: tokenOf(url) });
    await post('/restock/subscribe', { token: 'not-a-token' });
    await fetch(new URL(`/no-such-page?token=${tokenOf(url)}`, http.address));
    const lines = logs.lines();
    const served = lines.filter((line) => line.msg === 'request served');
    expect(served.length).toBeGreaterThanOrEqual(4);
    expect(served.every((line) => line.component === 'http')).toBe(true);
    expect(served.map((line) => line.route)).toContain('/restock/subscribe');
    expect(lines.filter((line) => line.msg === 'restock reminder recorded')).toContainEqual(
      expect.objectContaining({ route: '/restock/subscribe', productId: 'p-card-100', userId: 'u-***01' }),
    );
    expect(lines.filter((line) => line.msg === 'link refused')).toContainEqual(
      expect.objectContaining({ refusal: 'malformed', status: 400 }),
    );
    const text = JSON.stringify(lines);
    const token = tokenOf(url);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split('.').at(-1));
    expect(text).not.toContain('token=');
    expect(text).not.toContain(ZH);
    for (const user of USERS) expect(text).not.toContain(user.email);
  });
});

describe('the server', () => {
  it('answers 404 for an unknown page, and 500 without internals when the database fails', async () => {
    expect((await fetch(new URL('/restock', http.address))).status).toBe(404);
    const { logger, lines } = captureLogs('info');
    const broken = await createTestDatabase({ migrated: false });
    const server = createHttpServer({
      db: broken.pool,
      platformDb: platform.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      logger,
      now: () => NOW_MS,
    });
    try {
      const response = await server.inject({
        method: 'POST',
        url: '/restock/subscribe',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        payload: `token=${tokenOf(link('subscribe', ZH, 'p-card-100'))}`,
      });
      expect(response.statusCode).toBe(500);
      expect(response.json()).toEqual({
        error: 'internal',
        message: 'something went wrong on our side; nothing was changed',
      });
      expect(response.body).not.toContain('restock_requests');
      const failed = lines().find((line) => line.msg === 'request failed');
      expect(failed).toMatchObject({
        route: '/restock/subscribe',
        err: { message: expect.stringContaining('restock_requests') },
      });
      expect(JSON.stringify(lines())).not.toContain('token=');
    } finally {
      await server.close();
      await broken.drop();
    }
  });
});

describe('listening', () => {
  it('on a port that is taken fails with FW_HTTP_LISTEN, naming the variables', async () => {
    const port = Number(new URL(http.address).port);
    const deps = {
      db: forewarn.pool,
      platformDb: platform.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      logger: captureLogs('silent').logger,
      now: () => NOW_MS,
    };
    await expect(startHttpServer(deps, { host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'FW_HTTP_LISTEN',
      message: expect.stringMatching(
        new RegExp(
          `^the HTTP role cannot listen on 127\\.0\\.0\\.1:${port} \\(FOREWARN_HTTP_HOST, FOREWARN_HTTP_PORT\\): .*EADDRINUSE`,
        ),
      ),
    });
  });
});

describe('forewarn start --role http', () => {
  const daemons = new Daemons();

  it('serves on FOREWARN_HTTP_HOST:FOREWARN_HTTP_PORT; on SIGTERM it finishes the request in flight and exits 0', async () => {
    const db = await createTestDatabase();
    const redis = await createTestRedisPrefix();
    try {
      // The platform in the same database this time, its products behind a view that takes a
      // second and a half to read: a page request is still in flight when SIGTERM arrives.
      const client = await db.pool.connect();
      try {
        await createPlatformSchema(client, 'platform');
        await client.query(
          `INSERT INTO platform.products (id, name, stock, updated_at) VALUES ('p1', 'Slow card', 0, now())`,
        );
        await client.query('ALTER TABLE platform.products RENAME TO products_t');
        await client.query(
          'CREATE VIEW platform.products AS SELECT p.* FROM platform.products_t p, pg_sleep(1.5)',
        );
      } finally {
        client.release();
      }
      const daemon = daemons.start(
        {
          DATABASE_URL: db.url,
          FOREWARN_QUEUE_PREFIX: redis.prefix,
          FOREWARN_CONFIG: SHIPPED_CONFIG,
          FOREWARN_HTTP_HOST: '127.0.0.1',
          FOREWARN_HTTP_PORT: '0',
          FOREWARN_LINK_SECRET: LINK_SECRET,
        } as Parameters<Daemons['start']>[0],
        ['--role', 'http'],
      );
      const started = await daemon.waitForLog('forewarn started', 30_000);
      expect(started.roles).toEqual(['http']);
      const address = String(started.http);
      expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(new URL('/healthz', address));
      expect(await health.json()).toEqual({ status: 'ok' });

      const url = restockSubscribeUrl({
        publicUrl: address,
        keys: LINK_KEYS,
        userId: ZH,
        productId: 'p1',
        expiresAt: Math.floor(Date.now() / 1000) + DAY,
      });
      const inFlight = fetch(url);
      await new Promise((resolve) => setTimeout(resolve, 400));
      daemon.signal('SIGTERM');
      const page = await inFlight;
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('「Slow card」');
      expect((await daemon.waitForExit(30_000)).code).toBe(0);
      await expect(fetch(new URL('/healthz', address))).rejects.toThrow();
      expect(daemon.logged('forewarn stopped')).toEqual([expect.objectContaining({ forced: false })]);
    } finally {
      await daemons.killAll();
      await redis.cleanup();
      await db.drop();
    }
  });
});
