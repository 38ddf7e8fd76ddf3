// Benchmark: the payment-health detector against the issue's detection targets. Simulated traffic
// (written pending and finished in place) is replayed through `replayPaymentHealth` with the
// shipped config at 15-second ticks; every scenario runs on several shapes, volumes and seeds and
// prints one row per run (or per channel of a region) with the measured figure beside its target,
// then a summary line. A FAIL is a finding: the process still exits 0.
//
// The healthy days are the heavy part (about 1.4 million attempts each): they run in child
// processes of this same file (`node --import tsx bench/scenarios.ts healthy-day <index>`), two
// at a time. Knobs: BENCH_SEEDS (default 1,2,3), BENCH_HEALTHY_DAYS (30), BENCH_JOBS (2), and
// BENCH_CASES (only the cases whose group or shape contains this text).
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  baselineRate,
  lookback,
  Replay,
  thresholdsFor,
  type IncidentKind,
  type PaymentHealthSettings,
  type PaymentHealthState,
  type ReplayedIncident,
} from '../detectors/payment-health/index.ts';
import { thresholdAt } from '../detectors/payment-health/thresholds.ts';
import { loadConfigFile } from '../lib/config/load.ts';
import { observed } from '../sim/observe.ts';
import { referencePlatform, trafficFactor, wideRegionPlatform, type Platform } from '../sim/platform.ts';
import { generateAttempts, type Scenario, type ScenarioEffect } from '../sim/traffic.ts';
import { figure, positiveIntFromEnv, positiveIntsFromEnv, type BenchResult } from './support.ts';

const SECOND = 1_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY_MS = 86_400_000;
const STEP_MS = 15_000;
/** 2026-03-02 00:00 in Beijing: the first day of every scenario and healthy day. */
const DAY = Date.UTC(2026, 2, 1, 16);
const beijing = (hour: number, minute = 0) => DAY + hour * HOUR + minute * MINUTE;
/** Ticks run this long before the trouble (plus one longest window of attempts before that). */
const WARMUP_MS = 2 * HOUR;
/** "A busy channel has hundreds of attempts a minute": busy pairs are held to the resolve target. */
const BUSY_PER_MINUTE = 100;
const RESOLVE_WITHIN_MS = 5 * MINUTE;

interface Expected {
  channel: string;
  kind: IncidentKind;
  /** Opens within this long of the trouble's start (for a slide: of the threshold's crossing). */
  withinMs: number | null;
}

interface Case {
  group: string;
  shape: string;
  platform: Platform;
  /** Only this region's attempts are replayed. */
  region: string;
  scenarios: Scenario[];
  rateScale: number;
  firstTick: number;
  lastTick: number;
  /** False: no attempt before the first tick (a cold start). */
  history: boolean;
  /** When the trouble starts, and when it is over. */
  start: number;
  recovery: number;
  /** The incidents that must open; none for a case that must stay quiet. */
  expected: Expected[];
  /** A whole region down: no backup may be listed. */
  noBackups?: boolean;
  /** Every expected incident must resolve as recovered by the last tick (busy pairs' within 5 min anyway). */
  mustResolve?: boolean;
  slide?: { channel: string; from: number; to: number; fromRate: number; toRate: number };
}

interface Run {
  c: Case;
  seed: number;
  incidents: ReplayedIncident[];
  /** The replay's state at the trouble's start (for a slide's learned threshold). */
  stateAtStart: PaymentHealthState;
  /** Per channel of the region: creation and finish times of its successes, for the backup check. */
  successes: Map<string, { created: number[]; finished: number[] }>;
  attempts: number;
  ms: number;
}

interface Row {
  group: string;
  shape: string;
  seed: string;
  measured: string;
  target: string;
  resolved: string;
  backups: string;
  pass: boolean;
  notes: string[];
}

