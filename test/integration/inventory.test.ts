// The live inventory pass (lib/detection/inventory-tick.ts) against the platform's products and
// orders in PostgreSQL: a product that sells down to low over minute ticks opens exactly one
// low-stock cause with one `opened` event carrying the contract's payload, and resolves once its
// stock recovers; the `stock-low` kind's audience is exactly the active users with a pending order
// for it; a restock opens wave 1 sized on the available stock; a product the platform drops has
// its causes resolved; rows that break the contract are skipped, counted and logged by id; only
// products with something to remember have a state row; a dry run writes nothing.
import { fileURLToPath } from 'node:url';
import { escapeIdentifier } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InventoryChange } from '../../detectors/inventory/index.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import type { DetectionContext } from '../../lib/detection/detector.ts';
import { runInventoryTick, type TickResult } from '../../lib/detection/inventory-tick.ts';
import { verifyLinkToken, linkKeyring } from '../../lib/links.ts';
import { opsStockLow, stockLow } from '../../lib/messages/inventory.ts';
import type { AudiencePage, CauseEvent, MessageContext, Recipient } from '../../lib/messages/kind.ts';
import { fanOutCauseEvent, type FanoutContext } from '../../lib/notifications/fanout.ts';
import { InvalidRowReporter } from '../../lib/platform/invalid-rows.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import { validateTemplateData } from '../../lib/templates/data.ts';
import { createPlatformSchema } from '../../sim/schema.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SCHEMA = 'platform';
const MINUTE = 60_000;
const DAY = 86_400_000;
const SECRET = 'inventory-test-secret-0123456789abcdef';
const KEYS = linkKeyring(SECRET);
const PUBLIC_URL = 'https://shop.example.com/forewarn';
// Minute ticks in the recent past (a tick may not lie ahead of the database's clock).
const BASE = Math.floor(Date.now() / MINUTE) * MINUTE - 3 * 60 * MINUTE;
const at = (minute: number) => BASE + minute * MINUTE;

let db: TestDatabase;
let config: Config;
let logs: ReturnType<typeof captureLogs>;
let ctx: DetectionContext;
let messages: MessageContext;
const s = escapeIdentifier(SCHEMA);

async function sql(text: string, params: unknown[] = []): Promise<void> {
  await db.pool.query(text, params);
}

async function setStock(productId: string, stock: number): Promise<void> {
  await sql(`UPDATE ${s}.products SET stock = $2, updated_at = now() WHERE id = $1`, [productId, stock]);
}

async function tick(minute: number, options: { dryRun?: boolean } = {}): Promise<TickResult> {
  return runInventoryTick(ctx, at(minute), options);
}

interface EventRow {
  event_id: string;
  incident_id: string;
  kind: string;
  subject_key: string;
  type: string;
  seq: number;
  payload: Record<string, unknown>;
}

async function events(): Promise<EventRow[]> {
  const { rows } = await db.pool.query<EventRow>(
    `SELECT e.id::text AS event_id, e.incident_id::text, i.kind, i.subject_key, e.type, e.seq, e.payload
       FROM forewarn.incident_events e JOIN forewarn.incidents i ON i.id = e.incident_id
      WHERE i.detector = 'inventory' ORDER BY e.id`,
  );
  return rows;
}

async function subjectStates(): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await db.pool.query<{ subject_key: string; state: Record<string, unknown> }>(
    `SELECT subject_key, state FROM forewarn.subject_state WHERE detector = 'inventory' ORDER BY subject_key`,
  );
  return new Map(rows.map((r) => [r.subject_key, r.state]));
}

function causeEvent(row: EventRow): CauseEvent {
  return {
    eventId: 'e1',
    causeId: row.incident_id,
    type: row.type,
    seq: row.seq,
    payload: row.payload as unknown as CauseEvent['payload'],
  };
}

