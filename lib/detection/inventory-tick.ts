// The inventory watcher's registry entry: its settings (config key detectors.inventory), its
// contract check of the platform's products and orders, and its paged pass over the products
// (lib/detection/paged.ts): a page of detectors.inventory.pageSize products in id order, each
// page's sales and pending orders summed set-based by the platform, the pure detector
// (detectors/inventory) on the page, its cause changes and changed states recorded before the
// next page; then the stored products the platform no longer has end their causes.
import type { z } from 'zod';
import {
  DETECTOR,
  detectInventory,
  detectRemoved,
  inventorySettingsSchema,
  type InventoryChange,
  type InventoryTally,
  type ProductSignals,
} from '../../detectors/inventory/index.ts';
import { table } from '../format.ts';
import {
  readExistingProducts,
  readInvalidOrders,
  readInvalidProducts,
  readProductPage,
} from '../platform/inventory.ts';
import {
  definePagedDetector,
  detectorBaseSettings,
  type DetectionContext,
  type TickResult as GenericTickResult,
} from './detector.ts';
import type { PassFindings } from './paged.ts';

export const inventoryConfigSchema = inventorySettingsSchema.extend(detectorBaseSettings);
export type InventoryConfig = z.infer<typeof inventoryConfigSchema>;

const DAY = 86_400_000;
/** Bad rows logged by id per table and tick; the rest are counted. */
const INVALID_SAMPLE = 100;
/** Changes logged one by one when a tick commits; beyond that, one line counts them. */
const LOGGED_CHANGES = 100;

/** The detector-wide state (forewarn.detector_state): products keep theirs in subject_state. */
export interface InventoryState {
  version: 1;
}

/** What a pass saw: products, pages, and products removed; low, out and restocking after it. */
export type InventoryFindings = PassFindings<InventoryTally>;

interface InventoryReading {
  invalidProducts: number;
  invalidOrders: number;
}

export type TickResult = GenericTickResult<InventoryFindings, InventoryChange>;

export const inventory = definePagedDetector({
  id: DETECTOR,
  settings: inventoryConfigSchema,
  bucketMs: 1_000,
  initialState: (): InventoryState => ({ version: 1 }),
  upgradeState: (stored: InventoryState) => stored,

  async read(
    ctx,
    { settings, now, evaluatedAt }: { settings: InventoryConfig; now: number; evaluatedAt: number | null },
  ) {
    // Products are checked whole (one scan of the table); orders created since the last tick
    // (the sales window and every pending order on the first), as older ones were checked before.
    const [products, orders] = await Promise.all([
      readInvalidProducts(ctx.platformDb, ctx.platformSchema, INVALID_SAMPLE),
      readInvalidOrders(ctx.platformDb, {
        schema: ctx.platformSchema,
        fromMs: evaluatedAt ?? now - settings.lowStock.salesWindowDays * DAY,
        nowMs: now,
        allPending: evaluatedAt === null,
        sampleLimit: INVALID_SAMPLE,
      }),
    ]);
    ctx.invalidRows.report('products', products.sample, products.count);
    ctx.invalidRows.report('orders', orders.sample, orders.count);
    return {
      signals: { invalidProducts: products.count, invalidOrders: orders.count } satisfies InventoryReading,
      cache: null,
      skippedRows: products.count + orders.count,
    };
  },

  pass: {
    pages: (ctx, { settings, now }) =>
      productPages(ctx, {
        pageSize: settings.pageSize,
        salesFromMs: now - settings.lowStock.salesWindowDays * DAY,
        nowMs: now,
      }),
    keyOf: (product) => product.productId,
    detect: detectInventory,
    emptyTally: () => ({ low: 0, out: 0, restocking: 0 }),
    addTally: (total, page) => ({
      low: total.low + page.low,
      out: total.out + page.out,
      restocking: total.restocking + page.restocking,
    }),
    pageSize: (settings) => settings.pageSize,
    lookup: async (ctx, keys) =>
      new Map(
        [...(await readExistingProducts(ctx.platformDb, ctx.platformSchema, keys))].map((k) => [k, true]),
      ),
    sweep: (key, state, exists, _settings, now) => (exists ? null : detectRemoved(key, state, now)),
    describeChange: (c) => ({ productId: c.productId, change: c.type, kind: c.kind }),
  },

  committed(log, recorded) {
    for (const r of recorded.slice(0, LOGGED_CHANGES)) {
      const c = r.change;
      log.info(
        {
          incidentId: r.incidentId,
          change: c.type,
          kind: c.kind,
          productId: c.productId,
          stock: c.stock,
          ...(c.kind === 'low-stock'
            ? { threshold: c.threshold, daysOfCover: c.daysOfCover, reason: c.reason }
            : { available: c.available, capacity: c.capacity, wave: c.wave }),
          ...(c.resolution ? { resolution: c.resolution } : {}),
        },
        `${c.kind} ${c.type}`,
      );
    }
    if (recorded.length > LOGGED_CHANGES)
      log.info(
        { changes: recorded.length, logged: LOGGED_CHANGES },
        `${recorded.length} inventory cause changes recorded; the first ${LOGGED_CHANGES} are logged one by one`,
      );
  },

  describe(result) {
    let out = '';
    if (result.changes.length > 0) {
      out += `${table(
        ['change', 'kind', 'product', 'stock', 'threshold', 'cover (days)', 'available', 'wave', 'why'],
        result.changes.map((c) => [
          c.type,
          c.kind,
          c.productId,
          c.stock,
          c.kind === 'low-stock' ? c.threshold : null,
          c.kind === 'low-stock' ? c.daysOfCover : null,
          c.kind === 'restock' ? `${c.available} (wave of ${c.capacity})` : null,
          c.kind === 'restock' ? c.wave : null,
          c.resolution ?? (c.kind === 'low-stock' ? c.reason : null),
        ]),
      )}\n`;
    }
    const f = result.findings;
    if (f)
      out += `${f.subjects} products in ${f.pages} page${f.pages === 1 ? '' : 's'}: ${f.tally.low} low, ${f.tally.out} out, ${f.tally.restocking} restocking${f.gone > 0 ? `, ${f.gone} removed` : ''}\n`;
    return out;
  },
});

/** One live inventory pass (the detection job and `forewarn run inventory`). */
export const runInventoryTick = inventory.run;

/** The products a page at a time, in id order. */
async function* productPages(
  ctx: DetectionContext,
  q: { pageSize: number; salesFromMs: number; nowMs: number },
): AsyncGenerator<ProductSignals[]> {
  let after: string | null = null;
  for (;;) {
    const page = await readProductPage(ctx.platformDb, {
      schema: ctx.platformSchema,
      after,
      limit: q.pageSize,
      salesFromMs: q.salesFromMs,
      nowMs: q.nowMs,
    });
    if (page.length > 0) yield page;
    if (page.length < q.pageSize) return;
    after = page.at(-1)!.productId;
  }
}
