// The inventory detector's own settings (config key detectors.inventory, beside the base settings
// every detector has): the low-stock rules and the restock waves. Every key is documented in
// config/forewarn.yaml.
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const lowStockSettingsSchema = z.strictObject({
  /** Low at or under this stock, for products without their own low_stock_threshold. */
  defaultThreshold: z.number().int().nonnegative(),
  /** Low when the stock lasts fewer days than this at the recent sales rate. */
  coverDays: z.number().positive(),
  /** Sales per day are the units ordered (pending or fulfilled) over this many days, ending now. */
  salesWindowDays: positiveInt,
  /**
   * Hysteresis: a low product recovers only when its stock is above threshold × factor and its
   * days of cover are at least coverDays × factor (or it sells nothing).
   */
  recoveryFactor: z.number().min(1),
});

export const restockSettingsSchema = z.strictObject({
  /**
   * A product is out while its available stock (stock minus the units pending orders will take)
   * is under this; it is restocked when it comes back with at least this many available.
   */
  minQuantity: positiveInt,
  /** A wave holds at most floor(available × multiplier) subscribers. */
  multiplier: z.number().positive(),
  /** The next wave comes this long after the previous one, while stock remains. */
  waveIntervalMinutes: positiveInt,
  /** At most this many waves per restock; the restock ends one interval after the last. */
  maxWaves: positiveInt,
  /** After a restock ends, no new one opens for this long (a product flapping between 0 and 1). */
  cooldownMinutes: z.number().int().nonnegative(),
});

export const inventorySettingsSchema = z.strictObject({
  /** Products read per page (sales and pending orders are computed per page, set-based). */
  pageSize: positiveInt.max(10_000),
  lowStock: lowStockSettingsSchema,
  restock: restockSettingsSchema,
});

export type InventorySettings = z.infer<typeof inventorySettingsSchema>;
/** What the pure detector reads of the settings. */
export type InventoryRules = Pick<InventorySettings, 'lowStock' | 'restock'>;
