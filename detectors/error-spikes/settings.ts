// The error-spikes detector's settings (config key detectors.errorSpikes, beside the settings
// every detector has), and the time spans a tick derives from them.
import { z } from 'zod';

const positiveInt = z.number().int().positive();

export const errorSpikesThresholdsSchema = z.strictObject({
  /**
   * Rows created this long ago or earlier are taken as they stand (a row still pending then
   * never counts); younger rows are read again every tick, since they may still finish.
   */
  settleMinutes: positiveInt.max(24 * 60),
  /** Codes that are part of normal business (a bank's insufficient balance): never alerted. */
  expectedCodes: z.array(z.string().min(1)).refine((list) => new Set(list).size === list.length, {
    message: 'expected each code once',
  }),
  /** A normally rare code reaching a count in a rolling window. */
  count: z.strictObject({
    /** Occurrences in the window that open an incident (the service desk's trigger). */
    threshold: positiveInt,
    /** The rolling window, in whole days (counted in whole hours). */
    windowDays: positiveInt.max(60),
    /** "Normally rare": the code's usual count per window, over this many weeks before it, is below the threshold. */
    baselineWeeks: positiveInt.max(12),
    /** Resolves when the rolling count falls under threshold x resolveRatio (hysteresis). */
    resolveRatio: z.number().gt(0).max(1),
    /**
     * Days of the platform's history before the window that must be known (the platform's first
     * attempt bounds it) before a code can be called rare: a young platform's codes are not.
     */
    minHistoryDays: positiveInt,
  }),
  /** Any code whose rate in the last window jumps well above its own baseline. */
  surge: z.strictObject({
    /** The recent window, in minutes (the baseline is the rest of the count window). */
    windowMinutes: positiveInt.max(24 * 60),
    /** Occurrences the recent window needs at least. */
    minCount: positiveInt,
    /** ... and at least this many times the baseline's expected count ... */
    factor: z.number().min(1),
    /** ... and, at this confidence, more than the baseline explains (Poisson upper tail). */
    confidence: z.number().gt(0.5).lt(1),
    /** Resolves when the recent count is within what the baseline explains at this confidence. */
    resolveConfidence: z.number().gt(0.5).lt(1),
    /** A code's baseline is at least this rate per hour (a code never seen before is not infinitely rare). */
    minBaselinePerHour: z.number().positive(),
    /** History the baseline must cover (before the recent window) before a surge can open. */
    minBaselineMinutes: positiveInt,
  }),
  evidence: z.strictObject({
    /** Channels and regions listed in an alert, most affected first. */
    topPlaces: positiveInt.max(20),
    /** Example attempt ids listed in an alert, newest first. */
    exampleIds: positiveInt.max(50),
  }),
  /** Codes without new occurrences or open incidents re-evaluated (and pruned) per tick, in turn. */
  sweepCodes: positiveInt.max(10_000),
});
export type ErrorSpikesThresholds = z.infer<typeof errorSpikesThresholdsSchema>;

/** Problems no single key's check can see, as [path, expected, found]. */
export function settingsProblems(
  s: ErrorSpikesThresholds,
): Array<{ path: string[]; expected: string; found: unknown }> {
  const problems: Array<{ path: string[]; expected: string; found: unknown }> = [];
  if (s.surge.windowMinutes > s.count.windowDays * 24 * 60 - 24 * 60)
    problems.push({
      path: ['surge', 'windowMinutes'],
      expected: `at most count.windowDays minus one day (${(s.count.windowDays - 1) * 24 * 60} minutes): the surge baseline is the rest of the count window`,
      found: s.surge.windowMinutes,
    });
  if (s.count.minHistoryDays > s.count.baselineWeeks * 7)
    problems.push({
      path: ['count', 'minHistoryDays'],
      expected: `at most count.baselineWeeks x 7 (${s.count.baselineWeeks * 7}): no more history is read`,
      found: s.count.minHistoryDays,
    });
  if (s.surge.resolveConfidence >= s.surge.confidence)
    problems.push({
      path: ['surge', 'resolveConfidence'],
      expected: `below surge.confidence (${s.surge.confidence}), so that a surge does not flap at the edge`,
      found: s.surge.resolveConfidence,
    });
  return problems;
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

export const floorTo = (ms: number, unit: number): number => Math.floor(ms / unit) * unit;
export const ceilTo = (ms: number, unit: number): number => Math.ceil(ms / unit) * unit;

/** The spans a tick at `now` works with (epoch ms), all derived from the settings. */
export interface Horizons {
  now: number;
  /** The surge's recent window starts here (minute buckets from here on). */
  surgeFrom: number;
  /** The count window starts here: the first whole hour inside [now - windowDays, now). */
  windowFrom: number;
  /** The baseline weeks before the count window start here (whole days). */
  baselineFrom: number;
  settleMs: number;
}

export function horizonsAt(settings: ErrorSpikesThresholds, now: number): Horizons {
  const windowFrom = ceilTo(now - settings.count.windowDays * DAY, HOUR);
  return {
    now,
    surgeFrom: floorTo(now - settings.surge.windowMinutes * MINUTE, MINUTE),
    windowFrom,
    baselineFrom: floorTo(windowFrom - settings.count.baselineWeeks * WEEK, DAY),
    settleMs: settings.settleMinutes * MINUTE,
  };
}