/** The whole audience of a kind for an event, page by page. */
async function wholeAudience(
  kind: typeof stockLow | typeof opsStockLow,
  event: CauseEvent,
  limit: number,
): Promise<{ recipients: Recipient[]; pages: number; prepared: unknown }> {
  const prepared = await kind.prepare!(messages, event);
  const recipients: Recipient[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const page: AudiencePage = await kind.audience(
      messages,
      event,
      { after, limit, taken: recipients.length },
      prepared as never,
    );
    pages++;
    recipients.push(...page.recipients);
    if (page.cursor === null) break;
    after = page.cursor;
  }
  return { recipients, pages, prepared };
}

const ticks: Array<{ minute: number; result: TickResult }> = [];
let dryRun: {
  result: TickResult;
  eventsBefore: number;
  eventsAfter: number;
  statesBefore: number;
  statesAfter: number;
};

beforeAll(async () => {
  db = await createTestDatabase();
  const client = await db.pool.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
  } finally {
    client.release();
  }
  config = await loadConfigFile(SHIPPED);
  logs = captureLogs('info');
  ctx = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: SCHEMA,
    config: () => config,
    logger: logs.logger,
    workerId: 'inventory-test',
    invalidRows: new InvalidRowReporter(logs.logger),
  };
  messages = {
    db: db.pool,
    platformDb: db.pool,
    platformSchema: SCHEMA,
    config: () => config,
    logger: logs.logger,
    linkKeys: KEYS,
    publicUrl: PUBLIC_URL,
  };

  const created = new Date(BASE - 100 * DAY);
  await sql(
    `INSERT INTO ${s}.users (id, email, locale, region, timezone, status, created_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])`,
    [
      ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'],
      [
        'u1@example.com',
        null,
        'u3@example.com',
        'u4@example.com',
        'u5@example.com',
        'u6@example.com',
        'u7@example.com',
      ],
      ['zh-CN', 'en', 'zh-CN', 'zh-CN', 'zh-CN', 'zh-CN', 'en'],
      Array(7).fill('CN-GD'),
      // u2 lives abroad: their messages' times are printed in their own zone.
      ['Asia/Shanghai', 'America/Los_Angeles', ...Array<string>(5).fill('Asia/Shanghai')],
      ['active', 'active', 'active', 'active', 'disabled', 'active', 'active'],
      Array(7).fill(created),
    ],
  );
  await sql(
    `INSERT INTO ${s}.products (id, name, stock, low_stock_threshold, updated_at) VALUES
       ('steam-100', 'Steam 充值卡 100 元', 40, NULL, now()),
       ('itunes-50', 'iTunes 50', 100, NULL, now()),
       ('gift-80', 'Gift card batch', 0, 5, now()),
       ('retired', 'Retired product', 0, NULL, now()),
       ('broken', 'Broken row', -3, NULL, now())`,
  );
  const ago = (days: number) => new Date(BASE - days * DAY);
  const orders: Array<[string, string, string, number, string, Date]> = [
    // steam-100: 7 units sold in the week (1 a day) ...
    ['o-f1', 'u3', 'steam-100', 4, 'fulfilled', ago(2)],
    ['o-p1', 'u1', 'steam-100', 1, 'pending', ago(3)],
    ['o-p2', 'u1', 'steam-100', 1, 'pending', ago(1)],
    ['o-p3', 'u2', 'steam-100', 1, 'pending', ago(0.5)],
    // ... plus pending orders older than the window: they still take stock, but are not sold this week.
    ['o-p4', 'u5', 'steam-100', 1, 'pending', ago(10)],
    ['o-p5', 'u2', 'steam-100', 1, 'pending', ago(9)],
    // Cancelled and fulfilled-long-ago orders count for nothing.
    ['o-c1', 'u4', 'steam-100', 30, 'cancelled', ago(1)],
    ['o-f2', 'u7', 'steam-100', 50, 'fulfilled', ago(30)],
    // gift-80: 30 pending units waiting for a restock.
    ...Array.from(
      { length: 30 },
      (_, i) =>
        [`o-g${i}`, 'u7', 'gift-80', 1, 'pending', ago(0.1)] as [
          string,
          string,
          string,
          number,
          string,
          Date,
        ],
    ),
    // Rows that break the contract: an unknown status (a big one: counted, it would change sales
    // and pending units), an order for a product the platform does not have.
    ['o-refund', 'u6', 'steam-100', 50, 'refunded', ago(1)],
    ['o-ghost', 'u6', 'ghost', 1, 'pending', ago(1)],
  ];
  await sql(
    `INSERT INTO ${s}.orders (id, user_id, product_id, quantity, status, created_at)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[])`,
    [0, 1, 2, 3, 4, 5].map((i) => orders.map((o) => o[i])),
  );

  // steam-100 sells down to low (10 by default) at minute 4, and stays low through 14 (hysteresis).
  // With 5 units pending it keeps at least 5 available: never out, so never a restock.
  const steam = [40, 25, 12, 11, 10, 12, 14];
  for (let minute = 0; minute < steam.length; minute++) {
    await setStock('steam-100', steam[minute]!);
    if (minute === 1) await setStock('gift-80', 80);
    if (minute === 2) await sql(`DELETE FROM ${s}.products WHERE id = 'retired'`);
    if (minute === 4) {
      const eventsBefore = (await events()).length;
      const statesBefore = (await subjectStates()).size;
      const result = await tick(minute, { dryRun: true });
      dryRun = {
        result,
        eventsBefore,
        eventsAfter: (await events()).length,
        statesBefore,
        statesAfter: (await subjectStates()).size,
      };
    }
    ticks.push({ minute, result: await tick(minute) });
  }
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

