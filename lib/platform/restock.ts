// What restock alerts read from the platform: a product's restock subscriptions in sign-up order
// (keyset-paginated, never loaded whole), the subscribers themselves, and a product's available
// stock when a queued alert's turn comes. Platform tables only: forewarn's own tables may live on
// another server, so nothing here joins them; the merge with forewarn's restock requests is done
// in code (lib/messages/inventory-restock.ts).
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

/** A sign-up time as exact text, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` (UTC, microseconds, fixed width). */
export type SignupTime = string;

/**
 * The SQL for a timestamptz column as a SignupTime: fixed width, so that two of them compare as
 * strings in the order of the times, and exact to the microsecond, so that a keyset bound read
 * back never skips or repeats a row (a JS Date keeps milliseconds only).
 */
export const signupTimeSql = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Where a page starts: after this sign-up (time, then user id byte-wise). */
export interface SignupKey {
  at: SignupTime;
  userId: string;
}

export interface Signup {
  userId: string;
  at: SignupTime;
}

/**
 * The product's restock subscriptions after `after`, earliest first, ties by user id compared
 * byte-wise (COLLATE "C": the order the merge in code uses). Rows with a null created_at break
 * the contract and are never read: they have no place in the order.
 */
export async function readSubscriptionPage(
  db: Queryable,
  schema: string,
  productId: string,
  after: SignupKey | null,
  limit: number,
): Promise<Signup[]> {
  const s = escapeIdentifier(schema);
  const { rows } = await db.query<{ user_id: string; at: string }>(
    `SELECT user_id, ${signupTimeSql('created_at')} AS at
       FROM ${s}.restock_subscriptions
      WHERE product_id = $1
        AND ($2::timestamptz IS NULL OR (created_at, user_id COLLATE "C") > ($2::timestamptz, $3::text))
      ORDER BY created_at, user_id COLLATE "C"
      LIMIT $4`,
    [productId, after?.at ?? null, after?.userId ?? null, limit],
  );
  return rows.map((r) => ({ userId: r.user_id, at: r.at }));
}

export interface RestockSubscriber {
  userId: string;
  /** Null: the user id has no row in users (a dangling subscription or request). */
  user: {
    email: string | null;
    /** The contract says not null; a view that breaks it gets zh-CN. */
    locale: string;
    timezone: string | null;
    status: string;
  } | null;
  /** The user's restock subscription to the product on the platform, if any. */
  subscribedAt: SignupTime | null;
}

/** The given users, with their platform subscription to the product (one row per id given). */
export async function readRestockSubscribers(
  db: Queryable,
  schema: string,
  productId: string,
  userIds: readonly string[],
): Promise<Map<string, RestockSubscriber>> {
  if (userIds.length === 0) return new Map();
  const s = escapeIdentifier(schema);
  const { rows } = await db.query<{
    id: string;
    found: boolean;
    email: string | null;
    locale: string | null;
    timezone: string | null;
    status: string | null;
    subscribed_at: string | null;
  }>(
    `SELECT ids.id, u.id IS NOT NULL AS found, u.email, u.locale, u.timezone, u.status,
            ${signupTimeSql('rs.created_at')} AS subscribed_at
       FROM unnest($2::text[]) AS ids(id)
       LEFT JOIN ${s}.users u ON u.id = ids.id
       LEFT JOIN ${s}.restock_subscriptions rs ON rs.user_id = ids.id AND rs.product_id = $1`,
    [productId, userIds],
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        userId: r.id,
        user: r.found
          ? { email: r.email, locale: r.locale ?? 'zh-CN', timezone: r.timezone, status: r.status ?? '' }
          : null,
        subscribedAt: r.subscribed_at,
      },
    ]),
  );
}

export interface ProductAvailability {
  productId: string;
  stock: number;
  /** Units that pending orders will take (the contract's stock does not subtract them). */
  pendingUnits: number;
}

/** The given products' stock and pending units, now; a product without a row is absent. */
export async function readProductAvailability(
  db: Queryable,
  schema: string,
  productIds: readonly string[],
): Promise<Map<string, ProductAvailability>> {
  if (productIds.length === 0) return new Map();
  const s = escapeIdentifier(schema);
  const { rows } = await db.query<{ id: string; stock: number | null; pending_units: string }>(
    `SELECT p.id, p.stock,
            (SELECT coalesce(sum(o.quantity), 0) FROM ${s}.orders o
              WHERE o.product_id = p.id AND o.status = 'pending' AND o.quantity > 0) AS pending_units
       FROM ${s}.products p
      WHERE p.id = ANY ($1::text[])`,
    [productIds],
  );
  return new Map(
    rows.map((r) => [r.id, { productId: r.id, stock: r.stock ?? 0, pendingUnits: Number(r.pending_units) }]),
  );
}
