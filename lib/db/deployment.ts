// The deployment's identity: a UUID that `forewarn migrate` writes once into forewarn's schema
// (forewarn.deployment, migration 003) and keeps. A recreated database gets a new one, so job
// ids, the default queue prefix and the owner stamped on every job never match an older
// database's. One query per function.
import type { Queryable } from './pool.ts';

/** Writes a deployment id unless there is one; returns the id in force and whether it is new. */
export async function ensureDeploymentId(db: Queryable): Promise<{ id: string; created: boolean }> {
  const { rows } = await db.query<{ id: string; created: boolean }>(
    `WITH written AS (
       INSERT INTO forewarn.deployment DEFAULT VALUES ON CONFLICT (singleton) DO NOTHING RETURNING id
     )
     SELECT id, true AS created FROM written
     UNION ALL
     SELECT id, false AS created FROM forewarn.deployment WHERE NOT EXISTS (SELECT 1 FROM written)`,
  );
  const row = rows[0];
  if (!row) throw new Error('forewarn.deployment: no row after writing one');
  return row;
}

/** The deployment id, or null when none was written (a schema from before migration 003). */
export async function readDeploymentId(db: Queryable): Promise<string | null> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM forewarn.deployment');
  return rows[0]?.id ?? null;
}
