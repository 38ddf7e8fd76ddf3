// The inventory watcher's registry entry: its settings (config key detectors.inventory), its
// contract check of the platform's products and orders, and its pass over the products. The
// pass pages through the products in id order (detectors.inventory.pageSize a page, each page's
// sales and pending orders summed set-based by the platform), reads the page's states from
// forewarn.subject_state, runs the pure detector (detectors/inventory) on the page and records
// its cause changes and changed states before reading on, so 100,000 products take the memory
// of one page. Then it sweeps the stored states for products the platform no longer has.
//
// The spine's detector has one `detect` over one reading; a pass that pages cannot hand the
// whole catalogue to it, so here `detect` only starts the pass's tally and the pure detector
// runs per page inside `record` (still in the tick's transaction: a dry run rolls it all back).
// The tick itself (lock, stale guard, run records, dry runs) is the generic runner's.
import type { z } from 'zod';
import {
  DETECTOR,
  detectInventory,
  detectRemoved,
  inventorySettingsSchema,
  type InventoryChange,
  type ProductSignals,
  type ProductState,
  type StateUpdate,
} from '../../detectors/inventory/index.ts';
import type { PoolClient } from '../db/pool.ts';
import { table } from '../format.ts';
import {
  readSubjectStatePage,
  readSubjectStates,
  recordCauseChange,
  saveSubjectStates,
  type RecordedChange,
} from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import {
  readExistingProducts,
  readInvalidOrders,
  readInvalidProducts,
  readProductPage,
} from '../platform/inventory.ts';
import { readAhead } from '../read-ahead.ts';
import {
  defineDetector,
  detectorBaseSettings,
  type DetectionContext,
  type TickResult as GenericTickResult,
} from './detector.ts';

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

/** What a pass saw: for `forewarn run` and the tick's result. */
export interface InventoryFindings {
  products: number;
  pages: number;
  /** Products low, out, and restocking after the pass. */
  low: number;
  out: number;
  restocking: number;
  /** Stored products the platform no longer has (their causes resolved as removed). */
  removed: number;
}

interface InventoryReading {
  invalidProducts: number;
  invalidOrders: number;
}

export type TickResult = GenericTickResult<InventoryFindings, InventoryChange>;

export const inventory = defineDetector({
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

  // The pass pages through the products in `record`; this starts its tally (see the top).
  detect: (
    _signals: InventoryReading,
    _previous: InventoryState,
    _settings: InventoryConfig,
    _now: number,
  ): InventoryFindings => ({
    products: 0,
    pages: 0,
    low: 0,
    out: 0,
    restocking: 0,
    removed: 0,
  }),

  async record(client, ctx, { findings: tally, previous, settings, now, log }) {
    const pass = new PassRecorder(client, log);
    const findings = { ...tally };
    const pages = readAhead(
      productPages(ctx, {
        pageSize: settings.pageSize,
        salesFromMs: now - settings.lowStock.salesWindowDays * DAY,
        nowMs: now,
      }),
    );
    for await (const page of pages) {
      const states = await readSubjectStates<ProductState>(
        client,
        DETECTOR,
        page.map((p) => p.productId),
      );
      const found = detectInventory(page, states, settings, now);
      await pass.apply(found.changes, found.updates);
      findings.products += page.length;
      findings.pages++;
      findings.low += found.low;
      findings.out += found.out;
      findings.restocking += found.restocking;
    }

    // Products with a stored state that the platform no longer has: their causes end.
    let after: string | null = null;
    for (;;) {
      const stored: Array<{ subjectKey: string; state: ProductState }> =
        await readSubjectStatePage<ProductState>(client, DETECTOR, after, settings.pageSize);
      if (stored.length === 0) break;
      const existing = await readExistingProducts(
        ctx.platformDb,
        ctx.platformSchema,
        stored.map((s) => s.subjectKey),
      );
      const gone = stored.filter((s) => !existing.has(s.subjectKey));
      await pass.apply(
        gone.flatMap((s) => detectRemoved(s.subjectKey, s.state, now)),
        gone.map((s) => ({ subjectKey: s.subjectKey, state: null })),
      );
      findings.removed += gone.length;
      after = stored.at(-1)!.subjectKey;
      if (stored.length < settings.pageSize) break;
    }

    return {
      state: previous,
      findings,
      proposed: pass.proposed,
      kept: pass.recorded.map((r) => r.change),
      recorded: pass.recorded,
      failedSubjects: pass.failed,
      opsNotificationIds: [],
    };
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
      out += `${f.products} products in ${f.pages} page${f.pages === 1 ? '' : 's'}: ${f.low} low, ${f.out} out, ${f.restocking} restocking${f.removed > 0 ? `, ${f.removed} removed` : ''}\n`;
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

/**
 * Records a pass's cause changes and states page by page: one savepoint per product, so that a
 * product whose change cannot be recorded keeps its previous state (and is tried again next
 * tick) while the others are recorded; only changed states are written.
 */
class PassRecorder {
  readonly proposed: InventoryChange[] = [];
  readonly recorded: RecordedChange<InventoryChange>[] = [];
  readonly failed: string[] = [];

  constructor(
    private readonly client: PoolClient,
    private readonly log: Logger,
  ) {}

  async apply(changes: readonly InventoryChange[], updates: readonly StateUpdate[]): Promise<void> {
    this.proposed.push(...changes);
    const failed = new Set<string>();
    for (const [subjectKey, own] of bySubject(changes)) {
      const done: RecordedChange<InventoryChange>[] = [];
      try {
        await this.client.query('SAVEPOINT product_change');
        for (const change of own) done.push(await recordCauseChange(this.client, change));
        await this.client.query('RELEASE SAVEPOINT product_change');
        this.recorded.push(...done);
      } catch (error) {
        await this.client.query('ROLLBACK TO SAVEPOINT product_change').catch(() => undefined);
        failed.add(subjectKey);
        this.failed.push(subjectKey);
        this.log.error(
          { err: error, productId: subjectKey, changes: own.map((c) => `${c.kind} ${c.type}`) },
          'could not record a product cause change; the product keeps its previous state and is tried again next tick',
        );
      }
    }
    await saveSubjectStates(
      this.client,
      DETECTOR,
      updates.filter((u) => !failed.has(u.subjectKey)),
    );
  }
}

/** Changes grouped by product, in order (a page's changes come product by product). */
function bySubject(changes: readonly InventoryChange[]): Map<string, InventoryChange[]> {
  const groups = new Map<string, InventoryChange[]>();
  for (const c of changes) {
    const group = groups.get(c.subjectKey);
    if (group) group.push(c);
    else groups.set(c.subjectKey, [c]);
  }
  return groups;
}
