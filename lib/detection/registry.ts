// The detector registry: every watcher forewarn runs, one line each. The config's `detectors`
// section, the scheduler, the detection jobs, `forewarn run <detector>`, `forewarn backtest
// --detector <id>` and `config check` are built from this list and name no watcher themselves
// (test/unit/spine-names.test.ts checks it). A watcher's own files: detectors/<id>/ (pure), its
// entry (reader, recorder) in lib/detection/, its message kinds and config keys.
import type { ConfigKeyOf, Detector } from './detector.ts';
import { errorSpikes } from './error-spikes-tick.ts';
import { inactivity } from './inactivity-tick.ts';
import { inventory } from './inventory-tick.ts';
import { paymentHealth } from './payment-health-tick.ts';

export const detectors = [paymentHealth, errorSpikes, inventory, inactivity] as const;

export type RegisteredDetector = (typeof detectors)[number];
export type DetectorId = RegisteredDetector['id'];

/** The `detectors` section of the config: each detector's settings under its config key. */
export type DetectorSettingsShape = {
  [D in RegisteredDetector as ConfigKeyOf<D['id']>]: D['settings'];
};

export function detectorSettingsShape(): DetectorSettingsShape {
  return Object.fromEntries(detectors.map((d) => [d.configKey, d.settings])) as DetectorSettingsShape;
}

export const detectorIds: readonly DetectorId[] = detectors.map((d) => d.id);

/** The registry, its entries' types erased: what the spine iterates over. */
export const registeredDetectors: readonly Detector[] = detectors;

export function findDetector(id: string): Detector | undefined {
  return registeredDetectors.find((d) => d.id === id);
}