export async function benchScenarios(): Promise<BenchResult> {
  const started = performance.now();
  const settings = await shippedSettings();
  const seeds = positiveIntsFromEnv('BENCH_SEEDS', [1, 2, 3]);
  const dayCount = positiveIntFromEnv('BENCH_HEALTHY_DAYS', 30);
  const jobs = positiveIntFromEnv('BENCH_JOBS', 2);
  const only = process.env.BENCH_CASES;
  const all = cases().filter((c) => !only || `${c.group} ${c.shape}`.includes(only));
  if (all.length === 0)
    throw new Error(`BENCH_CASES: no case's group or shape contains ${JSON.stringify(only)}`);
  // The healthy days start at once on one child less than `jobs` (this process replays the
  // scenarios meanwhile), and on all `jobs` once the scenarios are done.
  let scenariosDone!: () => void;
  const gate = new Promise<void>((open) => (scenariosDone = open));
  const daysRun = healthyDays(dayCount, jobs, gate);
  // Awaited once the scenarios are done; a child that fails meanwhile must not crash the process first.
  daysRun.catch(() => undefined);
  const rows: Row[] = [];
  let attempts = 0;
  let done = 0;
  for (const c of all) {
    for (const seed of seeds) {
      // Let the children's messages in between runs: each run holds the event loop for a second or two.
      await new Promise((next) => setImmediate(next));
      const run = runCase(c, seed, settings);
      attempts += run.attempts;
      const judged = judge(run, settings);
      rows.push(...judged);
      done++;
      const verdict = judged.every((r) => r.pass) ? 'PASS' : 'FAIL';
      process.stderr.write(
        `[scenarios ${done}/${all.length * seeds.length}] ${c.group}: ${c.shape}, seed ${seed}: ${verdict} (${(run.ms / 1000).toFixed(1)} s)\n`,
      );
    }
  }
  const scenarioMs = performance.now() - started;
  scenariosDone();
  const days = await daysRun;
  const dayRows = days.map(dayRow);
  const dayAttempts = days.reduce((n, d) => n + d.attempts, 0);
  const dayIncidents = days.reduce((n, d) => n + d.incidents.length, 0);
  printTable([...rows, ...dayRows]);

  const failed = rows.filter((r) => !r.pass);
  const keyOf = (r: Row) => r.group.slice(0, r.group.indexOf(':'));
  const failedGroups = [...new Set(failed.map(keyOf))].map(
    (key) =>
      `${key} ${failed.filter((r) => keyOf(r) === key).length}/${rows.filter((r) => keyOf(r) === key).length}`,
  );
  const cleanDays = days.filter((d) => d.incidents.length === 0 && d.pairs === d.expectedPairs).length;
  const summary =
    `summary: ${rows.length} scenario rows (${all.length} cases x ${seeds.length} seeds), ` +
    `${rows.length - failed.length} PASS, ${failed.length} FAIL` +
    (failedGroups.length > 0 ? ` (FAIL in: ${failedGroups.join('; ')})` : '') +
    `; healthy days: ${days.length} days x ${days[0]?.expectedPairs ?? 0} pairs, ${dayIncidents} incidents, ` +
    `${cleanDays}/${days.length} days PASS`;
  process.stdout.write(`\n${summary}\n`);

  return {
    name: 'scenarios: detection targets on simulated traffic (shipped config, 15 s ticks)',
    figures: [
      figure('scenario rows', rows.length, 'rows'),
      figure('scenario rows PASS', rows.length - failed.length, 'rows'),
      figure('scenario rows FAIL', failed.length, 'rows'),
      figure('scenario attempts replayed (their region only)', attempts, 'attempts'),
      figure('scenario runs, wall time', scenarioMs / 1000, 's'),
      figure('healthy days replayed', days.length, 'days'),
      figure('healthy-day attempts', dayAttempts, 'attempts'),
      figure('healthy-day incidents (target 0)', dayIncidents, 'incidents'),
      figure('whole benchmark, wall time', (performance.now() - started) / 1000, 's'),
      figure(
        'healthy days, wall time',
        days.length > 0 ? Math.max(...days.map((d) => d.doneAt)) / 1000 : 0,
        's',
      ),
    ],
    notes: [
      `healthy days: ${jobs} child processes at a time (${jobs - 1} while the scenarios replay), seeds ${days.map((d) => d.seed).join(',')}`,
      `busy: at least ${BUSY_PER_MINUTE} attempts a minute when the trouble starts; busy pairs must resolve within ${RESOLVE_WITHIN_MS / MINUTE} min of recovery`,
    ],
  };
}

async function shippedSettings(): Promise<PaymentHealthSettings> {
  const file = fileURLToPath(new URL('../config/forewarn.yaml', import.meta.url));
  return (await loadConfigFile(file)).detectors.paymentHealth;
}

// ---------------------------------------------------------------------------------------------
// The cases

interface TroubleOptions {
  group: string;
  note?: string;
  platform?: Platform;
  channel: string;
  region: string;
  at: number;
  durationMs: number;
  effect: ScenarioEffect;
  rateScale?: number;
  kind?: IncidentKind;
  /** null: it must open, within no set time; 'never': nothing may open. */
  withinMs: number | null | 'never';
  afterMs: number;
  /** A cold start: the replay and the attempts begin this long before the trouble. */
  coldLeadMs?: number;
  mustResolve?: boolean;
}

function trouble(o: TroubleOptions): Case {
  const platform = o.platform ?? referencePlatform();
  const rateScale = o.rateScale ?? 1;
  const cold = o.coldLeadMs !== undefined;
  const end = o.at + o.durationMs;
  return {
    group: o.group,
    shape: shapeOf(platform, o.channel, o.region, o.at, rateScale, o.note),
    platform,
    region: o.region,
    scenarios: [{ channel: o.channel, region: o.region, from: o.at, to: end, effect: o.effect }],
    rateScale,
    firstTick: cold ? o.at - o.coldLeadMs! : ticked(o.at - WARMUP_MS),
    lastTick: end + o.afterMs,
    history: !cold,
    start: o.at,
    recovery: end,
    expected:
      o.withinMs === 'never'
        ? []
        : [{ channel: o.channel, kind: o.kind ?? 'failures', withinMs: o.withinMs }],
    ...(o.mustResolve ? { mustResolve: true } : {}),
  };
}