const lowStockEvents = async () =>
  (await events()).filter((e) => e.kind === 'low-stock' && e.subject_key === 'steam-100');

describe('inventory ticks over a product selling down to low', () => {
  it('every tick is evaluated', () => {
    expect(ticks.map((t) => t.result.outcome)).toEqual(Array(ticks.length).fill('evaluated'));
  });

  it('opens one low-stock cause, once, when it turns low, with the payload the contract names', async () => {
    const low = await lowStockEvents();
    expect(low.map((e) => e.type)).toEqual(['opened']);
    expect(ticks.map((t) => t.result.changes.filter((c) => c.subjectKey === 'steam-100').length)).toEqual([
      0, 0, 0, 0, 1, 0, 0,
    ]);
    const payload = low[0]!.payload;
    expect(payload).toMatchObject({
      incidentId: low[0]!.incident_id,
      detector: 'inventory',
      subjectKey: 'steam-100',
      subject: { productId: 'steam-100' },
      kind: 'low-stock',
      type: 'opened',
      at: at(4),
      productId: 'steam-100',
      productName: 'Steam 充值卡 100 元',
      stock: 10,
      threshold: 10,
      // 7 units in 7 days: cancelled, refunded and month-old orders are not sales.
      salesPerDay: 1,
      daysOfCover: 10,
      // Every pending order, however old; the refunded one is not pending.
      pendingOrders: 5,
      pendingUnits: 5,
      reason: 'threshold',
    });
    const { rows } = await db.pool.query<{ subject: unknown; resolved_at: Date | null }>(
      `SELECT subject, resolved_at FROM forewarn.incidents WHERE id = $1`,
      [low[0]!.incident_id],
    );
    expect(rows).toEqual([{ subject: { productId: 'steam-100' }, resolved_at: null }]);
  });

  it('a product in stock opens nothing and has no state row', async () => {
    expect((await events()).filter((e) => e.subject_key === 'itunes-50')).toEqual([]);
    expect((await subjectStates()).has('itunes-50')).toBe(false);
  });

  it('keeps per-product state only for products with something to remember', async () => {
    const states = await subjectStates();
    expect([...states.keys()].sort()).toEqual(['gift-80', 'steam-100']);
    // 14 in stock, 5 pending: 9 available, not out (under 5); the episode is open.
    expect(states.get('steam-100')).toEqual({
      name: 'Steam 充值卡 100 元',
      low: { openedAt: at(4), reason: 'threshold' },
    });
  });

  it('a restock opens wave 1, sized on the stock the pending orders leave', async () => {
    const restock = (await events()).filter((e) => e.kind === 'restock');
    expect(restock.map((e) => [e.subject_key, e.type, e.seq])).toEqual([['gift-80', 'opened', 0]]);
    expect(restock[0]!.payload).toMatchObject({
      detector: 'inventory',
      subjectKey: 'gift-80',
      subject: { productId: 'gift-80' },
      kind: 'restock',
      productId: 'gift-80',
      productName: 'Gift card batch',
      stock: 80,
      pendingUnits: 30,
      available: 50,
      capacity: 50,
      wave: 1,
      restockedAt: at(1),
    });
    // gift-80 was low at 0 (threshold 5): that episode ended with the restock.
    expect(
      (await events())
        .filter((e) => e.kind === 'low-stock' && e.subject_key === 'gift-80')
        .map((e) => e.type),
    ).toEqual(['opened', 'resolved']);
  });

  it('a product the platform no longer has gets its open causes resolved and its state dropped', async () => {
    const retired = (await events()).filter((e) => e.subject_key === 'retired');
    expect(retired.map((e) => `${e.kind} ${e.type}`)).toEqual(['low-stock opened', 'low-stock resolved']);
    expect(retired[1]!.payload).toMatchObject({ resolution: 'removed', productName: 'Retired product' });
    expect(ticks[2]!.result.findings?.gone).toBe(1);
  });

  it('a dry run computes the change and writes nothing', () => {
    expect(dryRun.result.changes.map((c: InventoryChange) => `${c.subjectKey} ${c.kind} ${c.type}`)).toEqual([
      'steam-100 low-stock opened',
    ]);
    expect(dryRun.eventsAfter).toBe(dryRun.eventsBefore);
    expect(dryRun.statesAfter).toBe(dryRun.statesBefore);
  });
});

