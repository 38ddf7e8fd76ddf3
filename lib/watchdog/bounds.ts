// How old each watched detector's last tick may be (config watchdog.ticks): the override under the
// detector's config key, or missedFires x the gap between its schedule's next two fires, at least
// minAgeSeconds. Disabled detectors are not watched. The gap comes from node-cron, which reads the
// schedule in the config's zone exactly as the scheduler does.
import cron from 'node-cron';
import type { Config } from '../config/schema.ts';
import { registeredDetectors } from '../detection/registry.ts';

export interface TickBound {
  detector: string;
  boundMs: number;
  /** Where the bound comes from, for the log: the override, or the schedule. */
  source: 'override' | 'schedule';
}

/** The gap between the next two fires of `schedule` in `timeZone` (ms), from the real clock. */
export function scheduleGapMs(schedule: string, timeZone: string): number {
  const task = cron.createTask(schedule, () => undefined, { timezone: timeZone });
  try {
    const [a, b] = task.getNextRuns(2);
    return a && b ? b.getTime() - a.getTime() : 0;
  } finally {
    // createTask registers the task (never started); destroy removes it again.
    void task.destroy();
  }
}

/** Bounds are asked on every checkout-page status call, scrape and probe: kept this long per config. */
const BOUNDS_KEPT_MS = 60_000;
const kept = new WeakMap<Config, { at: number; bounds: readonly TickBound[] }>();

/** Each watched detector's bound; computed at most once a minute per config in force (a node-cron task each). */
export function tickBounds(config: Config): readonly TickBound[] {
  const now = Date.now();
  const hit = kept.get(config);
  if (hit && now - hit.at < BOUNDS_KEPT_MS) return hit.bounds;
  const bounds = computeTickBounds(config);
  kept.set(config, { at: now, bounds });
  return bounds;
}

function computeTickBounds(config: Config): TickBound[] {
  const { missedFires, minAgeSeconds, maxAgeSeconds } = config.watchdog.ticks;
  const bounds: TickBound[] = [];
  for (const detector of registeredDetectors) {
    const settings = detector.settingsOf(config);
    if (!settings.enabled) continue;
    const override = maxAgeSeconds[detector.configKey];
    if (override !== undefined) {
      bounds.push({ detector: detector.id, boundMs: override * 1000, source: 'override' });
      continue;
    }
    const gap = scheduleGapMs(settings.schedule, config.timezone);
    bounds.push({
      detector: detector.id,
      boundMs: Math.max(minAgeSeconds * 1000, missedFires * gap),
      source: 'schedule',
    });
  }
  return bounds;
}

/** Fires looked at for gaps: a day of a 15-second schedule. */
const FIRES_LOOKED_AT = 6_000;

export interface UnevenSchedule {
  detector: string;
  configKey: string;
  boundMs: number;
  minGapMs: number;
  maxGapMs: number;
}

/**
 * The watched detectors whose bound comes from their schedule although its gaps vary over the
 * next day (one that pauses at night): the bound follows the next gap, so the long one trips it
 * every time. They need watchdog.ticks.maxAgeSeconds. About 0.4 s of CPU a schedule.
 */
export function unevenSchedules(config: Config): UnevenSchedule[] {
  const uneven: UnevenSchedule[] = [];
  for (const bound of tickBounds(config)) {
    if (bound.source !== 'schedule') continue;
    const detector = registeredDetectors.find((d) => d.id === bound.detector)!;
    const task = cron.createTask(detector.settingsOf(config).schedule, () => undefined, {
      timezone: config.timezone,
    });
    let fires: Date[];
    try {
      fires = task.getNextRuns(FIRES_LOOKED_AT);
    } finally {
      void task.destroy();
    }
    let minGapMs = Infinity;
    let maxGapMs = 0;
    const dayAfter = (fires[0]?.getTime() ?? 0) + 86_400_000;
    for (let i = 1; i < fires.length && fires[i - 1]!.getTime() < dayAfter; i++) {
      const gap = fires[i]!.getTime() - fires[i - 1]!.getTime();
      minGapMs = Math.min(minGapMs, gap);
      maxGapMs = Math.max(maxGapMs, gap);
    }
    if (maxGapMs > bound.boundMs)
      uneven.push({
        detector: detector.id,
        configKey: detector.configKey,
        boundMs: bound.boundMs,
        minGapMs,
        maxGapMs,
      });
  }
  return uneven;
}
