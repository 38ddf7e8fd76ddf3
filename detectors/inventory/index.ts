// The inventory detector's public surface.
export {
  assessProduct,
  detectInventory,
  detectProduct,
  detectRemoved,
  sameState,
  waveCapacity,
} from './detect.ts';
export {
  inventorySettingsSchema,
  lowStockSettingsSchema,
  restockSettingsSchema,
  type InventoryRules,
  type InventorySettings,
} from './settings.ts';
export { DETECTOR } from './types.ts';
export type * from './types.ts';
