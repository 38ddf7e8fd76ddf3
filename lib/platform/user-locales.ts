// A user's locale, read from the platform's `users` table, for pages shown to that user.
import { escapeIdentifier, type Queryable } from '../db/pool.ts';

/** The user's `locale` as stored (a BCP 47 tag); null for an unknown user or a missing value. */
export async function readUserLocale(db: Queryable, schema: string, userId: string): Promise<string | null> {
  const { rows } = await db.query<{ locale: string | null }>(
    `SELECT locale FROM ${escapeIdentifier(schema)}.users WHERE id = $1`,
    [userId],
  );
  return rows[0]?.locale ?? null;
}
