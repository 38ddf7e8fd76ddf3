// Restock waves, the restock-alert kind end to end on real PostgreSQL: the platform's tables in
// one database and forewarn's in another (so a query joining them cannot run at all), restock
// events recorded with recordCauseChange, and the kind's audience paged the way the generic
// fan-out pages it (pages of `limit`, passing `taken`), its messages recorded with
// insertNotifications under the spine's dedupe keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { inTransaction } from '../../lib/db/pool.ts';
import { recordCauseChange } from '../../lib/incidents/store.ts';
import { checkLinkToken, RESTOCK_STOP, verifyLinkToken } from '../../lib/links.ts';
import {
  compareSignups,
  restockAlert,
  type RestockPrepared,
  type RestockRecipient,
  type SignupRow,
} from '../../lib/messages/inventory-restock.ts';
import type { CauseEvent, MessageContext, QueuedMessage } from '../../lib/messages/kind.ts';
import { renderNotification } from '../../lib/notifications/render.ts';
import {
  insertNotifications,
  type DeliveryChannel,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { templateKinds } from '../../templates/kinds.ts';
import { SHIPPED_CONFIG } from '../support/daemon.ts';
import { LINK_KEYS } from '../support/notifications.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const SCHEMA = 'platform';
const BASE = Date.UTC(2026, 10, 1, 8, 0, 0);
/** A sign-up time with microseconds, as PostgreSQL stores it. */
const at = (ms: number, micros = 0) =>
  `${new Date(ms).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;

let fw: TestDatabase;
let platform: TestDatabase;
let shipped: Config;
const logs = captureLogs('debug');

beforeAll(async () => {
  fw = await createTestDatabase();
  platform = await createTestDatabase({ migrated: false });
  const client = await platform.pool.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
  } finally {
    client.release();
  }
  shipped = await loadConfigFile(SHIPPED_CONFIG);
});

afterAll(async () => {
  await fw?.drop();
  await platform?.drop();
});

function context(channels: Config['notifications']['userChannels'] = ['email', 'inapp']): MessageContext {
  const config: Config = { ...shipped, notifications: { ...shipped.notifications, userChannels: channels } };
  return {
    db: fw.pool,
    platformDb: platform.pool,
    platformSchema: SCHEMA,
    config: () => config,
    logger: logs.logger,
    linkKeys: LINK_KEYS,
    publicUrl: PUBLIC_URL,
  };
}

/** Where the HTTP role is reached (FOREWARN_PUBLIC_URL). */
const PUBLIC_URL = 'https://notify.example.com';

// ---------------------------------------------------------------------------------------------
// Seeding

interface SeedUser {
  id: string;
  email?: string | null;
  status?: string;
  locale?: string;
}

async function addUsers(users: readonly SeedUser[]): Promise<void> {
  await platform.pool.query(
    `INSERT INTO platform.users (id, email, locale, region, timezone, status, created_at)
     SELECT id, email, locale, 'CN-GD', 'Asia/Shanghai', status, now()
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(id, email, locale, status)`,
    [
      users.map((u) => u.id),
      users.map((u) => (u.email === undefined ? `${u.id}@example.com` : u.email)),
      users.map((u) => u.locale ?? 'zh-CN'),
      users.map((u) => u.status ?? 'active'),
    ],
  );
}

async function subscribe(productId: string, signups: ReadonlyArray<[string, string]>): Promise<void> {
  await platform.pool.query(
    `INSERT INTO platform.restock_subscriptions (user_id, product_id, created_at)
     SELECT u, $1, t FROM unnest($2::text[], $3::timestamptz[]) AS s(u, t)
     ON CONFLICT (user_id, product_id) DO UPDATE SET created_at = EXCLUDED.created_at`,
    [productId, signups.map((s) => s[0]), signups.map((s) => s[1])],
  );
}

async function request(productId: string, signups: ReadonlyArray<[string, string]>): Promise<void> {
  await fw.pool.query(
    `INSERT INTO forewarn.restock_requests (user_id, product_id, requested_at)
     SELECT u, $1, t FROM unnest($2::text[], $3::timestamptz[]) AS s(u, t)
     ON CONFLICT (user_id, product_id) DO UPDATE SET requested_at = EXCLUDED.requested_at`,
    [productId, signups.map((s) => s[0]), signups.map((s) => s[1])],
  );
}

async function optOut(productId: string, userIds: readonly string[]): Promise<void> {
  await fw.pool.query(
    `INSERT INTO forewarn.restock_optouts (user_id, product_id, created_at)
     SELECT u, $1, now() FROM unnest($2::text[]) AS u`,
    [productId, userIds],
  );
}

async function setProduct(productId: string, stock: number, pendingUnits = 0): Promise<void> {
  await platform.pool.query(
    `INSERT INTO platform.products (id, name, stock, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (id) DO UPDATE SET stock = EXCLUDED.stock, updated_at = now()`,
    [productId, `Gift card ${productId}`, stock],
  );
  await platform.pool.query(`DELETE FROM platform.orders WHERE product_id = $1`, [productId]);
  for (let i = 0; i < pendingUnits; i++) {
    await platform.pool.query(
      `INSERT INTO platform.orders (id, user_id, product_id, quantity, status, created_at)
       VALUES ($1, 'buyer', $2, 1, 'pending', now())`,
      [`${productId}-order-${i}`, productId],
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Restock events, as the inventory detector records them

interface Wave {
  stock: number;
  pendingUnits?: number;
  /** Defaults to stock − pendingUnits (multiplier 1.0). */
  capacity?: number;
}

async function recordRestock(
  productId: string,
  type: 'opened' | 'wave' | 'resolved',
  seq: number,
  wave: Wave & { number: number },
  extra: Record<string, unknown> = {},
): Promise<CauseEvent> {
  const pendingUnits = wave.pendingUnits ?? 0;
  const available = wave.stock - pendingUnits;
  const change = {
    detector: 'inventory',
    subjectKey: productId,
    subject: { productId },
    kind: 'restock',
    type,
    seq,
    at: BASE + wave.number * 600_000,
    evidence: { stock: wave.stock, pendingUnits },
    productId,
    productName: `Gift card ${productId}`,
    stock: wave.stock,
    pendingUnits,
    available,
    capacity: wave.capacity ?? Math.max(0, Math.floor(available * 1.0)),
    wave: wave.number,
    restockedAt: BASE,
    ...extra,
  };
  const recorded = await inTransaction(fw.pool, (client) => recordCauseChange(client, change));
  return {
    eventId: recorded.eventId,
    causeId: recorded.incidentId,
    type,
    seq,
    payload: { ...change, incidentId: recorded.incidentId },
  };
}

// ---------------------------------------------------------------------------------------------
// The fan-out, as the lead's generic one will run a kind (kept small on purpose)

interface FanoutRun {
  recipients: RestockRecipient[];
  pages: number[];
  /** Notifications recorded (new rows). */
  recorded: number;
  /** stillTrue said no before a batch. */
  stopped: boolean;
  drafts: NotificationDraft[];
}

async function fanOut(ctx: MessageContext, event: CauseEvent, limit: number): Promise<FanoutRun> {
  const kind = restockAlert;
  const prepared = await kind.prepare!(ctx, event);
  const channels = kind.channels(ctx.config()) as readonly DeliveryChannel[];
  const run: FanoutRun = { recipients: [], pages: [], recorded: 0, stopped: false, drafts: [] };
  let after: string | null = null;
  let taken = 0;
  do {
    const page = await kind.audience(ctx, event, { after, limit, taken }, prepared);
    const drafts = page.recipients.flatMap((r) =>
      channels
        .filter((channel) => channel !== 'email' || r.address)
        .map((channel): NotificationDraft => ({
          dedupeKey: `cause:${event.causeId}:${kind.id}:${channel}:${r.userId}`,
          cause: `cause:${event.causeId}`,
          incidentId: event.causeId,
          kind: kind.id,
          channel,
          audience: 'user',
          userId: r.userId,
          address: channel === 'email' ? r.address : null,
          locale: r.locale,
          data: kind.data(ctx, event, r, prepared),
          category: kind.category,
        })),
    );
    const ids = await inTransaction(ctx.db, async (client) => {
      if (kind.stillTrue && !(await kind.stillTrue(client, event))) return null;
      return insertNotifications(client, drafts);
    });
    if (ids === null) {
      run.stopped = true;
      break;
    }
    run.recorded += ids.length;
    run.pages.push(page.recipients.length);
    run.recipients.push(...page.recipients);
    run.drafts.push(...drafts);
    taken += page.recipients.length;
    after = page.cursor;
  } while (after !== null);
  return run;
}

/** Users with a restock alert of this cause, in the order they were recorded. */
async function alerted(causeId: string): Promise<string[]> {
  const { rows } = await fw.pool.query<{ user_id: string }>(
    `SELECT user_id FROM forewarn.notifications WHERE incident_id = $1 AND kind = 'restock-alert'
      GROUP BY user_id ORDER BY min(id)`,
    [causeId],
  );
  return rows.map((r) => r.user_id);
}

const ids = (recipients: readonly RestockRecipient[]) => recipients.map((r) => r.userId);

// ---------------------------------------------------------------------------------------------

describe('two databases', () => {
  it("keeps the platform's tables and forewarn's apart: no SQL could join them", async () => {
    const probe = `SELECT to_regclass('platform.restock_subscriptions')::text AS subs,
                          to_regclass('forewarn.restock_requests')::text AS requests`;
    expect((await platform.pool.query(probe)).rows[0]).toEqual({
      subs: 'platform.restock_subscriptions',
      requests: null,
    });
    expect((await fw.pool.query(probe)).rows[0]).toEqual({
      subs: null,
      requests: 'forewarn.restock_requests',
    });
  });
});

describe('a restock of 80 units with 500 subscribers (multiplier 1.0)', () => {
  const product = 'p-500';
  // Sign-up order is not user-id order: user i signs up at slot (i × 7919) mod 500, and every
  // fifth slot shares its millisecond with the next one, a microsecond apart.
  const users: SeedUser[] = Array.from({ length: 500 }, (_, i) => ({
    id: `w${String(i).padStart(3, '0')}`,
    status: i % 97 === 5 ? 'disabled' : i % 89 === 7 ? 'deleted' : 'active',
    email: i % 10 === 3 ? null : undefined,
    locale: i % 2 === 0 ? 'zh-CN' : 'en',
  }));
  const signups = users.map((u, i): [string, string] => {
    const slot = (i * 7919) % 500;
    return [u.id, at(BASE - 86_400_000 + Math.floor(slot / 2) * 1000, slot % 2)];
  });
  /** Who should be alerted, in order: active subscribers by sign-up (the oracle, from the seed). */
  const order = signups
    .filter(([id]) => users.find((u) => u.id === id)!.status === 'active')
    .sort((a, b) => (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([id]) => id);
  let wave1: FanoutRun;
  let opened: CauseEvent;

  beforeAll(async () => {
    await addUsers(users);
    await subscribe(product, signups);
    await setProduct(product, 80);
  });

  it('the first wave reaches the 80 earliest active subscribers, and no more', async () => {
    opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 80 });
    wave1 = await fanOut(context(), opened, 30);
    expect(ids(wave1.recipients)).toEqual(order.slice(0, 80));
    // Pages of 30, the last one cut at the wave's size; no extra call once it is full.
    expect(wave1.pages).toEqual([30, 30, 20]);
    expect(await alerted(opened.causeId)).toEqual(order.slice(0, 80));
    // Users without an address get in-app only; everyone else both.
    const withEmail = wave1.recipients.filter((r) => r.address !== null).length;
    expect(wave1.recorded).toBe(80 + withEmail);
    expect(withEmail).toBeLessThan(80);
  });

  it('records each message as requested, with data its templates accept and links that work', async () => {
    const { rows } = await fw.pool.query<{
      category: string;
      dedupe_key: string;
      channel: string;
      user_id: string;
    }>(`SELECT category, dedupe_key, channel, user_id FROM forewarn.notifications WHERE incident_id = $1`, [
      opened.causeId,
    ]);
    expect(new Set(rows.map((r) => r.category))).toEqual(new Set(['requested']));
    for (const r of rows)
      expect(r.dedupe_key).toBe(`cause:${opened.causeId}:restock-alert:${r.channel}:${r.user_id}`);

    const draft = wave1.drafts[0]!;
    const data = templateKinds['restock-alert'].schema.parse(draft.data);
    expect(data).toMatchObject({
      productId: product,
      productName: `Gift card ${product}`,
      available: 80,
      wave: 1,
      restockedAt: new Date(BASE).toISOString(),
      productUrl: `https://www.example.com/products/${product}`,
    });
    // The HTTP role's stop link, checked as its /restock/stop route checks it: the product is the
    // token's signed subject.
    const stop = new URL(data.stopUrl);
    expect(`${stop.origin}${stop.pathname}`).toBe(`${PUBLIC_URL}/restock/stop`);
    const checked = checkLinkToken(
      stop.searchParams.get('token')!,
      LINK_KEYS,
      Math.floor(BASE / 1000),
      RESTOCK_STOP,
    );
    expect(checked).toMatchObject({
      ok: true,
      claims: { userId: draft.userId, purpose: 'restock-stop', subject: product },
    });
    const claims = verifyLinkToken(stop.searchParams.get('token')!, LINK_KEYS, Math.floor(BASE / 1000));
    // The links last links.ttlDays from the event, whenever the message goes out.
    expect(claims!.expiresAt).toBe(
      Math.floor(opened.payload.at / 1000) + shipped.notifications.links.ttlDays * 86_400,
    );
    const prefs = new URL(data.preferencesUrl).searchParams.get('token')!;
    expect(verifyLinkToken(prefs, LINK_KEYS, Math.floor(BASE / 1000))).toMatchObject({
      userId: draft.userId,
      purpose: 'notification-preferences',
    });
    expect(restockAlert.link?.(draft.data)).toBe(data.productUrl);

    const templates = await TemplateStore.load();
    for (const locale of ['zh-CN', 'en'])
      for (const channel of ['email', 'inapp'] as const) {
        const message = renderNotification(templates, { ...draft, locale, channel });
        expect(message.text).toContain(data.stopUrl);
        expect(message.subject ?? message.title).toContain(`Gift card ${product}`);
      }
  });

  it('a second wave reaches the next subscribers while stock remains, and nobody twice', async () => {
    await setProduct(product, 45);
    const wave2 = await recordRestock(product, 'wave', 2, { number: 2, stock: 45 });
    const run = await fanOut(context(), wave2, 30);
    expect(ids(run.recipients)).toEqual(order.slice(80, 125));
    expect(run.pages).toEqual([30, 15]);
    // Re-running the audience of either wave from the start finds nobody alerted already.
    const again = await fanOut(context(), opened, 500);
    expect(ids(again.recipients).filter((id) => order.slice(0, 125).includes(id))).toEqual([]);
  });

  it('no third wave is written once the restock resolved (stock gone)', async () => {
    const wave3 = await recordRestock(product, 'wave', 3, { number: 3, stock: 5 });
    await setProduct(product, 0);
    await recordRestock(product, 'resolved', 0, { number: 4, stock: 0 });
    const before = await fw.pool.query(`SELECT count(*)::int AS n FROM forewarn.notifications`);
    const run = await fanOut(context(), wave3, 30);
    expect(run.stopped).toBe(true);
    const after = await fw.pool.query(`SELECT count(*)::int AS n FROM forewarn.notifications`);
    expect(after.rows[0]).toEqual(before.rows[0]);
  });
});

