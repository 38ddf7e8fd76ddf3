// The inactivity pass (lib/detection/inactivity-tick.ts) against the platform's users in
// PostgreSQL, with steps at 3 and 30 days: exactly the users due get exactly their step (users
// who never signed in count from sign-up; disabled, deleted and long-abandoned ones never);
// a second pass records nothing; a later step comes once; a user who comes back ends the period
// and, idle again, starts a new one; the pass is paced; a dry run writes nothing. Then the
// check-ups themselves: their data names the last activity in the user's zone and language,
// a user in Los Angeles is not reminded at 03:00 there, and a check-up whose user came back
// before its turn is stale.
import { fileURLToPath } from 'node:url';
import { escapeIdentifier } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InactivityChange } from '../../detectors/inactivity/index.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import type { DetectionContext } from '../../lib/detection/detector.ts';
import { inactivity, pacingBudget, type TickResult } from '../../lib/detection/inactivity-tick.ts';
import { securityCheckup } from '../../lib/messages/inactivity.ts';
import type { CauseEvent, MessageContext, QueuedMessage } from '../../lib/messages/kind.ts';
import { eventDrafts } from '../../lib/notifications/fanout.ts';
import type { NotificationDraft } from '../../lib/notifications/store.ts';
import { InvalidRowReporter } from '../../lib/platform/invalid-rows.ts';
import { validateTemplateData } from '../../lib/templates/data.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';
import { linkKeyring } from '../../lib/links.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SCHEMA = 'platform';
const HOUR = 3_600_000;
const DAY = 86_400_000;
// Passes in the past (a tick may not lie ahead of the database's clock), 40 days of room after T.
const T = Math.floor(Date.now() / HOUR) * HOUR - 40 * DAY;
const s = escapeIdentifier(SCHEMA);

let db: TestDatabase;
let config: Config;
let logs: ReturnType<typeof captureLogs>;
let ctx: DetectionContext;
let messages: MessageContext;

interface SeedUser {
  id: string;
  lastActive: number | null;
  created?: number;
  status?: string;
  timezone?: string;
  locale?: string;
  email?: string | null;
}

async function addUsers(users: readonly SeedUser[]): Promise<void> {
  await db.pool.query(
    `INSERT INTO ${s}.users (id, email, locale, region, timezone, status, last_active_at, created_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                          $7::timestamptz[], $8::timestamptz[])`,
    [
      users.map((u) => u.id),
      users.map((u) => (u.email === undefined ? `${u.id}@example.com` : u.email)),
      users.map((u) => u.locale ?? 'zh-CN'),
      users.map(() => 'CN-GD'),
      users.map((u) => u.timezone ?? 'Asia/Shanghai'),
      users.map((u) => u.status ?? 'active'),
      users.map((u) => (u.lastActive === null ? null : new Date(u.lastActive))),
      users.map((u) => new Date(u.created ?? (u.lastActive ?? T) - 500 * DAY)),
    ],
  );
}

async function setLastActive(id: string, at: number): Promise<void> {
  await db.pool.query(`UPDATE ${s}.users SET last_active_at = $2 WHERE id = $1`, [id, new Date(at)]);
}

const pass = (at: number, options: { dryRun?: boolean } = {}): Promise<TickResult> =>
  inactivity.run(ctx, at, options);

const summary = (changes: readonly InactivityChange[]) =>
  changes
    .map((c) =>
      c.type === 'resolved' ? `${c.userId} resolved ${c.resolution}` : `${c.userId} ${c.type} ${c.stepDays}`,
    )
    .sort();

async function causes(): Promise<string[]> {
  const { rows } = await db.pool.query<{ subject_key: string; open: boolean; events: string }>(
    `SELECT i.subject_key, i.resolved_at IS NULL AS open,
            string_agg(e.type || CASE WHEN e.seq > 0 THEN ':' || e.seq ELSE '' END, ',' ORDER BY e.id) AS events
       FROM forewarn.incidents i JOIN forewarn.incident_events e ON e.incident_id = i.id
      WHERE i.detector = 'inactivity' GROUP BY i.id ORDER BY i.subject_key, i.id`,
  );
  return rows.map((r) => `${r.subject_key} ${r.open ? 'open' : 'resolved'} ${r.events}`);
}

