// The low-stock message kinds' own logic (lib/messages/inventory.ts), without services: which
// cause events they answer, a malformed payload's error, data that the templates accept with
// the signed restock-subscribe link, and the ops group key. (Audiences and stale rules read PostgreSQL: see
// test/integration/inventory.test.ts.)
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { createLogger } from '../../lib/logger.ts';
import { verifyLinkToken, linkKeyring } from '../../lib/links.ts';
import {
  lowStockPayload,
  opsStockLow,
  stockLow,
  type PendingOrderRecipient,
} from '../../lib/messages/inventory.ts';
import type { CauseEvent, MessageContext } from '../../lib/messages/kind.ts';
import { validateTemplateData } from '../../lib/templates/data.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
const SECRET = 'unit-test-secret-0123456789abcdefghij';
const KEYS = linkKeyring(SECRET);
const OPENED_AT = Date.UTC(2026, 10, 22, 9, 51);
const PUBLIC_URL = 'https://shop.example.com/forewarn';

let config: Config;
let ctx: MessageContext;

beforeAll(async () => {
  config = await loadConfigFile(SHIPPED);
  ctx = {
    db: null as never,
    platformDb: null as never,
    platformSchema: 'platform',
    config: () => config,
    logger: createLogger({ level: 'silent' }),
    linkKeys: KEYS,
    publicUrl: PUBLIC_URL,
  };
});

function event(payload: Record<string, unknown>): CauseEvent {
  return { eventId: '77', causeId: '12', type: 'opened', seq: 0, payload: payload as never };
}

const lowStock = {
  incidentId: '12',
  detector: 'inventory',
  subjectKey: 'steam-100',
  subject: { productId: 'steam-100' },
  kind: 'low-stock',
  type: 'opened',
  at: OPENED_AT,
  evidence: {},
  productId: 'steam-100',
  productName: 'Steam 充值卡 100 元',
  stock: 8,
  threshold: 10,
  salesPerDay: 2.5,
  daysOfCover: 3.2,
  pendingOrders: 4,
  pendingUnits: 6,
  reason: 'threshold',
};

const recipient: PendingOrderRecipient = {
  userId: 'u1',
  address: 'u1@example.com',
  locale: 'zh-CN',
  pendingOrders: 2,
  earliestOrderedAt: OPENED_AT - 3_600_000,
};

describe('which events the kinds answer', () => {
  it('both follow the inventory detector\'s "opened" events of low-stock causes', () => {
    expect(stockLow.on).toEqual({ detector: 'inventory', events: ['opened'], kinds: ['low-stock'] });
    expect(opsStockLow.on).toEqual({ detector: 'inventory', events: ['opened'], kinds: ['low-stock'] });
    expect([stockLow.category, opsStockLow.category]).toEqual(['service', 'ops']);
    expect(stockLow.channels(config)).toEqual(config.notifications.userChannels);
    expect(opsStockLow.channels(config)).toEqual(['email', 'webhook']);
    // Episodes opening together (a first pass over a catalogue) reach ops as one email.
    expect(opsStockLow.group!(event(lowStock))).toBe('low-stock');
    expect(stockLow.group).toBeUndefined();
  });

  it('a restock is "opened" too: it has no low-stock payload', () => {
    expect(lowStockPayload(event({ ...lowStock, kind: 'restock', wave: 1 }))).toBeNull();
    expect(lowStockPayload(event(lowStock))).toMatchObject({ productId: 'steam-100', reason: 'threshold' });
  });

  it('a malformed low-stock payload is an error naming the event and the field', () => {
    expect(() => lowStockPayload(event({ ...lowStock, stock: 'eight' }))).toThrow(
      /inventory cause event 77: payload: expected a low-stock payload .*stock/s,
    );
  });
});

describe('data the templates accept', () => {
  it("stock-low: the product, the user's orders, the two signed links", () => {
    const prepared = { payload: lowStockPayload(event(lowStock)) };
    const data = stockLow.data(ctx, event(lowStock), recipient, prepared);
    expect(validateTemplateData('stock-low', data, 'stock-low')).toMatchObject({
      productName: 'Steam 充值卡 100 元',
      pendingOrders: 2,
      earliestOrderedAt: new Date(OPENED_AT - 3_600_000).toISOString(),
    });
    // The reminder link: the HTTP role's page, a restock-subscribe token for the user and the product.
    const restock = new URL(data.restockUrl as string);
    expect(`${restock.origin}${restock.pathname}`).toBe(`${PUBLIC_URL}/restock/subscribe`);
    expect(verifyLinkToken(restock.searchParams.get('token')!, KEYS, OPENED_AT / 1000)).toMatchObject({
      userId: 'u1',
      purpose: 'restock-subscribe',
      subject: 'steam-100',
    });
    expect(
      verifyLinkToken(restock.searchParams.get('token')!, linkKeyring('another-secret-0123456789abcdef'), 0),
    ).toBeNull();
    expect(stockLow.link!(data)).toBe(data.restockUrl);
    const preferences = new URL(data.preferencesUrl as string);
    expect(verifyLinkToken(preferences.searchParams.get('token')!, KEYS, OPENED_AT / 1000)).toMatchObject({
      userId: 'u1',
      purpose: 'notification-preferences',
    });
  });

  it('ops-stock-low: the numbers, a null cover when nothing sold', () => {
    const payload = { ...lowStock, daysOfCover: null, salesPerDay: 0 };
    const prepared = { payload: lowStockPayload(event(payload)) };
    const data = opsStockLow.data(
      ctx,
      event(payload),
      { userId: null, address: 'ops@example.com', locale: 'zh-CN' },
      prepared,
    );
    expect(validateTemplateData('ops-stock-low', data, 'ops-stock-low')).toEqual({
      incidentId: '12',
      productId: 'steam-100',
      productName: 'Steam 充值卡 100 元',
      stock: 8,
      threshold: 10,
      salesPerDay: 0,
      daysOfCover: null,
      pendingOrders: 4,
      pendingUnits: 6,
      reason: 'threshold',
      openedAt: new Date(OPENED_AT).toISOString(),
      // Ops read times in the config's zone.
      timeZone: config.timezone,
      dashboardUrl: null,
    });
  });
});
