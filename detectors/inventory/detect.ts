// The inventory detector, pure: from one page of products (stock, sales over the window, pending
// orders) and what it remembers of each, the low-stock episodes and restocks that open, advance
// or end, and each product's new state. No I/O, no clock: the tick (lib/detection/inventory-tick.ts)
// pages through the products and records what this returns.
//
// Low stock: at or under the threshold, or fewer days of cover than configured; it ends only once
// the stock is above threshold × recoveryFactor and the cover at least coverDays × recoveryFactor,
// so a product selling around the edge does not open an episode every few minutes.
//
// Restock: a product is out while its available stock (stock minus pending orders' units) is
// under restock.minQuantity. When an out product has at least that many available again, a
// restock opens: wave 1. Every waveIntervalMinutes another wave follows (seq 2, 3, ...) while
// stock remains; the restock ends when a wave would hold nobody (available × multiplier under 1)
// or one interval after its last wave (maxWaves), and no new one opens for cooldownMinutes.
import type { InventoryRules } from './settings.ts';
import {
  DETECTOR,
  type InventoryChange,
  type InventoryPageFindings,
  type LowStockChange,
  type ProductAssessment,
  type ProductSignals,
  type ProductState,
  type RestockChange,
  type StateUpdate,
} from './types.ts';

const MINUTE = 60_000;

export function assessProduct(p: ProductSignals, rules: InventoryRules): ProductAssessment {
  const { defaultThreshold, coverDays, salesWindowDays, recoveryFactor } = rules.lowStock;
  const threshold = p.threshold ?? defaultThreshold;
  const salesPerDay = p.soldUnits / salesWindowDays;
  const daysOfCover = salesPerDay > 0 ? p.stock / salesPerDay : null;
  const byThreshold = p.stock <= threshold;
  const byCover = daysOfCover !== null && daysOfCover < coverDays;
  return {
    threshold,
    salesPerDay,
    daysOfCover,
    available: p.stock - p.pendingUnits,
    low: byThreshold || byCover,
    reason: byThreshold ? 'threshold' : byCover ? 'cover' : null,
    recovered:
      p.stock > threshold * recoveryFactor &&
      (daysOfCover === null || daysOfCover >= coverDays * recoveryFactor),
  };
}

/** Wave size: floor(available × multiplier), never negative. */
export function waveCapacity(available: number, multiplier: number): number {
  return Math.max(0, Math.floor(available * multiplier));
}

/** One product's changes this tick and its new state (null: nothing to remember). */
export function detectProduct(
  p: ProductSignals,
  previous: ProductState | undefined,
  rules: InventoryRules,
  now: number,
): { state: ProductState | null; changes: InventoryChange[] } {
  const a = assessProduct(p, rules);
  const changes: InventoryChange[] = [];
  const base = {
    detector: DETECTOR,
    subjectKey: p.productId,
    subject: { productId: p.productId },
    at: now,
    productId: p.productId,
    productName: p.name,
    stock: p.stock,
    pendingUnits: p.pendingUnits,
  };
  const lowFields = (reason: LowStockChange['reason']) => {
    const fields = {
      threshold: a.threshold,
      salesPerDay: round(a.salesPerDay, 3),
      daysOfCover: a.daysOfCover === null ? null : round(a.daysOfCover, 2),
      pendingOrders: p.pendingOrders,
      reason,
    };
    return { ...fields, evidence: { stock: p.stock, pendingUnits: p.pendingUnits, ...fields } };
  };

  let low = previous?.low;
  if (!low && a.low) {
    low = { openedAt: now, reason: a.reason! };
    changes.push({ ...base, kind: 'low-stock', type: 'opened', ...lowFields(low.reason) });
  } else if (low && a.recovered) {
    changes.push({
      ...base,
      kind: 'low-stock',
      type: 'resolved',
      ...lowFields(low.reason),
      resolution: 'recovered',
    });
    low = undefined;
  }

  const r = rules.restock;
  const capacity = waveCapacity(a.available, r.multiplier);
  const restockFields = (wave: number, restockedAt: number) => ({
    available: a.available,
    capacity,
    wave,
    restockedAt,
    evidence: { stock: p.stock, pendingUnits: p.pendingUnits, available: a.available, capacity, wave },
  });
  let restock = previous?.restock;
  let outSince = previous?.outSince;
  let cooldownUntil =
    previous?.cooldownUntil !== undefined && previous.cooldownUntil > now
      ? previous.cooldownUntil
      : undefined;
  if (restock) {
    let resolution: RestockChange['resolution'];
    if (capacity < 1) resolution = 'sold-out';
    else if (now - restock.lastWaveAt >= r.waveIntervalMinutes * MINUTE) {
      if (restock.wave < r.maxWaves) {
        const wave = restock.wave + 1;
        changes.push({
          ...base,
          kind: 'restock',
          type: 'wave',
          seq: wave,
          ...restockFields(wave, restock.restockedAt),
        });
        restock = { ...restock, wave, lastWaveAt: now };
      } else resolution = 'max-waves';
    }
    if (resolution) {
      changes.push({
        ...base,
        kind: 'restock',
        type: 'resolved',
        ...restockFields(restock.wave, restock.restockedAt),
        resolution,
      });
      restock = undefined;
      cooldownUntil = r.cooldownMinutes > 0 ? now + r.cooldownMinutes * MINUTE : undefined;
      outSince = a.available < r.minQuantity ? now : undefined;
    }
  } else if (a.available < r.minQuantity) {
    outSince ??= now;
  } else if (outSince !== undefined && cooldownUntil === undefined && capacity >= 1) {
    // Back with at least minQuantity available after being out: wave 1. During a cooldown the
    // product stays "out" in memory, so stock that came back meanwhile opens a restock once it ends.
    restock = { restockedAt: now, wave: 1, lastWaveAt: now };
    outSince = undefined;
    changes.push({ ...base, kind: 'restock', type: 'opened', ...restockFields(1, now) });
  }

  const state: ProductState = {};
  if (low || restock) state.name = p.name;
  if (low) state.low = low;
  if (outSince !== undefined) state.outSince = outSince;
  if (restock) state.restock = restock;
  if (cooldownUntil !== undefined) state.cooldownUntil = cooldownUntil;
  return { state: Object.keys(state).length > 0 ? state : null, changes };
}