describe('30 pending orders waiting on the restock', () => {
  it('shrink the first wave to 50', async () => {
    const product = 'p-pending';
    const users = Array.from({ length: 120 }, (_, i) => ({ id: `pend${String(i).padStart(3, '0')}` }));
    await addUsers(users);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE - 3_600_000 + i * 1000)]),
    );
    await setProduct(product, 80, 30);
    const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 80, pendingUnits: 30 });
    expect(opened.payload).toMatchObject({ available: 50, capacity: 50 });
    const run = await fanOut(context(), opened, 1000);
    expect(ids(run.recipients)).toEqual(users.slice(0, 50).map((u) => u.id));
    expect(run.pages).toEqual([50]);
  });
});

describe('a second restock', () => {
  it('alerts only the users who subscribed again (or anew) since their alert', async () => {
    const product = 'p-again';
    const users = Array.from({ length: 60 }, (_, i) => ({ id: `ag${String(i).padStart(2, '0')}` }));
    await addUsers([...users, { id: 'ag-new' }]);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE - 3_600_000 + i * 1000)]),
    );
    // ag05 also asked through forewarn before the first restock: still one alert for both.
    await request(product, [['ag05', at(BASE - 60_000)]]);
    await setProduct(product, 100);
    const first = await recordRestock(product, 'opened', 0, { number: 1, stock: 100 });
    const run1 = await fanOut(context(), first, 25);
    expect(ids(run1.recipients)).toEqual(users.map((u) => u.id));
    // ag07's alerts were cancelled by the stale rule (stock gone first): it never reached them.
    await fw.pool.query(
      `UPDATE forewarn.notifications SET status = 'cancelled' WHERE incident_id = $1 AND user_id = 'ag07'`,
      [first.causeId],
    );
    await recordRestock(product, 'resolved', 0, { number: 2, stock: 0 });

    // After the alerts: three subscribe again on the platform, two ask again through forewarn,
    // one subscribes for the first time.
    const later = (s: number) => at(Date.now() + 5_000 + s * 1000);
    await subscribe(product, [
      ['ag40', later(3)],
      ['ag02', later(1)],
      ['ag33', later(6)],
      ['ag-new', later(2)],
    ]);
    await request(product, [
      ['ag05', later(4)],
      ['ag50', later(5)],
    ]);
    const second = await recordRestock(product, 'opened', 0, { number: 3, stock: 100 });
    expect(second.causeId).not.toBe(first.causeId);
    const run2 = await fanOut(context(), second, 25);
    expect(ids(run2.recipients)).toEqual(['ag07', 'ag02', 'ag-new', 'ag40', 'ag05', 'ag50', 'ag33']);
    expect(run2.recipients.find((r) => r.userId === 'ag05')?.source).toBe('forewarn');
  });
});

