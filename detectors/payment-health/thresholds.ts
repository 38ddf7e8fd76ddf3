// The payment-health detector's tunable thresholds: their schema (owned here, embedded in the
// config schema by lib/config), how overrides per region, channel and pair are layered, and the
// checks that refuse a combination under which a pair could never alert.
import { z } from 'zod';

const rate = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();
const seconds5 = positiveInt.multipleOf(5);

/** Thresholds for one proportion (failure share or slow share) compared with its pair's baseline. */
const proportionThresholds = z.strictObject({
  /** Prior expectation of the share, used until the pair's own baseline is learned. */
  expectedRate: rate,
  /** Degraded when the share exceeds baseline + max(minIncrease, baseline * relativeIncrease). */
  minIncrease: z.number().gt(0).max(1),
  relativeIncrease: z.number().min(0),
  /** Fewer bad attempts than this in the deciding window never count as degraded. */
  minCount: positiveInt,
  /** Bad attempts from fewer distinct users than this never count: one user retrying proves nothing. */
  minUsers: positiveInt,
});
const slowThresholds = proportionThresholds.extend({ slowAfterMs: positiveInt });

const windowSpec = z.strictObject({ seconds: seconds5, minAttempts: positiveInt });

const latencyThresholds = z.strictObject({
  /** Confirmations this many times slower than the pair's learned median count as slow ... */
  factor: z.number().gt(1),
  /** ... and at least this much slower in absolute terms. */
  minIncreaseMs: z.number().int().min(0),
  /** Confirmed attempts needed in a window before its latency is judged. */
  minConfirmed: positiveInt,
  /** Only windows up to this long are judged on latency (longer ones hold stale confirmations). */
  maxWindowSeconds: seconds5,
  /** Confirmed attempts the learned latency must rest on before latency is judged at all. */
  minBaseline: positiveInt,
});

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
  recentSeconds: seconds5,
  recentMinAttempts: positiveInt,
  /** Evidence must include a bad attempt created this recently. */
  freshSeconds: seconds5,
  /** A gap longer than this between degraded ticks (or between ticks) starts confirmation again. */
  maxGapSeconds: positiveInt,
  /**
   * An attempt still unfinished this long after it was created is judged as it stands (pending):
   * a later update is not seen, so live ticks and backtests agree. At least the slow threshold.
   */
  settleSeconds: seconds5,
  failures: proportionThresholds,
  slow: slowThresholds,
  latency: latencyThresholds,
  baseline: z.strictObject({
    priorWeight: z.number().positive(),
    halfLifeMinutes: z.number().positive(),
    maxRate: rate,
  }),
  /** An incident whose pair has had no attempt this long resolves as "no longer observed". */
  silenceMinutes: positiveInt,
  /** An incident open this long at a steady share below baseline.maxRate is taken as a new normal. */
  relearnAfterMinutes: positiveInt,
  backup: z.strictObject({
    /** Successes a backup needs in the last `windowSeconds` to be shown healthy now. */
    minSuccesses: positiveInt,
    windowSeconds: seconds5,
    /** Confidence of the upper bound of its failure share, which must stay below its threshold. */
    confidence: z.number().gt(0.5).lt(1),
    maxListed: positiveInt,
  }),
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
  freshSeconds: shape.freshSeconds.optional(),
  maxGapSeconds: shape.maxGapSeconds.optional(),
  failures: proportionThresholds.partial().optional(),
  slow: slowThresholds.partial().optional(),
  latency: latencyThresholds.partial().optional(),
  baseline: shape.baseline.partial().optional(),
  silenceMinutes: shape.silenceMinutes.optional(),
  relearnAfterMinutes: shape.relearnAfterMinutes.optional(),
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
    thresholds = layer(settings, [
      overrides.regions[region],
      overrides.channels[channel],
      overrides.pairs[key],
    ]);
    cache.set(key, thresholds);
  }
  return thresholds;
}

const resolved = new WeakMap<PaymentHealthSettings, Map<string, PaymentHealthThresholds>>();

function layer(
  settings: PaymentHealthSettings,
  overrides: ReadonlyArray<PaymentHealthOverride | undefined>,
): PaymentHealthThresholds {
  return overrides.reduce<PaymentHealthThresholds>(
    (merged, override) => (override ? applyOverride(merged, override) : merged),
    pickThresholds(settings),
  );
}

function pickThresholds(s: PaymentHealthSettings): PaymentHealthThresholds {
  const { overrides: _overrides, ...rest } = s as PaymentHealthSettings & Record<string, unknown>;
  const picked = {} as Record<string, unknown>;
  for (const key of Object.keys(paymentHealthThresholdsSchema.shape)) picked[key] = rest[key];
  return picked as unknown as PaymentHealthThresholds;
}

function applyOverride(base: PaymentHealthThresholds, o: PaymentHealthOverride): PaymentHealthThresholds {
  const merged = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(o)) {
    if (value === undefined) continue;
    const current = merged[key];
    merged[key] =
      isPlainObject(current) && isPlainObject(value) ? { ...current, ...definedOnly(value) } : value;
  }
  return merged as unknown as PaymentHealthThresholds;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface Combination {
  /** Where the combination comes from, for messages, and the config path to blame. */
  where: string;
  path: string[];
  thresholds: PaymentHealthThresholds;
}

