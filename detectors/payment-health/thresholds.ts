// The payment-health detector's tunable thresholds: their schema (owned here, embedded in the
// config schema by lib/config) and how overrides per region, channel and pair are layered.
import { z } from 'zod';

const rate = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();

/** Thresholds for one proportion (failure share or slow share) compared with its pair's baseline. */
const proportionThresholds = z.strictObject({
  /** Prior expectation of the share, used until the pair's own baseline is learned. */
  expectedRate: rate,
  /** Degraded when the share exceeds baseline + max(minIncrease, baseline * relativeIncrease). */
  minIncrease: rate,
  relativeIncrease: z.number().min(0),
  /** Fewer bad attempts than this in the deciding window never count as degraded. */
  minCount: positiveInt,
});
const slowThresholds = proportionThresholds.extend({ slowAfterMs: positiveInt });

const windowSpec = z.strictObject({ seconds: positiveInt.multipleOf(5), minAttempts: positiveInt });

export const paymentHealthThresholdsSchema = z.strictObject({
  windows: z
    .array(windowSpec)
    .min(1)
    .refine((ws) => ws.every((w, i) => i === 0 || w.seconds > ws[i - 1]!.seconds), {
      message: 'expected windows sorted by seconds, shortest first, without repeats',
    }),
  confidence: z.number().gt(0.5).lt(1),
  confirmSeconds: z.number().int().min(0),
  resolveSeconds: z.number().int().min(0),
  recentSeconds: positiveInt.multipleOf(5),
  recentMinAttempts: positiveInt,
  failures: proportionThresholds,
  slow: slowThresholds,
  baseline: z.strictObject({
    priorWeight: z.number().positive(),
    halfLifeMinutes: z.number().positive(),
    maxRate: rate,
  }),
  backup: z.strictObject({ minAttempts: positiveInt, maxListed: positiveInt }),
});
export type PaymentHealthThresholds = z.infer<typeof paymentHealthThresholdsSchema>;

const shape = paymentHealthThresholdsSchema.shape;
/** An override may set any threshold; nested groups may be set in part. */
export const paymentHealthOverrideSchema = z.strictObject({
  windows: shape.windows.optional(),
  confidence: shape.confidence.optional(),
  confirmSeconds: shape.confirmSeconds.optional(),
  resolveSeconds: shape.resolveSeconds.optional(),
  recentSeconds: shape.recentSeconds.optional(),
  recentMinAttempts: shape.recentMinAttempts.optional(),
  failures: proportionThresholds.partial().optional(),
  slow: slowThresholds.partial().optional(),
  baseline: shape.baseline.partial().optional(),
  backup: shape.backup.partial().optional(),
});
export type PaymentHealthOverride = z.infer<typeof paymentHealthOverrideSchema>;

export const paymentHealthOverridesSchema = z
  .strictObject({
    channels: z.record(z.string(), paymentHealthOverrideSchema).default({}),
    regions: z.record(z.string(), paymentHealthOverrideSchema).default({}),
    pairs: z
      .record(
        z.string().regex(/^[^:\s]+:[^:\s]+$/, 'expected "channel:region", e.g. "alipay:CN-GD"'),
        paymentHealthOverrideSchema,
      )
      .default({}),
  })
  .default({ channels: {}, regions: {}, pairs: {} });

/** What the detector is given: the defaults and the overrides to layer on them. */
export interface PaymentHealthSettings extends PaymentHealthThresholds {
  overrides: z.infer<typeof paymentHealthOverridesSchema>;
}

/**
 * The thresholds in force for one pair: defaults, then the region's override, then the
 * channel's, then the pair's ("channel:region"). Results are cached per settings object.
 */
export function thresholdsFor(
  settings: PaymentHealthSettings,
  channel: string,
  region: string,
): PaymentHealthThresholds {
  let cache = resolved.get(settings);
  if (!cache) {
    cache = new Map();
    resolved.set(settings, cache);
  }
  const key = `${channel}:${region}`;
  let thresholds = cache.get(key);
  if (!thresholds) {
    const { overrides } = settings;
    thresholds = [
      overrides.regions[region],
      overrides.channels[channel],
      overrides.pairs[key],
    ].reduce<PaymentHealthThresholds>(
      (merged, override) => (override ? applyOverride(merged, override) : merged),
      pickThresholds(settings),
    );
    cache.set(key, thresholds);
  }
  return thresholds;
}

const resolved = new WeakMap<PaymentHealthSettings, Map<string, PaymentHealthThresholds>>();

function pickThresholds(s: PaymentHealthSettings): PaymentHealthThresholds {
  const { windows, confidence, confirmSeconds, resolveSeconds, recentSeconds, recentMinAttempts } = s;
  const { failures, slow, baseline, backup } = s;
  return {
    windows,
    confidence,
    confirmSeconds,
    resolveSeconds,
    recentSeconds,
    recentMinAttempts,
    failures,
    slow,
    baseline,
    backup,
  };
}

function applyOverride(base: PaymentHealthThresholds, o: PaymentHealthOverride): PaymentHealthThresholds {
  return {
    windows: o.windows ?? base.windows,
    confidence: o.confidence ?? base.confidence,
    confirmSeconds: o.confirmSeconds ?? base.confirmSeconds,
    resolveSeconds: o.resolveSeconds ?? base.resolveSeconds,
    recentSeconds: o.recentSeconds ?? base.recentSeconds,
    recentMinAttempts: o.recentMinAttempts ?? base.recentMinAttempts,
    failures: { ...base.failures, ...definedOnly(o.failures) },
    slow: { ...base.slow, ...definedOnly(o.slow) },
    baseline: { ...base.baseline, ...definedOnly(o.baseline) },
    backup: { ...base.backup, ...definedOnly(o.backup) },
  };
}

function definedOnly<T extends object>(value: T | undefined): Partial<T> {
  if (!value) return {};
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The longest window any pair may need, and the longest slow threshold: how far back to read. */
export function lookback(settings: PaymentHealthSettings): { windowMs: number; slowAfterMs: number } {
  const all = [settings, ...Object.values(settings.overrides).flatMap((group) => Object.values(group))];
  let windowSeconds = settings.recentSeconds;
  let slowAfterMs = settings.slow.slowAfterMs;
  for (const t of all) {
    for (const w of t.windows ?? []) windowSeconds = Math.max(windowSeconds, w.seconds);
    windowSeconds = Math.max(windowSeconds, t.recentSeconds ?? 0);
    slowAfterMs = Math.max(slowAfterMs, t.slow?.slowAfterMs ?? 0);
  }
  return { windowMs: windowSeconds * 1000, slowAfterMs };
}
