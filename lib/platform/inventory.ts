// Reading the platform's products and orders (see docs/platform-contract.md) for the inventory
// watcher: products a page at a time in id order (keyset), each page's sales and pending orders
// summed set-based in the same query, so that a pass over 100,000 products runs in constant
// memory and a page costs one query; the rows that break the contract; and who has a pending
// order for a product (the low-stock notice's audience), keyset by user id. One query per function.
//
// Sold units are the quantities of `pending` and `fulfilled` orders created in the sales window:
// a pending order is paid or placed, so it is demand the stock has to meet; `cancelled` orders
// are not. Pending units are those of every pending order, however old: they will all take stock.
import type { ProductSignals } from '../../detectors/inventory/index.ts';
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

export const ORDER_STATUSES = ['pending', 'fulfilled', 'cancelled'] as const;

export interface ProductPageQuery {
  schema: string;
  /** Keyset: only products with an id after this one. */
  after: string | null;
  limit: number;
  /** Orders created in (salesFromMs, nowMs] count as sold. */
  salesFromMs: number;
  nowMs: number;
}

/**
 * One page of valid products in id order, with their sold units in the window and their pending
 * orders and units. Rows that break the contract are left out here (readInvalidInventoryRows
 * counts and names them): a product with a null name or stock, a negative stock or threshold,
 * an order with an unknown status or a quantity that is not positive.
 */
export async function readProductPage(db: Queryable, q: ProductPageQuery): Promise<ProductSignals[]> {
  const s = escapeIdentifier(q.schema);
  const { rows } = await db.query<{
    id: string;
    name: string;
    stock: number;
    threshold: number | null;
    sold_units: number;
    pending_orders: number;
    pending_units: number;
  }>(
    `WITH page AS (
       SELECT id, name, stock, low_stock_threshold
         FROM ${s}.products
        WHERE ($1::text IS NULL OR id > $1)
          AND name IS NOT NULL AND stock IS NOT NULL AND stock >= 0
          AND (low_stock_threshold IS NULL OR low_stock_threshold >= 0)
        ORDER BY id
        LIMIT $2
     ),
     sold AS (
       SELECT o.product_id, sum(o.quantity) AS units
         FROM ${s}.orders o
        WHERE o.product_id IN (SELECT id FROM page)
          AND o.created_at > $3 AND o.created_at <= $4
          AND o.status IN ('pending', 'fulfilled') AND o.quantity > 0 AND o.user_id IS NOT NULL
        GROUP BY o.product_id
     ),
     pending AS (
       SELECT o.product_id, count(*) AS orders, sum(o.quantity) AS units
         FROM ${s}.orders o
        WHERE o.product_id IN (SELECT id FROM page)
          AND o.status = 'pending' AND o.quantity > 0 AND o.user_id IS NOT NULL
        GROUP BY o.product_id
     )
     SELECT p.id, p.name, p.stock, p.low_stock_threshold AS threshold,
            coalesce(sold.units, 0)::float8 AS sold_units,
            coalesce(pending.orders, 0)::float8 AS pending_orders,
            coalesce(pending.units, 0)::float8 AS pending_units
       FROM page p
       LEFT JOIN sold ON sold.product_id = p.id
       LEFT JOIN pending ON pending.product_id = p.id
      ORDER BY p.id`,
    [q.after, q.limit, new Date(q.salesFromMs), new Date(q.nowMs)],
  );
  return rows.map((r) => ({
    productId: r.id,
    name: r.name,
    stock: r.stock,
    threshold: r.threshold,
    soldUnits: r.sold_units,
    pendingOrders: r.pending_orders,
    pendingUnits: r.pending_units,
  }));
}

export interface InvalidRows {
  count: number;
  /** The first rows by id, with why each breaks the contract. */
  sample: Array<{ id: string; reason: string }>;
}

/** Products that break the contract (all of them: the table is read whole every tick). */
export async function readInvalidProducts(
  db: Queryable,
  schema: string,
  sampleLimit: number,
): Promise<InvalidRows> {
  const s = escapeIdentifier(schema);
  return invalidRows(
    db,
    `SELECT coalesce(id, '(null)') AS id,
            CASE WHEN id IS NULL THEN 'id is null'
                 WHEN name IS NULL THEN 'name is null'
                 WHEN stock IS NULL THEN 'stock is null'
                 WHEN stock < 0 THEN format('negative stock %s', stock)
                 WHEN low_stock_threshold < 0 THEN format('negative low_stock_threshold %s', low_stock_threshold)
            END AS reason
       FROM ${s}.products`,
    [],
    sampleLimit,
  );
}

