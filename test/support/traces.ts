// Synthetic payment traces for detector unit tests: simulated attempts turned into the detector's
// signals in memory, with the shipped thresholds, and replayed tick by tick on a fixed clock.
import { readFileSync } from 'node:fs';
import {
  buildSeries,
  lookback,
  replayPaymentHealth,
  thresholdsFor,
  type PaymentHealthSettings,
  type ReplayedIncident,
  type SignalSeries,
} from '../../detectors/payment-health/index.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { bucketRowsFromAttempts } from '../../sim/observe.ts';
import { referencePlatform, type Platform } from '../../sim/platform.ts';
import { generateAttempts, type Scenario, type SimAttempt } from '../../sim/traffic.ts';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
/** 2026-03-02 00:00 in Beijing: the fixed reference day of the detector tests. */
export const DAY = Date.UTC(2026, 2, 1, 16);
/** A time of day in Beijing on the reference day. */
export const beijing = (hour: number, minute = 0) => DAY + hour * HOUR + minute * MINUTE;

export const shippedSettings: PaymentHealthSettings = parseConfigText(
  readFileSync(new URL('../../config/forewarn.yaml', import.meta.url), 'utf8'),
  'config/forewarn.yaml',
).detectors.paymentHealth;

export interface TraceOptions {
  from: number;
  to: number;
  scenarios?: Scenario[];
  seed?: number;
  platform?: Platform;
  settings?: PaymentHealthSettings;
  /** Keep only these attempts (e.g. one region) to make a test faster. */
  filter?: (attempt: SimAttempt) => boolean;
}

export interface Trace {
  series: SignalSeries;
  platform: Platform;
  settings: PaymentHealthSettings;
  from: number;
  to: number;
}

/** Signals for attempts created in [from - lookback, to). */
export function trace(options: TraceOptions): Trace {
  const platform = options.platform ?? referencePlatform();
  const settings = options.settings ?? shippedSettings;
  const { windowMs, slowAfterMs } = lookback(settings);
  const fromMs = options.from - windowMs;
  const attempts = generateAttempts({
    platform,
    from: fromMs - slowAfterMs,
    to: options.to,
    seed: options.seed ?? 7,
    scenarios: options.scenarios ?? [],
  });
  const filter = options.filter;
  const kept = filter ? filterIterable(attempts, filter) : attempts;
  const rows = bucketRowsFromAttempts(kept, {
    slowAfterMs: (channel, region) => thresholdsFor(settings, channel, region).slow.slowAfterMs,
    fromMs,
    toMs: options.to + 1,
  });
  return {
    series: buildSeries(rows, fromMs, options.to + 1),
    platform,
    settings,
    from: options.from,
    to: options.to,
  };
}

/** Replays the detector every 15 s over the trace and returns the incidents. */
export function replay(t: Trace, stepMs = 15_000): ReplayedIncident[] {
  return replayPaymentHealth({
    series: t.series,
    channels: t.platform.channels,
    settings: t.settings,
    firstTick: Math.ceil(t.from / stepMs) * stepMs,
    lastTick: t.to,
    stepMs,
  }).incidents;
}

function* filterIterable<T>(items: Iterable<T>, keep: (item: T) => boolean): Generator<T> {
  for (const item of items) if (keep(item)) yield item;
}
