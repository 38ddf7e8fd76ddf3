// forewarn's own restock records (migration 008): reminders users asked for through a signed
// link, and products they stopped restock alerts for. One small function per query; the caller
// holds any transaction. Timestamps are kept to the millisecond, so that a keyset cursor in epoch
// ms names a row exactly.
import type { Queryable } from '../db/pool.ts';

/** A user and a product. */
export interface RestockKey {
  userId: string;
  productId: string;
}

/** One reminder request, as the restock waves read them. */
export interface RestockRequest {
  userId: string;
  /** Epoch ms. */
  requestedAt: number;
}

/** Where a page of requests starts: after this (requestedAt, userId), exclusive. */
export interface RestockRequestCursor {
  requestedAt: number;
  userId: string;
}

/**
 * Records a reminder request, or moves an existing one's requested_at forward (never back) to
 * `at` (epoch ms; default the database's now). Returns the stored requested_at.
 */
export async function recordRestockRequest(
  db: Queryable,
  key: RestockKey & { at?: number },
): Promise<{ requestedAt: number }> {
  const { rows } = await db.query<{ requested_at: number }>(
    `INSERT INTO forewarn.restock_requests AS r (user_id, product_id, requested_at)
     VALUES ($1, $2, date_trunc('milliseconds', coalesce(to_timestamp($3::double precision / 1000), now())))
     ON CONFLICT (user_id, product_id)
       DO UPDATE SET requested_at = greatest(r.requested_at, EXCLUDED.requested_at)
     RETURNING (extract(epoch FROM requested_at) * 1000)::float8 AS requested_at`,
    [key.userId, key.productId, key.at ?? null],
  );
  return { requestedAt: Math.round(rows[0]!.requested_at) };
}

/** Records that the user wants no more restock alerts for the product (kept as first recorded). */
export async function recordRestockOptout(db: Queryable, key: RestockKey): Promise<void> {
  await db.query(
    `INSERT INTO forewarn.restock_optouts (user_id, product_id) VALUES ($1, $2)
     ON CONFLICT (user_id, product_id) DO NOTHING`,
    [key.userId, key.productId],
  );
}

/** Removes an opt-out (the user asked for a reminder again); true when there was one. */
export async function removeRestockOptout(db: Queryable, key: RestockKey): Promise<boolean> {
  const { rowCount } = await db.query(
    'DELETE FROM forewarn.restock_optouts WHERE user_id = $1 AND product_id = $2',
    [key.userId, key.productId],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * One page of a product's requests in wave order, (requestedAt, userId) ascending, after `after`
 * (null: from the first). A cursor of { requestedAt: t, userId: '' } starts at time t: the
 * requests made at t or later (timestamps are whole milliseconds, so t + 1 means after t).
 */
export async function readRestockRequestPage(
  db: Queryable,
  productId: string,
  page: { after: RestockRequestCursor | null; limit: number },
): Promise<RestockRequest[]> {
  const { rows } = await db.query<{ user_id: string; requested_at: number }>(
    `SELECT user_id, (extract(epoch FROM requested_at) * 1000)::float8 AS requested_at
       FROM forewarn.restock_requests
      WHERE product_id = $1
        AND ($2::float8 IS NULL OR (requested_at, user_id) > (to_timestamp($2::float8 / 1000), $3::text))
      ORDER BY requested_at, user_id
      LIMIT $4`,
    [productId, page.after?.requestedAt ?? null, page.after?.userId ?? '', page.limit],
  );
  return rows.map((row) => ({ userId: row.user_id, requestedAt: Math.round(row.requested_at) }));
}

/** Of `userIds`, those who stopped restock alerts for the product. */
export async function readRestockOptouts(
  db: Queryable,
  productId: string,
  userIds: readonly string[],
): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const { rows } = await db.query<{ user_id: string }>(
    'SELECT user_id FROM forewarn.restock_optouts WHERE product_id = $1 AND user_id = ANY($2::text[])',
    [productId, userIds],
  );
  return new Set(rows.map((row) => row.user_id));
}