/**
 * Orders that break the contract among those created in [fromMs, nowMs] and, with `allPending`,
 * every pending order: an unknown or null status, a quantity that is not positive, a null user,
 * an unknown product. Later ticks check only the orders created since the last one.
 */
export async function readInvalidOrders(
  db: Queryable,
  q: { schema: string; fromMs: number; nowMs: number; allPending: boolean; sampleLimit: number },
): Promise<InvalidRows> {
  const s = escapeIdentifier(q.schema);
  return invalidRows(
    db,
    `SELECT o.id,
            CASE WHEN o.product_id IS NULL THEN 'product_id is null'
                 WHEN o.user_id IS NULL THEN 'user_id is null'
                 WHEN o.status IS NULL THEN 'status is null'
                 WHEN o.status NOT IN (${ORDER_STATUSES.map((st) => `'${st}'`).join(', ')})
                   THEN format('unknown status %L', o.status)
                 WHEN o.quantity IS NULL THEN 'quantity is null'
                 WHEN o.quantity <= 0 THEN format('quantity %s is not positive', o.quantity)
                 WHEN NOT EXISTS (SELECT 1 FROM ${s}.products p WHERE p.id = o.product_id)
                   THEN format('unknown product %L', o.product_id)
            END AS reason
       FROM ${s}.orders o
      WHERE (o.created_at >= $1 AND o.created_at <= $2) OR ($3 AND o.status = 'pending')`,
    [new Date(q.fromMs), new Date(q.nowMs), q.allPending],
    q.sampleLimit,
  );
}

async function invalidRows(
  db: Queryable,
  checked: string,
  params: unknown[],
  sampleLimit: number,
): Promise<InvalidRows> {
  const { rows } = await db.query<{ id: string; reason: string; total: number }>(
    `SELECT id, reason, count(*) OVER ()::float8 AS total
       FROM (${checked}) AS checked
      WHERE reason IS NOT NULL
      ORDER BY id
      LIMIT $${params.length + 1}`,
    [...params, sampleLimit],
  );
  return { count: rows[0]?.total ?? 0, sample: rows.map((r) => ({ id: r.id, reason: r.reason })) };
}

/** Which of these product ids are still in the products table (valid or not). */
export async function readExistingProducts(
  db: Queryable,
  schema: string,
  ids: readonly string[],
): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM ${escapeIdentifier(schema)}.products WHERE id = ANY ($1::text[])`,
    [ids],
  );
  return new Set(rows.map((r) => r.id));
}

export interface PendingOrderUser {
  id: string;
  email: string | null;
  locale: string;
  /** users.timezone (IANA); null when unknown. */
  timezone: string | null;
  /** The user's pending orders for the product, and when the earliest was placed (epoch ms). */
  pendingOrders: number;
  earliestOrderedAt: number;
}

/**
 * One page of the active users with a pending order for the product, in user id order after
 * `after`. `cursor` is where the next page starts (null: no more): a page may hold fewer users
 * than `limit` (users not active are left out) and still not be the last.
 */
export async function readPendingOrderUsers(
  db: Queryable,
  q: { schema: string; productId: string; after: string | null; limit: number },
): Promise<{ users: PendingOrderUser[]; cursor: string | null }> {
  const s = escapeIdentifier(q.schema);
  const { rows } = await db.query<{
    user_id: string;
    orders: number;
    earliest: number;
    email: string | null;
    locale: string | null;
    timezone: string | null;
    status: string | null;
  }>(
    `SELECT o.user_id, o.orders, o.earliest, u.email, u.locale, u.timezone, u.status
       FROM (SELECT user_id, count(*)::int AS orders,
                    floor(extract(epoch FROM min(created_at)) * 1000)::float8 AS earliest
               FROM ${s}.orders
              WHERE product_id = $1 AND status = 'pending' AND quantity > 0 AND user_id IS NOT NULL
                AND ($2::text IS NULL OR user_id > $2)
              GROUP BY user_id
              ORDER BY user_id
              LIMIT $3) o
       LEFT JOIN ${s}.users u ON u.id = o.user_id
      ORDER BY o.user_id`,
    [q.productId, q.after, q.limit],
  );
  const users = rows
    .filter((r) => r.status === 'active')
    // The contract says locale is not null; a platform that breaks it still gets its users told, in zh-CN.
    .map((r) => ({
      id: r.user_id,
      email: r.email,
      locale: r.locale ?? 'zh-CN',
      timezone: r.timezone,
      pendingOrders: r.orders,
      earliestOrderedAt: r.earliest,
    }));
  return { users, cursor: rows.length === q.limit ? rows.at(-1)!.user_id : null };
}