describe('opt-outs', () => {
  it('are left out and take no place in the wave', async () => {
    const product = 'p-opt';
    const users = Array.from({ length: 20 }, (_, i) => ({ id: `opt${String(i).padStart(2, '0')}` }));
    await addUsers(users);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE - 3_600_000 + i * 1000)]),
    );
    await optOut(product, ['opt00', 'opt03', 'opt04', 'opt11', 'opt15']);
    // opt15 stopped alerts, then subscribed again on the platform: that asks again.
    await fw.pool.query(
      `UPDATE forewarn.restock_optouts SET created_at = $1 WHERE user_id = 'opt15' AND product_id = $2`,
      [at(BASE - 7_200_000), product],
    );
    // An opt-out for another product changes nothing here.
    await optOut('p-other', ['opt01']);
    await setProduct(product, 10);
    const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 10 });
    const run = await fanOut(context(), opened, 4);
    expect(ids(run.recipients)).toEqual([
      'opt01',
      'opt02',
      'opt05',
      'opt06',
      'opt07',
      'opt08',
      'opt09',
      'opt10',
      'opt12',
      'opt13',
    ]);
    const more = await recordRestock(product, 'wave', 2, { number: 2, stock: 3 });
    expect(ids((await fanOut(context(), more, 4)).recipients)).toEqual(['opt14', 'opt15', 'opt16']);
  });
});

