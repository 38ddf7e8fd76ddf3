// Synthetic payment traces for detector unit tests: simulated attempts (written pending and
// finished in place, as a platform does) replayed through the detector tick by tick on a fixed
// clock, with the shipped thresholds.
import { readFileSync } from 'node:fs';
import {
  lookback,
  replayPaymentHealth,
  type ObservedAttempt,
  type PaymentHealthSettings,
  type ReplayResult,
  type ReplayedIncident,
} from '../../detectors/payment-health/index.ts';
import { parseConfigText } from '../../lib/config/load.ts';
import { observeAll } from '../../sim/observe.ts';
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
  /** Ticks run from `from` (the detector's first tick) to `to`. */
  from: number;
  to: number;
  scenarios?: Scenario[];
  seed?: number;
  platform?: Platform;
  settings?: PaymentHealthSettings;
  rateScale?: number;
  /** Keep only these attempts (e.g. one region) to make a test faster. */
  filter?: (attempt: SimAttempt) => boolean;
  /** Extra attempts merged in creation order (e.g. one user retrying). */
  extra?: readonly SimAttempt[];
}

export interface Trace {
  attempts: () => Iterable<ObservedAttempt>;
  platform: Platform;
  settings: PaymentHealthSettings;
  from: number;
  to: number;
}

/** Attempts created from one longest window before `from` up to `to`. */
export function trace(options: TraceOptions): Trace {
  const platform = options.platform ?? referencePlatform();
  const settings = options.settings ?? shippedSettings;
  const { windowMs, settleMs } = lookback(settings);
  const attempts = () => {
    const generated = generateAttempts({
      platform,
      from: options.from - windowMs - settleMs,
      to: options.to,
      seed: options.seed ?? 7,
      scenarios: options.scenarios ?? [],
      ...(options.rateScale === undefined ? {} : { rateScale: options.rateScale }),
    });
    const kept = options.filter ? filterIterable(generated, options.filter) : generated;
    return observeAll(options.extra ? mergeByCreation(kept, options.extra) : kept);
  };
  return { attempts, platform, settings, from: options.from, to: options.to };
}

/** Replays the detector every `stepMs` over the trace. */
export function replayTrace(t: Trace, stepMs = 15_000): ReplayResult {
  return replayPaymentHealth(t.attempts(), {
    channels: t.platform.channels,
    settings: t.settings,
    firstTick: Math.ceil(t.from / stepMs) * stepMs,
    lastTick: t.to,
    stepMs,
  });
}

/** The incidents of a replay every 15 s. */
export function replay(t: Trace, stepMs = 15_000): ReplayedIncident[] {
  return replayTrace(t, stepMs).incidents;
}

function* filterIterable<T>(items: Iterable<T>, keep: (item: T) => boolean): Generator<T> {
  for (const item of items) if (keep(item)) yield item;
}

function* mergeByCreation(a: Iterable<SimAttempt>, extra: readonly SimAttempt[]): Generator<SimAttempt> {
  const sorted = [...extra].sort((x, y) => x.createdAt - y.createdAt);
  let i = 0;
  for (const item of a) {
    while (i < sorted.length && sorted[i]!.createdAt <= item.createdAt) yield sorted[i++]!;
    yield item;
  }
  while (i < sorted.length) yield sorted[i++]!;
}