function cases(): Case[] {
  const reference = referencePlatform();
  const wide = wideRegionPlatform();
  const list: Case[] = [];
  type Shape = readonly [channel: string, region: string, hour: number, rateScale: number];
  const busy: Shape[] = [
    ['alipay', 'CN-GD', 14, 0.5],
    ['alipay', 'CN-GD', 14, 1],
    ['alipay', 'CN-GD', 14, 2],
    ['wechat_pay', 'CN-GD', 20, 1],
    ['alipay', 'CN-ZJ', 10, 1],
  ];

  const hardGroup = 'hard-outage: a busy channel, 95% fail, 60% of them 30 s timeouts (opens within 75 s)';
  for (const [channel, region, hour, rateScale] of busy) {
    list.push(
      trouble({
        group: hardGroup,
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 10 * MINUTE,
        effect: { type: 'outage', share: 0.95, timeoutShare: 0.6 },
        withinMs: 75 * SECOND,
        afterMs: 20 * MINUTE,
      }),
    );
  }
  // Beyond the issue's shape: the gateway answers nothing, so every failure is known 30 s late.
  list.push(
    trouble({
      group: hardGroup,
      note: 'every attempt a timeout',
      channel: 'alipay',
      region: 'CN-GD',
      at: beijing(14),
      durationMs: 10 * MINUTE,
      effect: { type: 'outage', timeoutShare: 1 },
      withinMs: 75 * SECOND,
      afterMs: 20 * MINUTE,
    }),
  );

  for (const [channel, region, hour, rateScale] of busy) {
    list.push(
      trouble({
        group: 'partial-drop: 97% -> 70% success on a busy channel (opens within 3 min)',
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 15 * MINUTE,
        effect: { type: 'failureRate', rate: 0.3 },
        withinMs: 3 * MINUTE,
        afterMs: 20 * MINUTE,
      }),
    );
  }

  const slowGroup =
    'slow: confirmations take 30 s, never come, or 10x longer with nothing past 15 s (opens within 4 min)';
  const slowShapes: Array<[string, string, number, number, ScenarioEffect, string]> = [
    ['alipay', 'CN-SH', 14, 1, { type: 'slow', latencyMs: 30_000 }, 'confirm in 30 s'],
    ['alipay', 'CN-GD', 14, 0.5, { type: 'slow', latencyMs: 30_000 }, 'confirm in 30 s'],
    ['alipay', 'CN-GD', 14, 2, { type: 'slow', latencyMs: 30_000 }, 'confirm in 30 s'],
    ['unionpay', 'CN-GD', 14, 1, { type: 'slow', latencyMs: 30_000 }, 'confirm in 30 s (slow after 30 s)'],
    ['wechat_pay', 'CN-GD', 14, 1, { type: 'stuckPending', share: 0.5 }, 'half never confirmed'],
    // alipay confirms in about 1.2 s: 12 s (9-15 s) is 10x, and nothing passes the 15 s threshold.
    ['alipay', 'CN-GD', 14, 0.5, { type: 'slow', latencyMs: 12_000 }, '10x latency, 9-15 s'],
    ['alipay', 'CN-GD', 14, 1, { type: 'slow', latencyMs: 12_000 }, '10x latency, 9-15 s'],
    ['alipay', 'CN-GD', 14, 2, { type: 'slow', latencyMs: 12_000 }, '10x latency, 9-15 s'],
    ['alipay', 'CN-ZJ', 20, 1, { type: 'slow', latencyMs: 12_000 }, '10x latency, 9-15 s'],
    ['alipay', 'CN-SC', 20, 1, { type: 'slow', latencyMs: 12_000 }, '10x latency, 9-15 s'],
  ];
  for (const [channel, region, hour, rateScale, effect, note] of slowShapes) {
    list.push(
      trouble({
        group: slowGroup,
        note,
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 20 * MINUTE,
        effect,
        kind: 'slow',
        withinMs: 4 * MINUTE,
        afterMs: 20 * MINUTE,
      }),
    );
  }

  // About one attempt a minute when it fails: 1-2 at the peak, fewer by day.
  const quiet: Shape[] = [
    ['douyin_pay', 'CN-SH', 14, 1],
    ['qq_wallet', 'CN-SH', 11, 1],
    ['qq_wallet', 'CN-BJ', 20, 1],
    ['douyin_pay', 'CN-BJ', 20, 1],
    ['jd_pay', 'CN-ZJ', 17, 1],
  ];
  for (const [channel, region, hour, rateScale] of quiet) {
    list.push(
      trouble({
        group: 'quiet-by-day: a channel of about 1 attempt a minute fails completely (opens within 10 min)',
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 30 * MINUTE,
        effect: { type: 'outage' },
        withinMs: 10 * MINUTE,
        afterMs: 40 * MINUTE,
      }),
    );
  }

  const night: Array<[string, string]> = [
    ['qq_wallet', 'CN-GD'],
    ['unionpay', 'CN-ZJ'],
    ['jd_pay', 'CN-SH'],
    ['bank_card', 'CN-BJ'],
    ['unionpay', 'CN-BJ'],
  ];
  for (const [channel, region] of night) {
    list.push(
      trouble({
        group: 'night-0300: a few attempts a minute at 03:00 drop to 10% success (opens within 8 min)',
        channel,
        region,
        at: beijing(3),
        durationMs: 30 * MINUTE,
        effect: { type: 'failureRate', rate: 0.9 },
        withinMs: 8 * MINUTE,
        afterMs: 40 * MINUTE,
      }),
    );
  }

  const coldGroup =
    'cold-start: no history, the replay starts at or just before the trouble (opens within 3 min)';
  const coldShapes: Array<[string, string, number, number, ScenarioEffect, number, string]> = [
    ['alipay', 'CN-GD', 14, 1, { type: 'outage', share: 0.95, timeoutShare: 0.6 }, 0, 'hard outage'],
    ['alipay', 'CN-GD', 14, 1, { type: 'outage', share: 0.95, timeoutShare: 0.6 }, MINUTE, 'hard outage'],
    ['wechat_pay', 'CN-GD', 20, 1, { type: 'failureRate', rate: 0.3 }, 0, 'drop to 70%'],
    ['wechat_pay', 'CN-GD', 20, 1, { type: 'failureRate', rate: 0.3 }, 2 * MINUTE, 'drop to 70%'],
    ['wechat_pay', 'CN-SC', 14, 1, { type: 'outage' }, 0, 'outage, medium volume'],
  ];
  for (const [channel, region, hour, rateScale, effect, lead, note] of coldShapes) {
    list.push(
      trouble({
        group: coldGroup,
        note: `${note}, starts ${lead === 0 ? 'at it' : `${lead / MINUTE} min before`}`,
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 10 * MINUTE,
        effect,
        withinMs: 3 * MINUTE,
        afterMs: 15 * MINUTE,
        coldLeadMs: lead,
      }),
    );
  }

  for (const [platform, region, hour, note] of [
    [reference, 'CN-GD', 14, 'reference'],
    [reference, 'CN-GD', 4, 'reference'],
    [wide, 'CN-HB', 14, 'wideRegionPlatform'],
    [wide, 'CN-HB', 20, 'wideRegionPlatform'],
  ] as const) {
    list.push(regionDown(platform, region, beijing(hour), note));
  }

  const slides: Shape[] = [
    ['wechat_pay', 'CN-GD', 13, 1],
    ['wechat_pay', 'CN-SC', 13, 1],
    ['alipay', 'CN-GD', 13, 0.5],
    ['alipay', 'CN-GD', 13, 2],
    ['alipay', 'CN-SH', 19, 1],
  ];
  for (const [channel, region, hour, rateScale] of slides)
    list.push(slide(channel, region, beijing(hour), rateScale));

  const flaps: Shape[] = [
    ['alipay', 'CN-GD', 14, 0.5],
    ['alipay', 'CN-GD', 14, 1],
    ['alipay', 'CN-GD', 14, 2],
    ['wechat_pay', 'CN-GD', 20, 1],
    ['wechat_pay', 'CN-SC', 14, 1],
  ];
  for (const [channel, region, hour, rateScale] of flaps)
    list.push(flapping(channel, region, beijing(hour), rateScale));

  const blipGroup = 'blip: 30 s of trouble opens nothing';
  const blips: Array<[string, string, number, number, ScenarioEffect, string]> = [
    ['alipay', 'CN-GD', 14, 1, { type: 'outage' }, 'total failure, 35% timeouts'],
    ['alipay', 'CN-GD', 14, 2, { type: 'outage' }, 'total failure, 35% timeouts'],
    ['alipay', 'CN-GD', 14, 1, { type: 'outage', timeoutShare: 1 }, 'total failure, all timeouts'],
    ['wechat_pay', 'CN-GD', 4, 1, { type: 'outage', timeoutShare: 0.6 }, 'total failure, 60% timeouts'],
    [
      'alipay',
      'CN-ZJ',
      20,
      0.5,
      { type: 'outage', share: 0.95, timeoutShare: 0.6 },
      '95% fail, 60% timeouts',
    ],
    ['wechat_pay', 'CN-SC', 14, 1, { type: 'outage' }, 'total failure, medium volume'],
    ['unionpay', 'CN-GD', 14, 1, { type: 'outage' }, 'total failure, medium volume'],
    ['alipay', 'CN-GD', 14, 1, { type: 'stuckPending', share: 1 }, 'nothing confirmed'],
  ];
  for (const [channel, region, hour, rateScale, effect, note] of blips) {
    list.push(
      trouble({
        group: blipGroup,
        note,
        channel,
        region,
        at: beijing(hour),
        rateScale,
        durationMs: 30 * SECOND,
        effect,
        withinMs: 'never',
        afterMs: 20 * MINUTE,
      }),
    );
  }

  const recoveryGroup = 'recovery: nothing re-opens in the 100 min after the trouble';
  for (const [channel, region, hour, minutes, within] of [
    ['qq_wallet', 'CN-BJ', 20, 20, 10 * MINUTE],
    ['alipay', 'CN-GD', 14, 10, 75 * SECOND],
    ['bank_card', 'CN-GD', 14, 15, null],
  ] as const) {
    list.push(
      trouble({
        group: recoveryGroup,
        note: `${minutes} min outage, then 100 min`,
        channel,
        region,
        at: beijing(hour),
        durationMs: minutes * MINUTE,
        effect: { type: 'outage' },
        withinMs: within,
        afterMs: 100 * MINUTE,
        mustResolve: true,
      }),
    );
  }
  return list;
}