describe('a long run of sign-ups that get no place', () => {
  it('ends a page early, empty, with a cursor the next page resumes from', async () => {
    const product = 'p-skip';
    const users = Array.from({ length: 60 }, (_, i) => ({ id: `sk${String(i).padStart(2, '0')}` }));
    await addUsers(users);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE + i * 1000)]),
    );
    await optOut(
      product,
      users.slice(0, 50).map((u) => u.id),
    );
    await setProduct(product, 3);
    const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 3 });
    const run = await fanOut(context(), opened, 2);
    // Pages of 2 read chunks of 2 sign-ups, at most 8 a page: 50 opted out take 4 empty pages.
    expect(run.pages).toEqual([0, 0, 0, 2, 1]);
    expect(ids(run.recipients)).toEqual(['sk50', 'sk51', 'sk52']);
  });
});

describe("forewarn's restock requests and the platform's subscriptions", () => {
  const product = 'p-merge';
  // Interleaved, with instants shared to the microsecond (ties by user id, byte-wise), users in
  // both sources (the earlier counts), a request of a user the platform does not know, and user
  // ids outside ASCII.
  const platformSignups: Array<[string, string]> = [
    ['m-a', at(BASE, 1)],
    ['m-c', at(BASE, 1)],
    ['m-both1', at(BASE + 5)],
    ['m-e', at(BASE + 7, 500)],
    ['m-both2', at(BASE + 1)],
    ['m-\u{1F600}', at(BASE + 20)],
    ['m-\uFF21', at(BASE + 20)],
    ['m-g', at(BASE + 30)],
    ['m-tie', at(BASE + 40)],
  ];
  const forewarnSignups: Array<[string, string]> = [
    ['m-b', at(BASE, 1)],
    ['m-both1', at(BASE + 2)],
    ['m-d', at(BASE + 7, 499)],
    ['m-both2', at(BASE + 9)],
    ['m-ghost', at(BASE + 8)],
    ['m-f', at(BASE + 25)],
    ['m-tie', at(BASE + 40)],
    ['m-h', at(BASE + 31)],
  ];
  /** The oracle: each user once at their earliest sign-up (platform on a tie), in keyset order. */
  function expected(): Array<{ userId: string; source: string }> {
    const best = new Map<string, SignupRow>();
    const all: SignupRow[] = [
      ...platformSignups.map(([userId, t]) => ({ userId, at: t, source: 'platform' as const })),
      ...forewarnSignups.map(([userId, t]) => ({ userId, at: t, source: 'forewarn' as const })),
    ];
    for (const row of all) {
      const current = best.get(row.userId);
      if (!current || compareSignups(row, current) < 0) best.set(row.userId, row);
    }
    return [...best.values()]
      .filter((r) => r.userId !== 'm-ghost')
      .sort(compareSignups)
      .map((r) => ({ userId: r.userId, source: r.source }));
  }

  beforeAll(async () => {
    const known = new Set([...platformSignups, ...forewarnSignups].map(([id]) => id));
    known.delete('m-ghost');
    await addUsers([...known].map((id) => ({ id })));
    await subscribe(product, platformSignups);
    await request(product, forewarnSignups);
    await setProduct(product, 100);
  });

  it('are merged in sign-up order, each user once, whatever the page size', async () => {
    const want = expected();
    expect(want.map((w) => w.userId)).toEqual([
      'm-a',
      'm-b',
      'm-c',
      'm-both2',
      'm-both1',
      'm-d',
      'm-e',
      'm-\uFF21',
      'm-\u{1F600}',
      'm-f',
      'm-g',
      'm-h',
      'm-tie',
    ]);
    const byPage = new Map<number, unknown>();
    for (const limit of [1, 2, 3, 5, 50]) {
      const round = { at: BASE + limit * 3_600_000 };
      const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 100 }, round);
      const run = await fanOut(context(), opened, limit);
      byPage.set(
        limit,
        run.recipients.map((r) => ({ userId: r.userId, source: r.source })),
      );
      // Each page size is a fresh restock: the previous one's alerts must not count, so they go.
      await fw.pool.query(`DELETE FROM forewarn.notifications WHERE incident_id = $1`, [opened.causeId]);
      await recordRestock(product, 'resolved', 0, { number: 2, stock: 0 }, round);
    }
    for (const [, got] of byPage) expect(got).toEqual(want);
  });

  it('logs a request whose user the platform does not know, by id, and skips it', () => {
    const warned = logs
      .lines()
      .filter((l) => l.code === 'FW_PLATFORM_ROW_INVALID' && String(l.msg).includes('m-ghost'));
    expect(warned.length).toBeGreaterThan(0);
    expect(warned[0]).toMatchObject({
      level: 'warn',
      kind: 'restock-alert',
      table: 'forewarn.restock_requests',
      rowId: 'm-ghost:p-merge',
    });
  });
});

