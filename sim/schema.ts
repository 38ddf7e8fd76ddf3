// DDL of the simulated trading platform's tables, exactly as the platform contract describes
// them, so demos and integration tests read a database shaped like a real platform's.
import { escapeIdentifier } from 'pg';
import type { ClientBase } from 'pg';

export interface CreatePlatformSchemaOptions {
  /** Drop the schema and everything in it first. */
  reset?: boolean;
}

/**
 * Creates `schema` and the platform's tables in it (existing ones are kept unless `reset`).
 *
 * The tables carry no CHECK or foreign-key constraints on purpose: the contract says rows with an
 * unknown status or channel are skipped and logged, and tests must be able to insert such rows.
 */
export async function createPlatformSchema(
  client: ClientBase,
  schema: string,
  options: CreatePlatformSchemaOptions = {},
): Promise<void> {
  const s = escapeIdentifier(schema);
  // One simple-protocol query: PostgreSQL runs the statements in one implicit transaction.
  await client.query(`
    ${options.reset ? `DROP SCHEMA IF EXISTS ${s} CASCADE;` : ''}
    CREATE SCHEMA IF NOT EXISTS ${s};

    CREATE TABLE IF NOT EXISTS ${s}.users (
      id text PRIMARY KEY,
      email text,
      locale text NOT NULL,
      region text NOT NULL,
      timezone text NOT NULL,
      status text NOT NULL,
      last_active_at timestamptz,
      created_at timestamptz NOT NULL
    );
    -- What docs/platform-contract.md recommends for the inactivity watcher: users by when they
    -- were last active (or signed up), most recent first, a page at a time. Not partial: PostgreSQL
    -- keeps statistics for a plain expression index, and without them it plans each page as a
    -- sort of every idle user.
    CREATE INDEX IF NOT EXISTS users_idle_since_idx
      ON ${s}.users ((coalesce(last_active_at, created_at)) DESC, id DESC);

    CREATE TABLE IF NOT EXISTS ${s}.payment_channels (
      id text PRIMARY KEY,
      display_name text NOT NULL,
      regions text[] NOT NULL,
      enabled boolean NOT NULL,
      priority integer NOT NULL
    );

    CREATE TABLE IF NOT EXISTS ${s}.payment_attempts (
      id bigint PRIMARY KEY,
      user_id text NOT NULL,
      channel_id text NOT NULL,
      region text NOT NULL,
      status text NOT NULL,
      error_code text,
      latency_ms integer,
      created_at timestamptz NOT NULL,
      -- Null while pending; set when the row is updated in place to its outcome.
      finished_at timestamptz
    );
    -- A schema made before finished_at existed gains it: CREATE TABLE IF NOT EXISTS kept the old table.
    ALTER TABLE ${s}.payment_attempts ADD COLUMN IF NOT EXISTS finished_at timestamptz;
    -- forewarn reads by created_at and takes finished_at from the rows it finds, so finished_at is
    -- not indexed: an index on it would only make each in-place update heavier (no HOT update).
    CREATE INDEX IF NOT EXISTS payment_attempts_created_at_idx ON ${s}.payment_attempts (created_at);
    -- What docs/platform-contract.md recommends for the audience queries (who used a channel).
    CREATE INDEX IF NOT EXISTS payment_attempts_user_channel_idx ON ${s}.payment_attempts (user_id, channel_id, created_at);

    CREATE TABLE IF NOT EXISTS ${s}.products (
      id text PRIMARY KEY,
      name text NOT NULL,
      stock integer NOT NULL,
      low_stock_threshold integer,
      updated_at timestamptz NOT NULL
    );

    CREATE TABLE IF NOT EXISTS ${s}.orders (
      id text PRIMARY KEY,
      user_id text NOT NULL,
      product_id text NOT NULL,
      quantity integer NOT NULL,
      status text NOT NULL,
      created_at timestamptz NOT NULL
    );
    -- What docs/platform-contract.md recommends for the inventory watcher: sales per product over
    -- a window, and pending orders per product (their units, and who placed them, by user id).
    CREATE INDEX IF NOT EXISTS orders_product_created_idx ON ${s}.orders (product_id, created_at);
    CREATE INDEX IF NOT EXISTS orders_pending_product_user_idx ON ${s}.orders (product_id, user_id)
      WHERE status = 'pending';

    CREATE TABLE IF NOT EXISTS ${s}.restock_subscriptions (
      user_id text NOT NULL,
      product_id text NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (user_id, product_id)
    );
    -- What docs/platform-contract.md recommends for restock alerts: a product's subscribers in
    -- sign-up order, a page at a time.
    CREATE INDEX IF NOT EXISTS restock_subscriptions_product_idx ON ${s}.restock_subscriptions (product_id, created_at);
  `);
}