function regionDown(platform: Platform, region: string, at: number, note: string): Case {
  const channels = platform.pairs.filter((p) => p.region === region).map((p) => p.channel);
  const end = at + 30 * MINUTE;
  return {
    group:
      'region-down: all six channels of a region at once, CN-GD of the reference platform or CN-HB of wideRegionPlatform (busy ones open within 90 s, others 25 min; no backup listed)',
    shape: `${region} ${clock(at)} ${note}`,
    platform,
    region,
    scenarios: channels.map((channel) => ({
      channel,
      region,
      from: at,
      to: end,
      effect: { type: 'outage' },
    })),
    rateScale: 1,
    firstTick: ticked(at - WARMUP_MS),
    lastTick: end + 40 * MINUTE,
    history: true,
    start: at,
    recovery: end,
    expected: channels.map((channel) => ({
      channel,
      kind: 'failures',
      withinMs: perMinute(platform, channel, region, at, 1) >= BUSY_PER_MINUTE ? 90 * SECOND : 25 * MINUTE,
    })),
    noBackups: true,
  };
}

function slide(channel: string, region: string, at: number, rateScale: number): Case {
  const platform = referencePlatform();
  const end = at + HOUR;
  const effect = { type: 'slide', fromRate: 0.03, toRate: 0.45 } as const;
  return {
    group: 'slide: 97% -> 55% success over an hour (opens within 10 min of crossing the learned threshold)',
    shape: shapeOf(platform, channel, region, at, rateScale),
    platform,
    region,
    scenarios: [{ channel, region, from: at, to: end, effect }],
    rateScale,
    firstTick: ticked(at - WARMUP_MS),
    lastTick: end + 20 * MINUTE,
    history: true,
    start: at,
    recovery: end,
    expected: [{ channel, kind: 'failures', withinMs: 10 * MINUTE }],
    slide: { channel, from: at, to: end, fromRate: effect.fromRate, toRate: effect.toRate },
  };
}