describe('rows that break the contract', () => {
  it('are skipped and counted: a negative stock, an unknown status, an unknown product', async () => {
    // The first tick checks the week's orders and every pending one; later ticks only new orders.
    expect(ticks[0]!.result.skippedRows).toBe(3);
    expect(ticks[1]!.result.skippedRows).toBe(1);
    expect((await events()).filter((e) => e.subject_key === 'broken')).toEqual([]);
    expect((await subjectStates()).has('broken')).toBe(false);
  });

  it('are logged once each, with their id and why', () => {
    const lines = logs
      .lines()
      .filter((l) => l.code === 'FW_PLATFORM_ROW_INVALID')
      .map((l) => [l.table, l.rowId, l.reason]);
    expect(lines).toEqual([
      ['products', 'broken', 'negative stock -3'],
      ['orders', 'o-ghost', "unknown product 'ghost'"],
      ['orders', 'o-refund', "unknown status 'refunded'"],
    ]);
  });
});

describe('the stock-low kind', () => {
  it('reaches exactly the active users with a pending order for the product, page by page', async () => {
    const opened = (await lowStockEvents())[0]!;
    const { recipients, pages } = await wholeAudience(stockLow, causeEvent(opened), 1);
    // u3 (fulfilled), u4 (cancelled), u6 (refunded, other product) and u7 (other product, month-old
    // fulfilled) have no pending order for it; u5 has one but is disabled.
    expect(recipients).toEqual([
      {
        userId: 'u1',
        address: 'u1@example.com',
        locale: 'zh-CN',
        timezone: 'Asia/Shanghai',
        pendingOrders: 2,
        earliestOrderedAt: BASE - 3 * DAY,
      },
      {
        userId: 'u2',
        address: null,
        locale: 'en',
        timezone: 'America/Los_Angeles',
        pendingOrders: 2,
        earliestOrderedAt: BASE - 9 * DAY,
      },
    ]);
    expect(pages).toBeGreaterThanOrEqual(3);
    expect((await wholeAudience(stockLow, causeEvent(opened), 1000)).recipients).toEqual(recipients);
  });

  it("gives each user's data, valid for the templates, with a signed restock-subscribe link", async () => {
    const event = causeEvent((await lowStockEvents())[0]!);
    const { recipients, prepared } = await wholeAudience(stockLow, event, 100);
    const data = stockLow.data(messages, event, recipients[0] as never, prepared as never);
    expect(validateTemplateData('stock-low', data, 'stock-low data')).toMatchObject({
      productName: 'Steam 充值卡 100 元',
      pendingOrders: 2,
      earliestOrderedAt: new Date(BASE - 3 * DAY).toISOString(),
    });
    const url = new URL(data.restockUrl as string);
    expect(`${url.origin}${url.pathname}`).toBe(`${PUBLIC_URL}/restock/subscribe`);
    expect(verifyLinkToken(url.searchParams.get('token')!, KEYS, Date.now() / 1000)).toMatchObject({
      userId: 'u1',
      purpose: 'restock-subscribe',
      subject: 'steam-100',
    });
    expect(stockLow.link!(data)).toBe(data.restockUrl);
  });

  it('has no audience for the detector\'s other causes (a restock is "opened" too)', async () => {
    const restock = (await events()).find((e) => e.kind === 'restock')!;
    expect((await wholeAudience(stockLow, causeEvent(restock), 100)).recipients).toEqual([]);
    expect((await wholeAudience(opsStockLow, causeEvent(restock), 100)).recipients).toEqual([]);
  });

  it('ops get one page of the configured addresses, with the numbers', async () => {
    const event = causeEvent((await lowStockEvents())[0]!);
    const { recipients, pages, prepared } = await wholeAudience(opsStockLow, event, 100);
    expect(pages).toBe(1);
    expect(recipients).toEqual(
      config.notifications.ops.emails.map((address) => ({
        userId: null,
        address,
        locale: config.notifications.ops.locale,
        channels: ['email'],
      })),
    );
    const data = opsStockLow.data(messages, event, recipients[0]!, prepared as never);
    expect(validateTemplateData('ops-stock-low', data, 'ops-stock-low data')).toEqual({
      incidentId: event.causeId,
      productId: 'steam-100',
      productName: 'Steam 充值卡 100 元',
      stock: 10,
      threshold: 10,
      salesPerDay: 1,
      daysOfCover: 10,
      pendingOrders: 5,
      pendingUnits: 5,
      reason: 'threshold',
      openedAt: new Date(at(4)).toISOString(),
      // Ops read times in the config's zone.
      timeZone: config.timezone,
      dashboardUrl: null,
    });
  });

  it('fanned out: each pending-order user is told once per channel, users without orders are not, ops once', async () => {
    const templates = TemplateStore.load();
    const fanout: FanoutContext = { ...messages, templates: () => templates };
    const opened = (await lowStockEvents())[0]!;
    const first = await fanOutCauseEvent(fanout, opened.event_id, async () => undefined);
    expect(first.alreadyDone).toBe(false);
    // Fanning the event out again (a retried job) records nothing more.
    expect((await fanOutCauseEvent(fanout, opened.event_id, async () => undefined)).alreadyDone).toBe(true);
    const { rows } = await db.pool.query<{
      kind: string;
      category: string;
      channel: string;
      recipient: string;
      dedupe_key: string;
      locale: string;
    }>(
      `SELECT kind, category, channel, coalesce(user_id, address) AS recipient, dedupe_key, locale
         FROM forewarn.notifications WHERE incident_id = $1 ORDER BY kind, recipient, channel`,
      [opened.incident_id],
    );
    const id = opened.incident_id;
    expect(rows).toEqual([
      {
        kind: 'ops-stock-low',
        category: 'ops',
        channel: 'email',
        recipient: 'ops@example.com',
        dedupe_key: `cause:${id}:ops-stock-low:email:ops@example.com`,
        locale: 'zh-CN',
      },
      // u1 has an address: email and in-app; u2 has none: in-app, and the email recorded withheld
      // (below). u3-u7 are not told.
      {
        kind: 'stock-low',
        category: 'service',
        channel: 'email',
        recipient: 'u1',
        dedupe_key: `cause:${id}:stock-low:email:u1`,
        locale: 'zh-CN',
      },
      {
        kind: 'stock-low',
        category: 'service',
        channel: 'inapp',
        recipient: 'u1',
        dedupe_key: `cause:${id}:stock-low:inapp:u1`,
        locale: 'zh-CN',
      },
      {
        kind: 'stock-low',
        category: 'service',
        channel: 'email',
        recipient: 'u2',
        dedupe_key: `cause:${id}:stock-low:email:u2`,
        locale: 'en',
      },
      {
        kind: 'stock-low',
        category: 'service',
        channel: 'inapp',
        recipient: 'u2',
        dedupe_key: `cause:${id}:stock-low:inapp:u2`,
        locale: 'en',
      },
    ]);
    const { rows: withheld } = await db.pool.query<{ status: string; held_reason: string }>(
      `SELECT status, held_reason FROM forewarn.notifications
        WHERE incident_id = $1 AND user_id = 'u2' AND channel = 'email'`,
      [opened.incident_id],
    );
    expect(withheld).toEqual([
      { status: 'cancelled', held_reason: 'no address: the platform has no email address for this user' },
    ]);
    // Each user's times in their own zone (users.timezone); ops get the config's.
    const { rows: zones } = await db.pool.query<{ recipient: string; zone: string }>(
      `SELECT DISTINCT coalesce(user_id, address) AS recipient, data->>'timeZone' AS zone
         FROM forewarn.notifications WHERE incident_id = $1 AND kind = 'stock-low' ORDER BY recipient`,
      [opened.incident_id],
    );
    expect(zones).toEqual([
      { recipient: 'u1', zone: 'Asia/Shanghai' },
      { recipient: 'u2', zone: 'America/Los_Angeles' },
    ]);
  });

  it('a restock event sends no low-stock message', async () => {
    const templates = TemplateStore.load();
    const restock = (await events()).find((e) => e.kind === 'restock')!;
    await fanOutCauseEvent(
      { ...messages, templates: () => templates },
      restock.event_id,
      async () => undefined,
    );
    const { rows } = await db.pool.query<{ kind: string }>(
      `SELECT kind FROM forewarn.notifications WHERE incident_id = $1 AND kind IN ('stock-low', 'ops-stock-low')`,
      [restock.incident_id],
    );
    expect(rows).toEqual([]);
  });

  it('is stale once the episode has ended: recovery resolves it once, and queued notices are cancelled', async () => {
    const opened = (await lowStockEvents())[0]!;
    const queued = [
      { id: 'n1', kind: 'stock-low', causeId: opened.incident_id, userId: 'u1', data: {} },
      { id: 'n2', kind: 'stock-low', causeId: '999999', userId: 'u2', data: {} },
    ];
    expect(await stockLow.stale!(db.pool, messages, queued)).toEqual(new Set());
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      expect(await stockLow.stillTrue!(client, causeEvent(opened))).toBe(true);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }

    await setStock('steam-100', 16);
    const recovered = await tick(7);
    expect(recovered.changes.map((c) => `${c.subjectKey} ${c.kind} ${c.type}`)).toEqual([
      'steam-100 low-stock resolved',
    ]);
    await tick(8);
    expect((await lowStockEvents()).map((e) => e.type)).toEqual(['opened', 'resolved']);
    expect(await stockLow.stale!(db.pool, messages, queued)).toEqual(new Set(['n1']));
    const again = await db.pool.connect();
    try {
      await again.query('BEGIN');
      expect(await stockLow.stillTrue!(again, causeEvent(opened))).toBe(false);
      await again.query('ROLLBACK');
    } finally {
      again.release();
    }
    // Nothing left to remember: the row is gone.
    expect((await subjectStates()).has('steam-100')).toBe(false);
  });
});
