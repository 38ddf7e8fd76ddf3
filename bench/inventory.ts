// Benchmark: the inventory watcher's low-stock pass (runInventoryTick) over a large catalogue,
// next to a raw baseline: reading the same products page by page with a bare keyset SELECT and
// nothing else. The first pass finds every low product at once (a cause and an outbox event
// each, and a state row); the second is the steady state (a minute later, nothing new). Memory
// stays flat: the pass holds one page of products at a time, whatever the catalogue's size, so
// 10,000 and 100,000 products should show about the same heap and RSS.
//
// Each measurement runs in a child process of its own (this file, run with `child`), so its peak
// RSS is its own, not the loader's. Sizes: BENCH_INVENTORY_PRODUCTS (10000,100000), with
// BENCH_INVENTORY_ORDERS_PER_PRODUCT (5) orders each over the last 10 days.
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { loadConfigFile } from '../lib/config/load.ts';
import { migrate } from '../lib/db/migrate.ts';
import { runInventoryTick } from '../lib/detection/inventory-tick.ts';
import { createLogger } from '../lib/logger.ts';
import { InvalidRowReporter } from '../lib/platform/invalid-rows.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import {
  benchDatabase,
  figure,
  positiveIntFromEnv,
  positiveIntsFromEnv,
  timed,
  watchMemory,
  type BenchResult,
  type Figure,
} from './support.ts';

const SCHEMA = 'platform';
const CONFIG_FILE = fileURLToPath(new URL('../config/forewarn.yaml', import.meta.url));
const SCRIPT = fileURLToPath(import.meta.url);
const MINUTE = 60_000;
const PAGE = 1_000;

interface Measured {
  ms: number;
  peakRssMb: number;
  peakLiveHeapMb: number;
  rows: number;
  changes: number;
}

export async function benchInventory(): Promise<BenchResult> {
  const sizes = positiveIntsFromEnv('BENCH_INVENTORY_PRODUCTS', [10_000, 100_000]);
  const ordersPerProduct = positiveIntFromEnv('BENCH_INVENTORY_ORDERS_PER_PRODUCT', 5);
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const products of sizes) {
    const db = await benchDatabase('fw_bench_inventory');
    try {
      await migrate(db.url, createLogger({ level: 'warn' }));
      const orders = await loadCatalogue(db.url, products, ordersPerProduct);
      // Minute ticks in the recent past: a tick may not lie ahead of the database's clock.
      const tickAt = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
      const raw = await inChild({ type: 'raw', url: db.url, tickAt });
      const first = await inChild({ type: 'tick', url: db.url, tickAt });
      const steady = await inChild({ type: 'tick', url: db.url, tickAt: tickAt + MINUTE });
      const n = products.toLocaleString('en-US');
      for (const [label, m] of [
        ['raw keyset SELECT of the products', raw],
        ['first pass (every low product opens)', first],
        ['steady pass (nothing new)', steady],
      ] as const) {
        figures.push(
          figure(`${n} products, ${label}`, Math.round(m.ms), 'ms'),
          figure(`${n} products, ${label}: peak RSS`, m.peakRssMb, 'MiB'),
          figure(`${n} products, ${label}: peak live heap`, m.peakLiveHeapMb, 'MiB'),
        );
      }
      notes.push(
        `${n} products, ${orders.toLocaleString('en-US')} orders: the first pass recorded ${first.changes.toLocaleString('en-US')} cause changes, the steady pass ${steady.changes}`,
      );
    } finally {
      await db.drop();
    }
  }
  notes.push(
    `pages of ${PAGE} products; each measurement in a fresh process (its RSS includes node and tsx)`,
  );
  return { name: 'inventory: low-stock pass', figures, notes };
}