/**
 * A product that is no longer in the platform's products table: its open causes end as
 * "removed" and it has nothing left to remember.
 */
export function detectRemoved(productId: string, previous: ProductState, now: number): InventoryChange[] {
  const base = {
    detector: DETECTOR,
    subjectKey: productId,
    subject: { productId },
    at: now,
    productId,
    productName: previous.name ?? productId,
    stock: 0,
    pendingUnits: 0,
  };
  const changes: InventoryChange[] = [];
  if (previous.low) {
    const fields = {
      threshold: 0,
      salesPerDay: 0,
      daysOfCover: null,
      pendingOrders: 0,
      reason: previous.low.reason,
    };
    changes.push({
      ...base,
      kind: 'low-stock',
      type: 'resolved',
      ...fields,
      evidence: { stock: 0, pendingUnits: 0, ...fields },
      resolution: 'removed',
    });
  }
  if (previous.restock) {
    const fields = { available: 0, capacity: 0, wave: previous.restock.wave };
    changes.push({
      ...base,
      kind: 'restock',
      type: 'resolved',
      ...fields,
      restockedAt: previous.restock.restockedAt,
      evidence: { stock: 0, pendingUnits: 0, ...fields },
      resolution: 'removed',
    });
  }
  return changes;
}

/** One page of products: their changes, and the states that changed (no others). */
export function detectInventory(
  products: readonly ProductSignals[],
  previous: ReadonlyMap<string, ProductState>,
  rules: InventoryRules,
  now: number,
): InventoryPageFindings {
  const changes: InventoryChange[] = [];
  const updates: StateUpdate[] = [];
  let low = 0;
  let out = 0;
  let restocking = 0;
  for (const p of products) {
    const before = previous.get(p.productId);
    const { state, changes: own } = detectProduct(p, before, rules, now);
    changes.push(...own);
    if (!sameState(before ?? null, state)) updates.push({ subjectKey: p.productId, state });
    if (state?.low) low++;
    if (state?.outSince !== undefined) out++;
    if (state?.restock) restocking++;
  }
  return { changes, updates, tally: { low, out, restocking } };
}

/** Field by field: a state read back from jsonb has its keys in another order. */
export function sameState(a: ProductState | null, b: ProductState | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.name === b.name &&
    a.low?.openedAt === b.low?.openedAt &&
    a.low?.reason === b.low?.reason &&
    a.outSince === b.outSince &&
    a.restock?.restockedAt === b.restock?.restockedAt &&
    a.restock?.wave === b.restock?.wave &&
    a.restock?.lastWaveAt === b.restock?.lastWaveAt &&
    a.cooldownUntil === b.cooldownUntil
  );
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