function flapping(channel: string, region: string, at: number, rateScale: number): Case {
  const platform = referencePlatform();
  const scenarios: Scenario[] = Array.from({ length: 10 }, (_, i) => ({
    channel,
    region,
    from: at + i * 4 * MINUTE,
    to: at + i * 4 * MINUTE + 2 * MINUTE,
    effect: { type: 'outage' },
  }));
  const lastDown = scenarios.at(-1)!.to;
  return {
    group: 'flapping: 2 min down, 2 up, for 40 min (opens within 5 min, exactly one incident)',
    shape: shapeOf(platform, channel, region, at, rateScale),
    platform,
    region,
    scenarios,
    rateScale,
    firstTick: ticked(at - WARMUP_MS),
    lastTick: at + 40 * MINUTE + 20 * MINUTE,
    history: true,
    start: at,
    recovery: lastDown,
    expected: [{ channel, kind: 'failures', withinMs: 5 * MINUTE }],
  };
}

// ---------------------------------------------------------------------------------------------
// Running and judging

function runCase(c: Case, seed: number, settings: PaymentHealthSettings): Run {
  const started = performance.now();
  const { windowMs, settleMs } = lookback(settings);
  const common = { channels: c.platform.channels, settings, firstTick: c.firstTick, stepMs: STEP_MS };
  const replay = new Replay({ ...common, lastTick: c.lastTick });
  // A second replay of the same attempts that stops at the trouble's start: the state it had then.
  const probe = new Replay({ ...common, lastTick: Math.max(c.firstTick, ticked(c.start)) });
  const successes = new Map<string, { created: number[]; finished: number[] }>();
  let attempts = 0;
  for (const a of generateAttempts({
    platform: c.platform,
    from: c.history ? c.firstTick - windowMs - settleMs : c.firstTick,
    to: c.lastTick,
    seed,
    scenarios: c.scenarios,
    rateScale: c.rateScale,
  })) {
    if (a.region !== c.region) continue;
    attempts++;
    if (a.status === 'succeeded' && a.finishedAt !== null) {
      let list = successes.get(a.channelId);
      if (!list) successes.set(a.channelId, (list = { created: [], finished: [] }));
      list.created.push(a.createdAt);
      list.finished.push(a.finishedAt);
    }
    const o = observed(a);
    replay.add(o);
    if (a.createdAt <= c.start) probe.add(o);
  }
  const result = replay.finish();
  const stateAtStart = probe.finish().state;
  return {
    c,
    seed,
    incidents: result.incidents,
    stateAtStart,
    successes,
    attempts,
    ms: performance.now() - started,
  };
}

