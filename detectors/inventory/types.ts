// The inventory detector's data: what it reads per product, what it remembers per product between
// ticks (plain JSON, one forewarn.subject_state row per product that has anything to remember),
// and the cause changes it emits (the payload fields the message kinds read).

export const DETECTOR = 'inventory' as const;

/** One product as a tick reads it (a row of products with its orders summed, set-based per page). */
export interface ProductSignals {
  productId: string;
  name: string;
  /** Units on hand; pending orders have not taken theirs yet. */
  stock: number;
  /** The product's own low_stock_threshold; null: the configured default. */
  threshold: number | null;
  /** Units of pending and fulfilled orders created in the sales window (cancelled ones do not count). */
  soldUnits: number;
  /** Pending orders (any age) and the units they will take. */
  pendingOrders: number;
  pendingUnits: number;
}

/** What the rules make of a product's signals. */
export interface ProductAssessment {
  threshold: number;
  salesPerDay: number;
  /** Stock over sales per day; null when nothing sold in the window. */
  daysOfCover: number | null;
  /** Stock minus the units pending orders will take (may be negative). */
  available: number;
  /** Low by the entry rule: at or under the threshold, or under the days of cover. */
  low: boolean;
  /** Why it is low: the threshold wins when both hold. */
  reason: LowStockReason | null;
  /** Clear of the exit rule (hysteresis): an open episode may end. */
  recovered: boolean;
}

export type LowStockReason = 'threshold' | 'cover';

/** What the detector remembers of a product. A product with nothing to remember has no state. */
export interface ProductState {
  /** The product's name when a cause of it is open (for the resolve event of a removed product). */
  name?: string;
  /** The open low-stock episode. */
  low?: { openedAt: number; reason: LowStockReason };
  /** Since when the product has been out (available under restock.minQuantity). */
  outSince?: number;
  /** The open restock: when it was detected, the waves sent and when the last one was. */
  restock?: { restockedAt: number; wave: number; lastWaveAt: number };
  /** No new restock opens before this time (epoch ms). */
  cooldownUntil?: number;
}

interface ChangeBase {
  detector: typeof DETECTOR;
  subjectKey: string;
  subject: { productId: string };
  at: number;
  evidence: Record<string, unknown>;
  productId: string;
  productName: string;
  stock: number;
  pendingUnits: number;
}

/** A low-stock episode opened (the product turned low) or resolved (its stock recovered). */
export interface LowStockChange extends ChangeBase {
  kind: 'low-stock';
  type: 'opened' | 'resolved';
  threshold: number;
  salesPerDay: number;
  daysOfCover: number | null;
  pendingOrders: number;
  /** Why the episode opened (on its resolve too). */
  reason: LowStockReason;
  /** Resolved only: recovered, or removed (the product is gone from the platform). */
  resolution?: 'recovered' | 'removed';
}

/**
 * A restock: `opened` is its detection and wave 1; `wave` events (seq 2, 3, ...) are later waves;
 * `resolved` ends the waves.
 */
export interface RestockChange extends ChangeBase {
  kind: 'restock';
  type: 'opened' | 'wave' | 'resolved';
  /** The wave's number for `wave` events (2, 3, ...); absent otherwise (stored as 0). */
  seq?: number;
  available: number;
  /** The wave's size: floor(available × multiplier); on a resolve, what it would be now. */
  capacity: number;
  /** The wave's number (1 for opened); on a resolve, the number of waves sent. */
  wave: number;
  /** When the restock was detected (epoch ms), the same on all its events. */
  restockedAt: number;
  /** Resolved only: sold-out (available stock ran out), max-waves, or removed. */
  resolution?: 'sold-out' | 'max-waves' | 'removed';
}

export type InventoryChange = LowStockChange | RestockChange;

/** A product's changed state: null when it has nothing left to remember (its row is deleted). */
export interface StateUpdate {
  subjectKey: string;
  state: ProductState | null;
}

/** Products low, out, and with an open restock: of a page, summed over a pass. */
export interface InventoryTally {
  low: number;
  out: number;
  restocking: number;
}

export interface InventoryPageFindings {
  changes: InventoryChange[];
  /** The products whose state changed, and their new state; unchanged products are absent. */
  updates: StateUpdate[];
  /** After this page. */
  tally: InventoryTally;
}
