// PostgreSQL connection pools: forewarn's own database and the platform's (read-only), which may
// be the same server. Timestamps come back as JS numbers where queries ask for epoch ms.
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'>;

export function createPool(
  connectionString: string,
  options: { max?: number; applicationName: string },
): pg.Pool {
  return new pg.Pool({
    connectionString,
    max: options.max ?? 5,
    application_name: options.applicationName,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
}

/**
 * `pool`, its every query abandoned after `ms`: the pool then drops that connection, so a hung
 * server holds none of its clients (checks and scrapes that must not drain the pool).
 */
export function withQueryTimeout(pool: pg.Pool, ms: number): Queryable {
  const query = (text: string, values?: unknown[]) =>
    pool.query({ text, values, query_timeout: ms } as pg.QueryConfig);
  return { query: query as Queryable['query'] };
}

/** Runs `work` in a transaction on one client, rolling back on any error. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export const escapeIdentifier = (name: string): string => pg.escapeIdentifier(name);