function judge(run: Run, settings: PaymentHealthSettings): Row[] {
  const { c, incidents } = run;
  const base = { group: c.group, shape: c.shape, seed: String(run.seed) };
  const isExpected = (i: ReplayedIncident) =>
    i.subject.region === c.region &&
    c.expected.some((e) => e.channel === i.subject.channel && e.kind === i.kind);
  const unexpected = incidents.filter((i) => !isExpected(i)).map((i) => describeIncident(i, c.start));

  if (c.expected.length === 0) {
    return [
      {
        ...base,
        measured: `${incidents.length} incidents`,
        target: '0 incidents',
        resolved: '-',
        backups: '-',
        pass: incidents.length === 0,
        notes: unexpected.map((u) => `opened: ${u}`),
      },
    ];
  }

  return c.expected.map((e) => {
    const notes: string[] = [];
    const problems: string[] = [];
    const mine = incidents.filter(
      (i) => i.subject.channel === e.channel && i.subject.region === c.region && i.kind === e.kind,
    );
    const first = mine[0];
    for (const other of incidents)
      if (!mine.includes(other) && other.subject.channel === e.channel)
        notes.push(`also opened: ${describeIncident(other, c.start)}`);
    let ref = c.start;
    let refLabel = '';
    if (c.slide) {
      const crossing = slideCrossing(run, settings);
      ref = crossing.at;
      refLabel = ' after crossing';
      notes.push(
        `replay state at the slide's start: learned baseline ${crossing.baseline.toFixed(4)}, threshold ${crossing.threshold.toFixed(4)}; the ramp crosses it ${duration(crossing.at - c.start)} into the slide`,
      );
    }
    const target = e.withinMs === null ? 'opens, 1 incident' : `<= ${duration(e.withinMs)}${refLabel}`;
    const busy = perMinute(c.platform, e.channel, c.region, c.start, c.rateScale) >= BUSY_PER_MINUTE;
    const row: Row = {
      ...base,
      shape:
        c.expected.length > 1
          ? `${c.shape}: ${e.channel} (${volumeText(perMinute(c.platform, e.channel, c.region, c.start, c.rateScale))}/min)`
          : c.shape,
      measured: 'not opened',
      target,
      resolved: '-',
      backups: '-',
      pass: false,
      notes,
    };
    if (!first) {
      problems.push('did not open');
    } else {
      const delay = first.openedAt - ref;
      row.measured = `opened ${signed(delay)}${refLabel}`;
      if (e.withinMs !== null && delay > e.withinMs) problems.push(`${duration(delay - e.withinMs)} late`);
      if (first.openedAt <= c.start) problems.push('opened before the trouble started');
      if (mine.length > 1) {
        problems.push(`re-opened: ${mine.length} incidents`);
        for (const again of mine.slice(1)) notes.push(`re-opened: ${describeIncident(again, c.start)}`);
      }
      const judgeResolve = busy || c.mustResolve === true;
      if (first.resolvedAt === null) {
        row.resolved = 'open at end';
        if (judgeResolve) problems.push(`not resolved ${duration(c.lastTick - c.recovery)} after recovery`);
      } else {
        const after = first.resolvedAt - c.recovery;
        row.resolved = `${signed(after)} ${first.resolveReason}`;
        if (busy && after > RESOLVE_WITHIN_MS) problems.push(`resolved ${duration(after)} after recovery`);
        if (judgeResolve && first.resolveReason !== 'recovered')
          problems.push(`resolved as ${first.resolveReason}`);
        if (after < 0) problems.push('resolved before the trouble was over');
      }
      if (!busy) row.resolved += c.mustResolve ? ' (must resolve)' : ' (info)';
      row.backups = first.backupChannels.length > 0 ? first.backupChannels.join(',') : 'none';
      problems.push(...backupProblems(run, first, settings));
      if (c.noBackups && first.backupChannels.length > 0)
        problems.push('backups listed while the region is down');
      if (problems.length > 0) notes.unshift(`evidence at open: ${describeEvidence(first)}`);
    }
    for (const u of unexpected) problems.push(`unexpected incident: ${u}`);
    row.pass = problems.length === 0;
    row.notes = [...problems, ...notes];
    return row;
  });
}

/** When the slide's share crosses the threshold the replay had learned just before it began. */
function slideCrossing(
  run: Run,
  settings: PaymentHealthSettings,
): { at: number; baseline: number; threshold: number } {
  const s = run.c.slide!;
  const t = thresholdsFor(settings, s.channel, run.c.region);
  const pair = run.stateAtStart.pairs[`${s.channel}:${run.c.region}`];
  const baseline = pair ? baselineRate(pair.baseline, t, 'failures') : t.failures.expectedRate;
  const threshold = Math.min(1, thresholdAt(baseline, t.failures));
  const progress = Math.min(1, Math.max(0, (threshold - s.fromRate) / (s.toRate - s.fromRate)));
  return { at: s.from + progress * (s.to - s.from), baseline, threshold };
}

/**
 * Backups that should not be listed at the incident's open: not offered or disabled, degraded
 * then (a scripted effect on it in the last backup window, or its own incident open), or unproven
 * (fewer successes known by then, among attempts of the last backup window, than required).
 */