async function states(): Promise<Record<string, { since: number; stepDays: number }>> {
  const { rows } = await db.pool.query<{ subject_key: string; state: { since: number; stepDays: number } }>(
    `SELECT subject_key, state FROM forewarn.subject_state WHERE detector = 'inactivity' ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((r) => [r.subject_key, r.state]));
}

beforeAll(async () => {
  db = await createTestDatabase();
  const client = await db.pool.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
  } finally {
    client.release();
  }
  const shipped = await loadConfigFile(SHIPPED);
  config = {
    ...shipped,
    detectors: {
      ...shipped.detectors,
      inactivity: { ...shipped.detectors.inactivity, stepDays: [3, 30], maxIdleDays: 365, pageSize: 2 },
    },
  };
  logs = captureLogs('info');
  ctx = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: SCHEMA,
    config: () => config,
    logger: logs.logger,
    workerId: 'inactivity-test',
    invalidRows: new InvalidRowReporter(logs.logger),
  };
  messages = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: SCHEMA,
    config: () => config,
    logger: logs.logger,
    linkKeys: linkKeyring('inactivity-test-secret-0123456789abcdef'),
    publicUrl: 'https://shop.example.com/forewarn',
  };
  await addUsers([
    { id: 'u-2d', lastActive: T - 2 * DAY },
    { id: 'u-3d', lastActive: T - 3 * DAY - HOUR },
    { id: 'u-29d', lastActive: T - 29 * DAY },
    { id: 'u-31d', lastActive: T - 31 * DAY, locale: 'en', timezone: 'America/Los_Angeles' },
    // Never signed in after sign-up: measured from created_at.
    { id: 'n-4d', lastActive: null, created: T - 4 * DAY },
    { id: 'n-1d', lastActive: null, created: T - DAY },
    { id: 'd-10d', lastActive: T - 10 * DAY, status: 'disabled' },
    { id: 'x-40d', lastActive: T - 40 * DAY, status: 'deleted' },
    { id: 'old-400d', lastActive: T - 400 * DAY },
    { id: 'old-360d', lastActive: T - 360 * DAY },
    { id: 'tz-bad', lastActive: T - 5 * DAY, timezone: 'Mars/Olympus' },
  ]);
});

afterAll(async () => {
  await db?.drop();
});

describe('the inactivity pass', () => {
  it('a dry run lists who is due and writes nothing', async () => {
    const dry = await pass(T, { dryRun: true });
    expect(summary(dry.changes)).toEqual([
      'n-4d opened 3',
      'old-360d opened 30',
      'u-29d opened 3',
      'u-31d opened 30',
      'u-3d opened 3',
    ]);
    expect(await causes()).toEqual([]);
    expect(await states()).toEqual({});
  });

  it('users at 2, 3, 29 and 31 days with steps at 3 and 30: each due user gets exactly the highest step reached', async () => {
    const first = await pass(T);
    expect(first.outcome).toBe('evaluated');
    expect(summary(first.changes)).toEqual([
      'n-4d opened 3',
      'old-360d opened 30',
      'u-29d opened 3',
      'u-31d opened 30',
      'u-3d opened 3',
    ]);
    // One cause each, one event each: u-31d is first seen past both steps and gets only the 30-day one.
    expect(await causes()).toEqual([
      'n-4d open opened',
      'old-360d open opened',
      'u-29d open opened',
      'u-31d open opened',
      'u-3d open opened',
    ]);
    const never = first.changes.find((c) => c.userId === 'n-4d')!;
    expect(never).toMatchObject({ neverSignedIn: true, since: T - 4 * DAY, idleDays: 4 });
    expect(first.changes.find((c) => c.userId === 'u-3d')).toMatchObject({
      neverSignedIn: false,
      idleDays: 3,
    });
    expect((await states())['u-31d']).toEqual({ since: T - 31 * DAY, stepDays: 30 });
    // Pages of 2 users: the pass read the 6 idle active users in 3 pages; 5 have a valid zone.
    expect(first.findings).toMatchObject({ subjects: 5, pages: 3, limited: false });
  });

  it('a user whose time zone is no IANA zone is skipped and logged with its id', () => {
    const line = logs.lines().find((l) => l.code === 'FW_PLATFORM_ROW_INVALID' && l.rowId === 'tz-bad');
    expect(line).toMatchObject({
      table: 'users',
      reason: 'timezone "Mars/Olympus" is not an IANA time zone',
    });
  });

  it('a second pass records nothing new', async () => {
    const second = await pass(T + 60_000);
    expect(second.changes).toEqual([]);
    expect((await causes()).length).toBe(5);
  });

  it('a day later: u-2d reaches 3 days, u-29d reaches its 30-day step once', async () => {
    const later = await pass(T + DAY);
    expect(summary(later.changes)).toEqual(['u-29d step 30', 'u-2d opened 3']);
    const step = later.changes.find((c) => c.userId === 'u-29d')!;
    expect(step).toMatchObject({ type: 'step', seq: 30, previousStepDays: 3, stepDays: 30 });
    expect(await causes()).toContain('u-29d open opened,step:30');
    expect((await pass(T + DAY + 60_000)).changes).toEqual([]);
  });

  it('a user who comes back ends the period; idle again, they get a new check-up', async () => {
    await setLastActive('u-3d', T + DAY + HOUR);
    const back = await pass(T + DAY + 2 * HOUR);
    expect(summary(back.changes)).toEqual(['u-3d resolved returned']);
    expect((await states())['u-3d']).toBeUndefined();
    // Not idle for 3 days yet: nothing.
    expect((await pass(T + 3 * DAY)).changes.filter((c) => c.userId === 'u-3d')).toEqual([]);
    const again = await pass(T + 4 * DAY + 2 * HOUR);
    expect(summary(again.changes.filter((c) => c.userId === 'u-3d'))).toEqual(['u-3d opened 3']);
    expect((await causes()).filter((c) => c.startsWith('u-3d '))).toEqual([
      'u-3d resolved opened,resolved',
      'u-3d open opened',
    ]);
  });

  it('a user who came back and went idle again between two passes: the old period ends and a new one starts', async () => {
    await setLastActive('u-31d', T + 4 * DAY + 3 * HOUR);
    const result = await pass(T + 8 * DAY);
    // old-360d passed maxIdleDays (365) at T + 5 days: its period ends, with nothing sent.
    expect(summary(result.changes)).toEqual([
      'old-360d resolved aged-out',
      'u-31d opened 3',
      'u-31d resolved returned',
    ]);
    const st = await states();
    expect(st['u-31d']).toEqual({ since: T + 4 * DAY + 3 * HOUR, stepDays: 3 });
    expect(st['old-360d']).toBeUndefined();
  });

  it('a disabled user ends the period; nobody aged out is reminded again', async () => {
    await db.pool.query(`UPDATE ${s}.users SET status = 'disabled' WHERE id = 'n-4d'`);
    const result = await pass(T + 8 * DAY + HOUR);
    expect(summary(result.changes)).toEqual(['n-4d resolved returned']);
    expect((await states())['n-4d']).toBeUndefined();
    expect((await pass(T + 9 * DAY)).changes).toEqual([]);
    expect((await causes()).filter((c) => c.startsWith('old-360d '))).toEqual([
      'old-360d resolved opened,resolved',
    ]);
  });

  it('is paced: a pass records at most remindersPerMinute for each minute since the previous one', async () => {
    expect(pacingBudget(1000, T + 5 * 60_000, T)).toBe(5000);
    expect(pacingBudget(1000, T + 30_000, T)).toBe(500);
    expect(pacingBudget(1000, T, null)).toBe(1000);
    expect(pacingBudget(1000, T + 10 * DAY, T)).toBe(60_000);
    await addUsers(
      Array.from({ length: 7 }, (_, i) => ({ id: `p-${i}`, lastActive: T + 9 * DAY - 3 * DAY - i * HOUR })),
    );
    const settings = config.detectors.inactivity;
    config = {
      ...config,
      detectors: { ...config.detectors, inactivity: { ...settings, remindersPerMinute: 2 } },
    };
    try {
      // A minute after the previous pass: room for 2; most recently idle first.
      const paced = await pass(T + 9 * DAY + 60_000);
      expect(summary(paced.changes)).toEqual(['p-0 opened 3', 'p-1 opened 3']);
      expect(paced.findings).toMatchObject({ limited: true });
      const dry = await pass(T + 9 * DAY + 2 * 60_000, { dryRun: true });
      expect(summary(dry.changes)).toEqual([
        'p-2 opened 3',
        'p-3 opened 3',
        'p-4 opened 3',
        'p-5 opened 3',
        'p-6 opened 3',
      ]);
      const next = await pass(T + 9 * DAY + 3 * 60_000);
      expect(summary(next.changes)).toEqual(['p-2 opened 3', 'p-3 opened 3', 'p-4 opened 3', 'p-5 opened 3']);
      const last = await pass(T + 9 * DAY + 4 * 60_000);
      expect(summary(last.changes)).toEqual(['p-6 opened 3']);
      expect(last.findings).toMatchObject({ limited: false });
    } finally {
      config = { ...config, detectors: { ...config.detectors, inactivity: settings } };
    }
  });
});

/** The cause event of a user's open period, as fan-out reads it. */
async function openEvent(userId: string): Promise<CauseEvent> {
  const { rows } = await db.pool.query<{
    id: string;
    incident_id: string;
    type: string;
    seq: number;
    payload: never;
  }>(
    `SELECT e.id::text, e.incident_id::text, e.type, e.seq, e.payload
       FROM forewarn.incident_events e JOIN forewarn.incidents i ON i.id = e.incident_id
      WHERE i.detector = 'inactivity' AND i.subject_key = $1 AND i.resolved_at IS NULL
      ORDER BY e.id DESC LIMIT 1`,
    [userId],
  );
  const r = rows[0]!;
  return { eventId: r.id, causeId: r.incident_id, type: r.type, seq: r.seq, payload: r.payload };
}

async function drafts(userId: string, at: number): Promise<NotificationDraft[]> {
  const out: NotificationDraft[] = [];
  for await (const batch of eventDrafts(messages, await openEvent(userId), at)) out.push(...batch.drafts);
  return out;
}

describe('security check-ups', () => {
  it('go to the user on email and in-app, with data the templates accept, the date in their zone and language', async () => {
    const all = await drafts('u-31d', Date.parse('2026-12-04T19:00:00Z'));
    expect(all.map((d) => `${d.kind} ${d.channel} ${d.category}`)).toEqual([
      'security-checkup email security',
      'security-checkup inapp security',
    ]);
    const data = validateTemplateData('security-checkup', all[0]!.data, 'test');
    // u-31d came back at T + 4 days + 3 h and is idle since: that moment, as Los Angeles reads it, in English.
    const since = T + 4 * DAY + 3 * HOUR;
    const expected = new Intl.DateTimeFormat('en', {
      dateStyle: 'long',
      timeZone: 'America/Los_Angeles',
    }).format(since);
    expect(data).toMatchObject({
      lastActiveDate: expected,
      timezone: 'America/Los_Angeles',
      stepDays: 3,
      neverSignedIn: false,
      securityUrl: config.notifications.links.securityUrl,
      siteName: config.notifications.siteName,
    });
    expect(all[0]!.timezone).toBe('America/Los_Angeles');
  });

  it('a user in America/Los_Angeles is not reminded at 03:00 there: held until 08:00, on both channels', async () => {
    // 2026-12-04 11:00 UTC is 03:00 in Los Angeles (PST) and 19:00 in Shanghai.
    const at = Date.parse('2026-12-04T11:00:00Z');
    const la = await drafts('u-31d', at);
    expect(la.map((d) => d.notBefore && new Date(d.notBefore).toISOString())).toEqual([
      '2026-12-04T16:00:00.000Z',
      '2026-12-04T16:00:00.000Z',
    ]);
    expect(la[0]!.heldReason).toMatch(/security quiet hours 22:00-08:00 in America\/Los_Angeles/);
    const shanghai = await drafts('u-3d', at);
    expect(shanghai.map((d) => d.notBefore)).toEqual([null, null]);
  });

  it('a check-up whose user came back (or whose period ended) before its turn is stale', async () => {
    const event = await openEvent('u-29d');
    const queued = (id: string, userId: string, causeId: string): QueuedMessage => ({
      id,
      kind: 'security-checkup',
      causeId,
      userId,
      data: {},
    });
    const still = queued('1', 'u-29d', event.causeId);
    expect(await securityCheckup.stale!(db.pool, messages, [still])).toEqual(new Set());
    await setLastActive('u-29d', Date.now());
    expect(await securityCheckup.stale!(db.pool, messages, [still])).toEqual(new Set(['1']));
    // A period the sweep ended (u-3d's first one) is stale whatever the user does.
    const { rows } = await db.pool.query<{ id: string }>(
      `SELECT id::text FROM forewarn.incidents WHERE subject_key = 'u-3d' AND resolved_at IS NOT NULL`,
    );
    expect(await securityCheckup.stale!(db.pool, messages, [queued('2', 'u-3d', rows[0]!.id)])).toEqual(
      new Set(['2']),
    );
  });
});