describe('channels', () => {
  it('with email only, users without an address take no place in the wave', async () => {
    const product = 'p-email';
    const users = Array.from({ length: 10 }, (_, i) => ({
      id: `em${i}`,
      email: i % 3 === 0 ? null : undefined,
    }));
    await addUsers(users);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE + i * 1000)]),
    );
    await setProduct(product, 4);
    const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 4 });
    const run = await fanOut(context(['email']), opened, 10);
    expect(ids(run.recipients)).toEqual(['em1', 'em2', 'em4', 'em5']);
    expect(run.drafts.every((d) => d.channel === 'email' && d.address)).toBe(true);
  });
});

describe('other inventory causes', () => {
  it('a low-stock episode opening sends no restock alert', async () => {
    const event: CauseEvent = {
      eventId: '0',
      causeId: '0',
      type: 'opened',
      seq: 0,
      payload: {
        incidentId: '0',
        detector: 'inventory',
        subjectKey: 'p-500',
        subject: { productId: 'p-500' },
        kind: 'low-stock',
        type: 'opened',
        at: BASE,
        evidence: {},
      },
    };
    const ctx = context();
    const prepared = (await restockAlert.prepare!(ctx, event)) as RestockPrepared | null;
    expect(prepared).toBeNull();
    expect(await restockAlert.audience(ctx, event, { after: null, limit: 100, taken: 0 }, prepared)).toEqual({
      recipients: [],
      cursor: null,
    });
  });
});