function backupProblems(run: Run, incident: ReplayedIncident, settings: PaymentHealthSettings): string[] {
  const { c } = run;
  const at = incident.openedAt;
  const problems: string[] = [];
  for (const backup of incident.backupChannels) {
    const channel = c.platform.channels.find((ch) => ch.id === backup);
    if (
      !channel ||
      !channel.enabled ||
      !(channel.regions.includes('*') || channel.regions.includes(c.region))
    ) {
      problems.push(`backup ${backup}: not an enabled channel offered in ${c.region}`);
      continue;
    }
    const t = thresholdsFor(settings, backup, c.region);
    const windowMs = t.backup.windowSeconds * SECOND;
    const scripted = c.scenarios.some(
      (s) =>
        s.channel === backup &&
        (s.region === c.region || s.region === '*') &&
        s.from < at &&
        s.to > at - windowMs,
    );
    const open = run.incidents.some(
      (i) =>
        i.subject.channel === backup &&
        i.subject.region === c.region &&
        i.openedAt <= at &&
        (i.resolvedAt === null || i.resolvedAt > at),
    );
    if (scripted || open) problems.push(`backup ${backup}: degraded at the warning`);
    const list = run.successes.get(backup);
    let known = 0;
    if (list) {
      for (let i = 0; i < list.created.length; i++) {
        if (list.created[i]! >= at - windowMs && list.created[i]! < at && list.finished[i]! <= at) known++;
      }
    }
    if (known < t.backup.minSuccesses) {
      problems.push(
        `backup ${backup}: unproven (${known} successes in the last ${t.backup.windowSeconds} s)`,
      );
    }
  }
  return problems;
}

/** An incident with its times relative to `start`. */
function describeIncident(i: ReplayedIncident, start: number): string {
  const resolved = i.resolvedAt === null ? 'still open' : `resolved ${signed(i.resolvedAt - start)}`;
  return `${i.subject.channel}:${i.subject.region}:${i.kind} at ${signed(i.openedAt - start)}, ${resolved} (${describeEvidence(i)})`;
}

