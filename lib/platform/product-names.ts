// A product's name as users see it, read from the platform's `products` table (the contract's
// `name`), for pages that name the product a link is about.
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

/** The product's name; null when the platform has no such product. */
export async function readProductName(
  db: Queryable,
  schema: string,
  productId: string,
): Promise<string | null> {
  const { rows } = await db.query<{ name: string | null }>(
    `SELECT name FROM ${escapeIdentifier(schema)}.products WHERE id = $1`,
    [productId],
  );
  const row = rows[0];
  if (!row) return null;
  // A view that maps a null name breaks the contract; the id still names the product.
  return row.name ?? productId;
}
