// The preferences API over real HTTP (fastify on port 0, real fetch) against real PostgreSQL:
// a call without the bearer token, or with another one, gets 401 with WWW-Authenticate and
// changes nothing; with it, GET lists every category on every channel (opted in by default,
// security in-app marked as not switchable) and PUT writes all of its changes or none: a body
// that switches security off in-app, names an unknown category or channel or is not the expected
// shape gets a 400 naming the field. The token is never logged. A replica without a token refuses
// every call and says so once at start.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { startHttpServer, type RunningHttpServer } from '../../lib/http/server.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const TOKEN = 'api-token-for-tests-0123456789abcdef';
const USER = 'u-prefs-000001';

let db: TestDatabase;
let http: RunningHttpServer;
const logs = captureLogs('info');

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
let shipped: Config;

function start(
  apiToken: string | undefined,
  logger = logs.logger,
  config: Config = shipped,
): Promise<RunningHttpServer> {
  return startHttpServer(
    {
      db: db.pool,
      platformDb: db.pool,
      platformSchema: 'platform',
      linkKeys: LINK_KEYS,
      apiToken,
      config: () => config,
      logger,
      now: Date.now,
    },
    { host: '127.0.0.1', port: 0 },
  );
}

beforeAll(async () => {
  db = await createTestDatabase();
  shipped = await loadConfigFile(SHIPPED);
  http = await start(TOKEN);
});

afterAll(async () => {
  await http?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.preferences');
});

function call(
  method: 'GET' | 'PUT',
  userId: string,
  options: { token?: string | null; body?: unknown; raw?: string; server?: RunningHttpServer } = {},
) {
  const headers: Record<string, string> = {};
  const token = options.token === undefined ? TOKEN : options.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined || options.raw !== undefined) headers['content-type'] = 'application/json';
  return fetch(new URL(`/api/preferences/${encodeURIComponent(userId)}`, (options.server ?? http).address), {
    method,
    headers,
    ...(options.raw !== undefined
      ? { body: options.raw }
      : options.body !== undefined
        ? { body: JSON.stringify(options.body) }
        : {}),
  });
}

async function stored(): Promise<
  Array<{ user_id: string; category: string; channel: string; opted_out: boolean }>
> {
  const { rows } = await db.pool.query<{
    user_id: string;
    category: string;
    channel: string;
    opted_out: boolean;
  }>(
    'SELECT user_id, category, channel, opted_out FROM forewarn.preferences ORDER BY user_id, category, channel',
  );
  return rows;
}

const OPT_OUT_PROMOTIONAL = { preferences: [{ category: 'promotional', channel: 'email', optedOut: true }] };

describe('the bearer token', () => {
  it.each([
    ['missing', null],
    ['wrong', 'api-token-for-tests-0123456789abcdeX'],
    ['empty', ''],
  ])('%s: 401 with WWW-Authenticate, and nothing changes', async (_what, token) => {
    for (const method of ['GET', 'PUT'] as const) {
      const response = await call(method, USER, {
        token,
        body: method === 'PUT' ? OPT_OUT_PROMOTIONAL : undefined,
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      expect(await response.json()).toMatchObject({ error: 'FW_API_UNAUTHORIZED' });
    }
    expect(await stored()).toEqual([]);
  });

  it('another scheme is refused the same way', async () => {
    const response = await fetch(new URL(`/api/preferences/${USER}`, http.address), {
      headers: { authorization: `Basic ${TOKEN}` },
    });
    expect(response.status).toBe(401);
  });

  it('is never logged, not even on a refused call', async () => {
    await call('PUT', USER, { body: OPT_OUT_PROMOTIONAL });
    await call('GET', USER, { token: `${TOKEN}-wrong` });
    const text = JSON.stringify(logs.lines());
    expect(text).toContain('preferences saved');
    expect(text).toContain('api call refused');
    expect(text).not.toContain(TOKEN);
  });
});

describe('GET /api/preferences/:userId', () => {
  it('lists every category on every channel, opted in by default, security in-app not switchable', async () => {
    const response = await call('GET', USER);
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      userId: string;
      preferences: Array<{ category: string; channel: string; optedOut: boolean; canOptOut: boolean }>;
    };
    expect(body.userId).toBe(USER);
    expect(body.preferences.map((p) => `${p.category}/${p.channel}`)).toEqual(
      ['service', 'requested', 'promotional', 'security', 'ops'].flatMap((c) => [`${c}/email`, `${c}/inapp`]),
    );
    expect(body.preferences.every((p) => !p.optedOut)).toBe(true);
    expect(body.preferences.filter((p) => !p.canOptOut)).toEqual([
      { category: 'security', channel: 'inapp', optedOut: false, canOptOut: false },
    ]);
  });

  it("lists the deployment's channels: push too where the config reaches users by push", async () => {
    const withPush: Config = {
      ...shipped,
      notifications: {
        ...shipped.notifications,
        userChannels: ['email', 'inapp', 'push'],
        push: { target: 'gateway' },
      },
    };
    const server = await start(TOKEN, logs.logger, withPush);
    try {
      const response = await call('GET', USER, { server });
      const body = (await response.json()) as { preferences: Array<{ category: string; channel: string }> };
      expect(body.preferences.filter((p) => p.category === 'service').map((p) => p.channel)).toEqual([
        'email',
        'inapp',
        'push',
      ]);
      // And the shipped config's server refuses a push preference it does not send.
      const refused = await call('PUT', USER, {
        body: { preferences: [{ category: 'promotional', channel: 'push', optedOut: true }] },
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { message: string }).message).toContain(
        'expected one of email, inapp',
      );
    } finally {
      await server.close();
    }
  });

  it('refuses a user id that is not one, with a 400 naming it', async () => {
    for (const bad of ['a'.repeat(129), 'u 1', 'ü-1']) {
      const response = await call('GET', bad);
      expect(response.status, bad).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'FW_API_INVALID', field: 'userId' });
    }
  });
});