function describeEvidence(i: ReplayedIncident): string {
  const e = i.evidence;
  const latency =
    e.medianLatencyMs !== null ? `, median ${e.medianLatencyMs} ms vs learned ${e.baselineLatencyMs} ms` : '';
  const codes = e.topErrorCodes.map((c) => `${c.code} x${c.count}`).join(', ');
  return `${e.windowSeconds} s window, ${e.bad}/${e.attempts} bad (${pct(e.rate)}), lower bound ${e.lowerBound} > threshold ${e.threshold}, baseline ${e.baseline}, ${e.users} users${latency}${codes ? `; codes ${codes}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Healthy days, in child processes

interface DayResult {
  index: number;
  seed: number;
  day: number;
  attempts: number;
  ticks: number;
  pairs: number;
  expectedPairs: number;
  incidents: string[];
  ms: number;
  /** Milliseconds after the healthy days began when this one finished (set by the parent). */
  doneAt: number;
}

/** Runs `count` days in child processes, `jobs` at a time, the last of them only once `gate` opens. */
async function healthyDays(count: number, jobs: number, gate: Promise<void>): Promise<DayResult[]> {
  const script = fileURLToPath(import.meta.url);
  const started = performance.now();
  const results: DayResult[] = [];
  let next = 0;
  const worker = async (slot: number) => {
    if (slot === jobs - 1 && jobs > 1) await gate;
    for (;;) {
      const index = next++;
      if (index >= count) return;
      process.stderr.write(`[healthy day ${index + 1}/${count}] started (seed ${daySeed(index)})\n`);
      const result = await dayInChild(script, index);
      result.doneAt = performance.now() - started;
      results[index] = result;
      process.stderr.write(
        `[healthy day ${index + 1}/${count}] ${result.attempts.toLocaleString('en-US')} attempts, ${result.incidents.length} incidents (${(result.ms / 1000).toFixed(1)} s)\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, count) }, (_, slot) => worker(slot)));
  return results;
}

function dayInChild(script: string, index: number): Promise<DayResult> {
  return new Promise((done, fail) => {
    // The child's stdout goes to our stderr: stdout is the table's.
    const child = fork(script, ['healthy-day', String(index)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    let result: DayResult | undefined;
    child.on('message', (message) => (result = message as DayResult));
    child.on('error', fail);
    child.on('exit', (code, signal) => {
      if (result) done(result);
      else fail(new Error(`healthy day ${index}: child exited with ${signal ?? code} and no result`));
    });
  });
}

const daySeed = (index: number) => 1_000 + index;

/** One healthy day of the reference platform, all pairs, with its own seed and date. */
async function healthyDay(index: number): Promise<DayResult> {
  const started = performance.now();
  const settings = await shippedSettings();
  const platform = referencePlatform();
  const seed = daySeed(index);
  const from = DAY + index * DAY_MS;
  const to = from + DAY_MS;
  const { windowMs, settleMs } = lookback(settings);
  const replay = new Replay({
    channels: platform.channels,
    settings,
    firstTick: from,
    lastTick: to,
    stepMs: STEP_MS,
  });
  let attempts = 0;
  for (const a of generateAttempts({ platform, from: from - windowMs - settleMs, to, seed })) {
    attempts++;
    replay.add(observed(a));
  }
  const result = replay.finish();
  return {
    index,
    seed,
    day: from,
    attempts,
    ticks: result.ticks,
    pairs: Object.keys(result.state.pairs).length,
    expectedPairs: platform.pairs.length,
    incidents: result.incidents.map((i) => describeIncident(i, from)),
    ms: performance.now() - started,
    doneAt: 0,
  };
}

function dayRow(d: DayResult): Row {
  const date = new Date(d.day + 8 * HOUR).toISOString().slice(0, 10);
  const pairsOk = d.pairs === d.expectedPairs;
  return {
    group: 'healthy-days: no false incident (one seed and date per day, all pairs of the reference platform)',
    shape: `${date} 00:00-24:00, ${d.attempts.toLocaleString('en-US')} attempts`,
    seed: String(d.seed),
    measured: `${d.incidents.length} incidents, ${d.pairs} pairs`,
    target: `0 incidents, ${d.expectedPairs} pairs`,
    resolved: '-',
    backups: '-',
    pass: d.incidents.length === 0 && pairsOk,
    notes: d.incidents.map((i) => `opened: ${i}`),
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function printTable(rows: Row[]): void {
  const columns = ['shape', 'seed', 'measured', 'target', 'resolved', 'backups'] as const;
  const headers: Record<(typeof columns)[number], string> = {
    shape: 'shape',
    seed: 'seed',
    measured: 'measured',
    target: 'target',
    resolved: 'resolved after recovery',
    backups: 'backups',
  };
  const width = Object.fromEntries(
    columns.map((k) => [k, Math.max(headers[k].length, ...rows.map((r) => r[k].length))]),
  ) as Record<(typeof columns)[number], number>;
  const line = (cells: Record<(typeof columns)[number], string>, verdict: string) =>
    `  ${columns.map((k) => cells[k].padEnd(width[k])).join('  ')}  ${verdict}\n`;
  let group = '';
  process.stdout.write(
    '\nscenarios: measured against target, shipped config, 15 s ticks. Every row also checks: no re-open ' +
      'of the pair, no other incident in the run, backups enabled, offered, not degraded and proven ' +
      `when the warning opens, and busy pairs (${BUSY_PER_MINUTE}+/min) resolved within ` +
      `${RESOLVE_WITHIN_MS / MINUTE} min of recovery.\n`,
  );
  for (const row of rows) {
    if (row.group !== group) {
      group = row.group;
      process.stdout.write(`\n${group}\n${line(headers, 'result')}`);
    }
    process.stdout.write(line(row, row.pass ? 'PASS' : 'FAIL'));
    for (const note of row.notes) process.stdout.write(`      - ${note}\n`);
  }
}

function shapeOf(
  platform: Platform,
  channel: string,
  region: string,
  at: number,
  rateScale: number,
  note?: string,
): string {
  const volume = perMinute(platform, channel, region, at, rateScale);
  const scale = rateScale === 1 ? '' : ` x${rateScale}`;
  return `${channel}:${region} ${clock(at)}${scale} (${volumeText(volume)}/min)${note ? `, ${note}` : ''}`;
}

function volumeText(perMinute: number): string {
  return perMinute < 10 ? perMinute.toFixed(1) : String(Math.round(perMinute));
}

/** Mean attempts a minute of the pair at `at`. */
function perMinute(
  platform: Platform,
  channel: string,
  region: string,
  at: number,
  rateScale: number,
): number {
  const pair = platform.pairs.find((p) => p.channel === channel && p.region === region);
  return pair ? pair.peakPerMinute * rateScale * trafficFactor(platform.dailyCycle, at) : 0;
}

function ticked(ms: number): number {
  return Math.ceil(ms / STEP_MS) * STEP_MS;
}

function clock(ms: number): string {
  return new Date(ms + 8 * HOUR).toISOString().slice(11, 16);
}

function duration(ms: number): string {
  const total = Math.round(Math.abs(ms) / SECOND);
  const m = Math.floor(total / 60);
  const s = total % 60;
  const text = m === 0 ? `${s}s` : `${m}m${String(s).padStart(2, '0')}s`;
  return ms < 0 ? `-${text}` : text;
}

function signed(ms: number): string {
  return ms < 0 ? duration(ms) : `+${duration(ms)}`;
}

function pct(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

// Run as a child for one healthy day: the result goes back over IPC.
if (process.argv[2] === 'healthy-day' && resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  const index = Number(process.argv[3]);
  if (!Number.isInteger(index) || index < 0) {
    process.stderr.write(
      `scenarios: healthy-day: expected a day index (0, 1, ...), got ${process.argv[3]}\n`,
    );
    process.exit(2);
  }
  const result = await healthyDay(index);
  process.send!(result, () => process.disconnect());
}
