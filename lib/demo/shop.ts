// The demo's shop: products, a week of orders and restock sign-ups on the simulated platform, and
// what happens to the stock while the demo runs. A top-up sells down under its threshold (its
// users with pending orders hear that delivery may be late), and a sold-out gift card comes back
// (its subscribers are alerted, earliest sign-up first, as many as there are units).
import type pg from 'pg';
import { escapeIdentifier } from '../db/pool.ts';

export const SELLING_DOWN = {
  id: 'topup-honor-648',
  name: '王者荣耀 648 点券',
  stock: 60,
  threshold: 20,
  lowAt: 12,
};
export const RESTOCKED = { id: 'gc-steam-100', name: 'Steam 充值卡 100 元', restockTo: 60 };
/** Products with plenty of stock: nothing happens to them. */
const STEADY = [
  { id: 'gc-apple-200', name: 'App Store 充值卡 200 元', stock: 800 },
  { id: 'phone-cmcc-100', name: '中国移动话费 100 元', stock: 5_000 },
  { id: 'topup-genshin-6480', name: '原神 6480 创世结晶', stock: 300 },
];
const DAY = 86_400_000;

export interface ShopSeed {
  pendingOrders: number;
  subscribers: number;
}

/**
 * Writes the shop: a week of fulfilled orders for every product (about 10 a day each), pending
 * orders for the product that will sell down, and sign-ups for the sold-out one.
 */
export async function seedShop(
  client: pg.ClientBase,
  schema: string,
  userIds: readonly string[],
  now: number,
): Promise<ShopSeed> {
  const s = escapeIdentifier(schema);
  const products = [
    {
      id: SELLING_DOWN.id,
      name: SELLING_DOWN.name,
      stock: SELLING_DOWN.stock,
      threshold: SELLING_DOWN.threshold,
    },
    { id: RESTOCKED.id, name: RESTOCKED.name, stock: 0, threshold: null },
    ...STEADY.map((p) => ({ ...p, threshold: null })),
  ];
  await client.query(
    `INSERT INTO ${s}.products (id, name, stock, low_stock_threshold, updated_at)
     SELECT p.id, p.name, p.stock, p.threshold, $2
       FROM jsonb_to_recordset($1::jsonb) AS p(id text, name text, stock int, threshold int)`,
    [JSON.stringify(products), new Date(now - DAY)],
  );
  const orders: Array<{ id: string; user: string; product: string; status: string; at: string }> = [];
  let n = 0;
  const order = (user: string, product: string, status: string, at: number) =>
    orders.push({
      id: `o${String(++n).padStart(6, '0')}`,
      user,
      product,
      status,
      at: new Date(at).toISOString(),
    });
  for (const p of products)
    for (let i = 0; i < 70; i++)
      order(userIds[(i * 13 + n) % userIds.length]!, p.id, 'fulfilled', now - ((i + 0.5) * 7 * DAY) / 70);
  // 25 users paid in the last half hour; their codes are delivered when stock allows.
  const pending = userIds.slice(100, 125);
  pending.forEach((user, i) => order(user, SELLING_DOWN.id, 'pending', now - (i + 1) * 60_000));
  await client.query(
    `INSERT INTO ${s}.orders (id, user_id, product_id, quantity, status, created_at)
     SELECT o.id, o.user, o.product, 1, o.status, o.at
       FROM jsonb_to_recordset($1::jsonb) AS o(id text, "user" text, product text, status text, at timestamptz)`,
    [JSON.stringify(orders)],
  );
  // 150 users asked to be told when the gift card is back, over the last three days.
  const subscribers = userIds.slice(300, 450);
  await client.query(
    `INSERT INTO ${s}.restock_subscriptions (user_id, product_id, created_at)
     SELECT u, $2, $3::timestamptz + make_interval(secs => ord * 1700)
       FROM unnest($1::text[]) WITH ORDINALITY AS t(u, ord)`,
    [subscribers, RESTOCKED.id, new Date(now - 3 * DAY)],
  );
  return { pendingOrders: pending.length, subscribers: subscribers.length };
}

/** Sets a product's stock now, as the platform does when it sells or receives units. */
export async function setStock(
  client: pg.ClientBase,
  schema: string,
  productId: string,
  stock: number,
): Promise<void> {
  await client.query(
    `UPDATE ${escapeIdentifier(schema)}.products SET stock = $2, updated_at = now() WHERE id = $1`,
    [productId, stock],
  );
}