describe('PUT /api/preferences/:userId', () => {
  it('writes the changes and answers with the new preferences; a second PUT switches back', async () => {
    const response = await call('PUT', USER, {
      body: {
        preferences: [
          { category: 'promotional', channel: 'email', optedOut: true },
          { category: 'security', channel: 'email', optedOut: true },
        ],
      },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      preferences: Array<{ category: string; channel: string; optedOut: boolean }>;
    };
    expect(body.preferences.filter((p) => p.optedOut).map((p) => `${p.category}/${p.channel}`)).toEqual([
      'promotional/email',
      'security/email',
    ]);
    expect(await stored()).toEqual([
      { user_id: USER, category: 'promotional', channel: 'email', opted_out: true },
      { user_id: USER, category: 'security', channel: 'email', opted_out: true },
    ]);
    await call('PUT', USER, {
      body: { preferences: [{ category: 'promotional', channel: 'email', optedOut: false }] },
    });
    expect((await stored()).filter((r) => r.opted_out).map((r) => r.category)).toEqual(['security']);
  });

  it('refuses switching security off in-app with a 400, and writes none of the body', async () => {
    const response = await call('PUT', USER, {
      body: {
        preferences: [
          { category: 'promotional', channel: 'email', optedOut: true },
          { category: 'security', channel: 'inapp', optedOut: true },
        ],
      },
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: 'FW_API_INVALID',
      field: 'preferences[1]',
      message: 'security messages cannot be switched off on inapp: expected optedOut false',
    });
    expect(await stored()).toEqual([]);
  });

  it.each([
    [{ preferences: [{ category: 'weather', channel: 'email', optedOut: true }] }, 'preferences[0].category'],
    [{ preferences: [{ category: 'service', channel: 'sms', optedOut: true }] }, 'preferences[0].channel'],
    [{ preferences: [{ category: 'service', channel: 'email' }] }, 'preferences[0].optedOut'],
    [{ prefs: [] }, 'preferences'],
  ])('refuses %j with a 400 naming %s', async (body, field) => {
    const response = await call('PUT', USER, { body });
    expect(response.status).toBe(400);
    const answer = (await response.json()) as { error: string; field: string; message: string };
    expect(answer).toMatchObject({ error: 'FW_API_INVALID', field });
    expect(answer.message).toMatch(/expected/);
    expect(await stored()).toEqual([]);
  });

  it('refuses a body that is not JSON, or none, with a JSON 400', async () => {
    for (const options of [{ raw: '{"preferences": [' }, {}]) {
      const response = await call('PUT', USER, options);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'FW_API_INVALID', field: 'body' });
    }
    expect(await stored()).toEqual([]);
  });
});

describe('a replica without FOREWARN_API_TOKEN', () => {
  it('refuses every call with 401 (fail closed) and warns once at start', async () => {
    const own = captureLogs('info');
    const open = await start(undefined, own.logger);
    try {
      for (const token of [null, TOKEN, '']) {
        const response = await call('PUT', USER, { token, body: OPT_OUT_PROMOTIONAL, server: open });
        expect(response.status).toBe(401);
      }
      expect(await stored()).toEqual([]);
      expect(
        own
          .lines()
          .filter((l) => String(l.msg).startsWith('FOREWARN_API_TOKEN is not set: the preferences API')),
      ).toHaveLength(1);
    } finally {
      await open.close();
    }
  });
});