/** Products (about 8% low, 3% out) and orders over the last 10 days, written set-based. */
async function loadCatalogue(url: string, products: number, ordersPerProduct: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await createPlatformSchema(client, SCHEMA);
    await client.query('SELECT setseed(0.2026)');
    await client.query(
      `INSERT INTO ${SCHEMA}.products (id, name, stock, low_stock_threshold, updated_at)
       SELECT 'p' || lpad(i::text, 7, '0'), 'Product ' || i,
              CASE WHEN r < 0.03 THEN 0 WHEN r < 0.08 THEN 1 + (i % 10) ELSE 20 + (i % 480) END,
              CASE WHEN i % 20 = 0 THEN 5 END, now()
         FROM (SELECT i, random() AS r FROM generate_series(1, $1) AS i) AS g`,
      [products],
    );
    const { rowCount } = await client.query(
      `INSERT INTO ${SCHEMA}.orders (id, user_id, product_id, quantity, status, created_at)
       SELECT 'o' || i, 'u' || (i % 50000),
              'p' || lpad((1 + floor(random() * $1))::int::text, 7, '0'),
              1 + (i % 3),
              CASE WHEN r < 0.8 THEN 'fulfilled' WHEN r < 0.95 THEN 'pending' ELSE 'cancelled' END,
              now() - random() * interval '10 days'
         FROM (SELECT i, random() AS r FROM generate_series(1, $2) AS i) AS g`,
      [products, products * ordersPerProduct],
    );
    await client.query(`VACUUM (ANALYZE) ${SCHEMA}.products, ${SCHEMA}.orders`);
    return rowCount ?? 0;
  } finally {
    await client.end();
  }
}

type ChildRequest = { type: 'raw' | 'tick'; url: string; tickAt: number };

function inChild(request: ChildRequest): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = fork(SCRIPT, ['child'], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let reply: { ok: true; value: Measured } | { ok: false; error: string } | undefined;
    child.on('message', (message: typeof reply) => (reply = message));
    child.on('exit', (code) => {
      if (reply?.ok) resolve(reply.value);
      else reject(new Error(`bench child (${request.type}): ${reply ? reply.error : `exited with ${code}`}`));
    });
    child.send(request);
  });
}

async function childMain(request: ChildRequest): Promise<Measured> {
  const pool = new pg.Pool({ connectionString: request.url, max: 4 });
  try {
    if (request.type === 'raw') {
      const memory = watchMemory();
      const { value: rows, ms } = await timed(async () => {
        let after: string | null = null;
        let total = 0;
        for (;;) {
          const { rows }: { rows: Array<{ id: string }> } = await pool.query<{ id: string }>(
            `SELECT id, name, stock, low_stock_threshold FROM ${SCHEMA}.products
              WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2`,
            [after, PAGE],
          );
          total += rows.length;
          if (rows.length < PAGE) return total;
          after = rows.at(-1)!.id;
        }
      });
      return { ms, rows, changes: 0, ...memory.stop() };
    }
    const config = await loadConfigFile(CONFIG_FILE);
    const logger = createLogger({ level: 'warn' });
    const ctx = {
      db: pool,
      platformDb: pool,
      platformSchema: SCHEMA,
      config: () => config,
      logger,
      workerId: 'bench',
      invalidRows: new InvalidRowReporter(logger),
    };
    const memory = watchMemory();
    const { value: result, ms } = await timed(() => runInventoryTick(ctx, request.tickAt));
    if (result.outcome !== 'evaluated') throw new Error(`tick ${result.outcome}: ${result.detail ?? ''}`);
    return { ms, rows: result.findings?.subjects ?? 0, changes: result.changes.length, ...memory.stop() };
  } finally {
    await pool.end();
  }
}

if (
  process.argv[1] &&
  pathToFileURL(process.argv[1]).href === import.meta.url &&
  process.argv[2] === 'child'
) {
  process.once('message', (request: ChildRequest) => {
    childMain(request).then(
      (value) => process.send!({ ok: true, value }, () => process.exit(0)),
      (error: unknown) =>
        process.send!({ ok: false, error: error instanceof Error ? error.stack : String(error) }, () =>
          process.exit(1),
        ),
    );
  });
}