/** Every combination of overrides a pair can end up with. */
function combinations(settings: PaymentHealthSettings): Combination[] {
  const { overrides } = settings;
  const regions: Array<[string, PaymentHealthOverride | undefined]> = [
    ['', undefined],
    ...Object.entries(overrides.regions),
  ];
  const channels: Array<[string, PaymentHealthOverride | undefined]> = [
    ['', undefined],
    ...Object.entries(overrides.channels),
  ];
  const out: Combination[] = [];
  for (const [region, r] of regions) {
    for (const [channel, c] of channels) {
      const where = [region && `overrides.regions.${region}`, channel && `overrides.channels.${channel}`]
        .filter(Boolean)
        .join(' with ');
      const path = channel
        ? ['overrides', 'channels', channel]
        : region
          ? ['overrides', 'regions', region]
          : [];
      out.push({ where: where || 'the defaults', path, thresholds: layer(settings, [r, c]) });
    }
  }
  for (const [key, p] of Object.entries(overrides.pairs)) {
    const [channel, region] = key.split(':') as [string, string];
    out.push({
      where: `overrides.pairs.${key}`,
      path: ['overrides', 'pairs', key],
      thresholds: layer(settings, [overrides.regions[region], overrides.channels[channel], p]),
    });
  }
  return out;
}

/** The highest threshold a share may have to exceed: at the baseline's cap. */
export function thresholdAt(
  baseline: number,
  limits: { minIncrease: number; relativeIncrease: number },
): number {
  return baseline + Math.max(limits.minIncrease, baseline * limits.relativeIncrease);
}

/**
 * Combinations of settings under which some pair could never alert, or whose parts contradict
 * each other: each problem names where it comes from and what was expected.
 */
export interface SettingsProblem {
  path: string[];
  expected: string;
  found: string;
}

export function settingsProblems(settings: PaymentHealthSettings): SettingsProblem[] {
  const problems: SettingsProblem[] = [];
  const seen = new Set<string>();
  const report = (path: string[], expected: string, found: string) => {
    const key = `${path.join('.')}: ${expected}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push({ path, expected, found });
  };
  for (const { where, path, thresholds: t } of combinations(settings)) {
    for (const kind of ['failures', 'slow'] as const) {
      const top = thresholdAt(t.baseline.maxRate, t[kind]);
      if (top >= 0.95) {
        report(
          [...path, kind],
          `baseline.maxRate + max(${kind}.minIncrease, maxRate * ${kind}.relativeIncrease) below 0.95 (in ${where}), so that a pair whose baseline reaches the cap can still alert`,
          `${round(t.baseline.maxRate)} + ${round(top - t.baseline.maxRate)} = ${round(top)}`,
        );
      }
      if (t[kind].expectedRate > t.baseline.maxRate) {
        report(
          [...path, kind, 'expectedRate'],
          `at most baseline.maxRate (${t.baseline.maxRate}) in ${where}`,
          String(t[kind].expectedRate),
        );
      }
    }
    if (t.settleSeconds * 1000 < t.slow.slowAfterMs) {
      report(
        ['settleSeconds'],
        `at least slow.slowAfterMs (${t.slow.slowAfterMs} ms in ${where})`,
        `${t.settleSeconds} s`,
      );
    }
    if (t.maxGapSeconds * 2 < t.confirmSeconds) {
      report(
        [...path, 'maxGapSeconds'],
        `at least half of confirmSeconds (${t.confirmSeconds}) in ${where}`,
        String(t.maxGapSeconds),
      );
    }
  }
  return problems;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

/**
 * The window lengths (seconds) any pair may need, shortest first: the reader counts attempts in
 * each, and the detector looks them up by length.
 */
export function windowLengths(settings: PaymentHealthSettings): number[] {
  const lengths = new Set<number>();
  for (const { thresholds: t } of combinations(settings)) {
    for (const w of t.windows) lengths.add(w.seconds);
    lengths.add(t.recentSeconds);
    lengths.add(t.backup.windowSeconds);
  }
  return [...lengths].sort((a, b) => a - b);
}

/** How far back a tick reads, the longest settle horizon and slow threshold in force. */
export function lookback(settings: PaymentHealthSettings): {
  windowMs: number;
  settleMs: number;
  slowAfterMs: number;
  latencyWindowMs: number;
  maxUsers: number;
} {
  let windowSeconds = 0;
  let latencySeconds = 0;
  let slowAfterMs = 0;
  let maxUsers = 1;
  for (const { thresholds: t } of combinations(settings)) {
    windowSeconds = Math.max(
      windowSeconds,
      ...t.windows.map((w) => w.seconds),
      t.recentSeconds,
      t.backup.windowSeconds,
    );
    latencySeconds = Math.max(latencySeconds, t.latency.maxWindowSeconds);
    slowAfterMs = Math.max(slowAfterMs, t.slow.slowAfterMs);
    maxUsers = Math.max(maxUsers, t.failures.minUsers, t.slow.minUsers);
  }
  return {
    windowMs: windowSeconds * 1000,
    settleMs: settings.settleSeconds * 1000,
    slowAfterMs,
    latencyWindowMs: latencySeconds * 1000,
    maxUsers,
  };
}

/**
 * The confidence a window's proof is held to. `confidence` is the shortest window's. A window n
 * times as long keeps the same attempts for n times as many ticks, so it has n times fewer
 * independent looks a day: it gets n times the tail, which gives every window length the same
 * chance a day of a proof by chance alone (never below 99%). That holds where counts are large
 * enough for the interval to be near exact; a window of fewer than LARGE_SAMPLE attempts, where
 * a few related failures (one user's retries, one bank's hiccup) weigh much, keeps `confidence`.
 */
export function windowConfidence(t: PaymentHealthThresholds, seconds: number, attempts: number): number {
  if (attempts < LARGE_SAMPLE) return t.confidence;
  const shortest = t.windows[0]!.seconds;
  return Math.max(0.99, 1 - (1 - t.confidence) * (seconds / shortest));
}

export const LARGE_SAMPLE = 100;