describe('the stale rule', () => {
  it("cancels a queued alert whose product's available stock is gone when its turn comes", async () => {
    const product = 'p-stale';
    const users = Array.from({ length: 4 }, (_, i) => ({ id: `st${i}` }));
    await addUsers(users);
    await subscribe(
      product,
      users.map((u, i) => [u.id, at(BASE + i * 1000)]),
    );
    await setProduct(product, 10);
    const opened = await recordRestock(product, 'opened', 0, { number: 1, stock: 10 });
    await fanOut(context(), opened, 10);
    const { rows } = await fw.pool.query<{ id: string; user_id: string; data: Record<string, unknown> }>(
      `SELECT id, user_id, data FROM forewarn.notifications WHERE incident_id = $1 AND channel = 'email' ORDER BY id`,
      [opened.causeId],
    );
    const queued: QueuedMessage[] = rows.map((r) => ({
      id: r.id,
      kind: 'restock-alert',
      causeId: opened.causeId,
      userId: r.user_id,
      data: r.data,
    }));
    const { db: _db, linkKeys: _keys, ...ctx } = context();
    const stale = () => restockAlert.stale!(fw.pool, ctx, queued);

    // 10 on hand, 9 of them promised to pending orders: one left, nothing stale.
    await setProduct(product, 10, 9);
    expect(await stale()).toEqual(new Set());
    // The last one went to a pending order: every queued alert is cancelled.
    await setProduct(product, 10, 10);
    expect(await stale()).toEqual(new Set(queued.map((q) => q.id)));
    // Stock back; a user who stopped alerts for the product meanwhile is not sent theirs.
    await setProduct(product, 10, 0);
    await optOut(product, ['st2', 'st3']);
    // st3 stopped alerts before this one was recorded (and subscribed again since): it goes out.
    await fw.pool.query(
      `UPDATE forewarn.restock_optouts SET created_at = now() - interval '1 day' WHERE user_id = 'st3'`,
    );
    expect(await stale()).toEqual(new Set([queued[2]!.id]));
    // A row that breaks the contract (negative stock) reads as none left, and is logged by id.
    await platform.pool.query(`UPDATE platform.products SET stock = -5 WHERE id = $1`, [product]);
    expect(await stale()).toEqual(new Set(queued.map((q) => q.id)));
    expect(logs.lines().find((l) => l.table === 'products' && l.rowId === product)).toMatchObject({
      code: 'FW_PLATFORM_ROW_INVALID',
      reason: 'negative stock -5',
    });
    // The product is gone from the platform: nothing to buy.
    await platform.pool.query(`DELETE FROM platform.products WHERE id = $1`, [product]);
    expect(await stale()).toEqual(new Set(queued.map((q) => q.id)));
  });
});
