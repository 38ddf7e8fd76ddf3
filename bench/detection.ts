// Benchmark: the payment-health detector at platform scale. Live ticks (runPaymentHealthTick) at
// 30, 500 and 5,000 channel × region pairs with an hour and more of history, rows written as the
// platform writes them; the same pair count with a longer history, to show that a tick's memory
// and time do not grow with it; and a 30-day backtest of the reference platform, streamed, next
// to reading the same rows raw with `psql \copy`.
//
// Ticks and the backtest run in a child process of their own (this file, run with `child`): its
// peak RSS is then theirs, not the loader's (a process's RSS never shrinks). The parent loads the
// history with COPY and plays the platform between ticks (inserts pending, updates in place).
//
// Sizes (validated; defaults are the full run, 30-60 minutes): BENCH_DETECTION_PAIRS (30,500,5000),
// BENCH_DETECTION_TICKS (6 ticks after the first), BENCH_DETECTION_LONG_HISTORY_HOURS (3, for the
// largest pair count), BENCH_BACKTEST_DAYS (30), BENCH_DETECTION_SECTIONS (ticks,backtest). A quick
// run: BENCH_DETECTION_PAIRS=30,500 BENCH_DETECTION_TICKS=3 BENCH_DETECTION_LONG_HISTORY_HOURS=2
// BENCH_BACKTEST_DAYS=1. BENCH_EXPLAIN=<folder> writes EXPLAIN ANALYZE of the first and last
// tick's scans and every tick's figures there; BENCH_CPU_PROFILE=<folder> profiles the backtest and
// each tick (which slows the ticks).
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  BUCKET_MS,
  DETECTOR,
  lookback,
  settledFromFor,
  type PaymentHealthSettings,
} from '../detectors/payment-health/index.ts';
import { backtestPaymentHealth } from '../lib/backtest/payment-health.ts';
import { loadConfigFile } from '../lib/config/load.ts';
import type { Config } from '../lib/config/schema.ts';
import { migrate } from '../lib/db/migrate.ts';
import { runPaymentHealthTick, type DetectionContext } from '../lib/detection/payment-health-tick.ts';
import { createLogger } from '../lib/logger.ts';
import { InvalidRowReporter } from '../lib/platform/invalid-rows.ts';
import {
  readPairSignals,
  readPairSignalsIncremental,
  signalQueryFor,
  type WindowCache,
} from '../lib/platform/payment-attempts.ts';
import { startLiveWriter } from '../sim/live.ts';
import { copyAttempts, seedPlatform } from '../sim/load.ts';
import { expectedAttempts, referencePlatform } from '../sim/platform.ts';
import { createPlatformSchema } from '../sim/schema.ts';
import { generateAttempts, type Scenario, type SimAttempt } from '../sim/traffic.ts';
import { benchPlatform, peakPerMinute } from './detection-platform.ts';
import {
  benchDatabase,
  figure,
  positiveIntFromEnv,
  positiveIntsFromEnv,
  profileCpu,
  timed,
  watchMemory,
  type BenchResult,
  type Figure,
} from './support.ts';

const SCHEMA = 'platform';
const CONFIG_FILE = fileURLToPath(new URL('../config/forewarn.yaml', import.meta.url));
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TICK_STEP = 15 * SECOND;
// 2026-03-02 20:00 in Beijing; any past time would do (a tick must not be ahead of the DB clock).
const FIRST_TICK = Date.UTC(2026, 2, 2, 12, 0);
// Attempts created this long before the first tick are written live (pending, then updated in
// place); older ones are settled history, loaded final with COPY (every attempt finishes or times
// out within a minute, so they were final by the first tick).
const LIVE_LEAD = 2 * MINUTE;
const LIVE_FIRST_ID = 10_000_000_000;
// A history of H hours holds H hours plus the first tick's settled slice (its settle horizon before
// the longest window) and a margin, so that every window of every tick is full.
const HISTORY_MARGIN = 10 * MINUTE;
const BACKTEST_START = Date.UTC(2026, 1, 1, 16, 0); // 2026-02-02 00:00 in Beijing
const TARGET_TICK_SECONDS = 3;
const TARGET_TICK_PAIRS = 5_000;

export async function benchDetection(): Promise<BenchResult> {
  const sections = sectionsFromEnv();
  const pairCounts = positiveIntsFromEnv('BENCH_DETECTION_PAIRS', [30, 500, 5_000]);
  const ticks = positiveIntFromEnv('BENCH_DETECTION_TICKS', 6);
  const longHours = positiveIntFromEnv('BENCH_DETECTION_LONG_HISTORY_HOURS', 3);
  if (longHours < 2) {
    throw new Error(
      `BENCH_DETECTION_LONG_HISTORY_HOURS: expected at least 2 (hours of history to compare with 1), got ${longHours}`,
    );
  }
  const days = positiveIntFromEnv('BENCH_BACKTEST_DAYS', 30);
  const explainDir = process.env.BENCH_EXPLAIN || undefined;
  const config = await loadConfigFile(CONFIG_FILE);

  const figures: Figure[] = [];
  const notes: string[] = [];
  const server = await serverSettings();
  notes.push(`PostgreSQL ${server}`);
  if (sections.has('ticks')) {
    const runs: TickRun[] = [];
    for (const pairs of pairCounts)
      runs.push(await benchTicks({ pairs, historyHours: 1, ticks, explainDir }));
    const comparePairs = Math.max(...pairCounts);
    const long = await benchTicks({ pairs: comparePairs, historyHours: longHours, ticks, explainDir });
    for (const run of runs) figures.push(...tickFigures(run));
    const short = runs.find((r) => r.pairs === comparePairs)!;
    figures.push(...historyFigures(short, long));
    notes.push(...tickNotes(runs, short, long));
  }
  if (sections.has('backtest')) {
    const backtest = await benchBacktest(config, days);
    figures.push(...backtest.figures);
    notes.push(...backtest.notes);
  }
  return { name: 'detection: live ticks and a backtest at platform scale', figures, notes };
}

function sectionsFromEnv(): Set<'ticks' | 'backtest'> {
  const all = ['ticks', 'backtest'] as const;
  const text = process.env.BENCH_DETECTION_SECTIONS;
  if (text === undefined || text === '') return new Set(all);
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => !(all as readonly string[]).includes(p))) {
    throw new Error(
      `BENCH_DETECTION_SECTIONS: expected some of ${all.join(', ')} separated by commas, got ${JSON.stringify(text)}`,
    );
  }
  return new Set(parts as Array<(typeof all)[number]>);
}

async function serverSettings(): Promise<string> {
  const db = new pg.Client({
    connectionString: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  });
  await db.connect();
  try {
    const { rows } = await db.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings
        WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'autovacuum')`,
    );
    const get = (name: string) => rows.find((r) => r.name === name);
    const buffers = get('shared_buffers')!;
    return `${get('server_version')?.setting}: shared_buffers ${(Number(buffers.setting) * 8) / 1024} MiB, work_mem ${get('work_mem')?.setting} kB, ${get('max_parallel_workers_per_gather')?.setting} parallel workers per gather, autovacuum ${get('autovacuum')?.setting} (the bench runs VACUUM ANALYZE after loading)`;
  } finally {
    await db.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Live ticks

interface TickRun {
  pairs: number;
  historyHours: number;
  perMinute: number;
  historyRows: number;
  copySeconds: number;
  /** Building the indexes again after COPY, and VACUUM ANALYZE. */
  indexAndVacuumSeconds: number;
  liveRows: { inserted: number; finished: number };
  /** The machine's 1-minute load average as the ticks began. */
  loadAverage: number;
  first: TickFigures;
  rest: TickFigures[];
}

/** What the child measured of one tick. */
interface TickFigures {
  tickAt: number;
  tickMs: number;
  outcome: string;
  changes: number;
  /** Wall time with at least one SQL statement of the tick in flight (they overlap). */
  sqlWallMs: number;
  /** Summed statement time by kind of statement, as the tick's own client saw it. */
  sqlMs: Record<string, number>;
  /** readPairSignalsIncremental again, right after the tick, with the tick's arguments. */
  signalsMs: number;
  /** How it read: 'full' without a usable window cache (first tick), else 'incremental'. */
  readMode: string;
  /** readPairSignals (every row of the longest window), with the same query: on request only. */
  fullSignalsMs: number | null;
  signalPairs: number;
  /** Rows of payment_attempts its scans read (pg_stat_user_tables: seq_tup_read + idx_tup_fetch). */
  rowsRead: number;
  /** Rows of payment_attempts created in the longest window: what reading it in full means. */
  rowsInWindow: number;
  rssBeforeMb: number;
  peakRssMb: number;
  peakLiveHeapMb: number;
  stateBytes: number;
  stateStoredBytes: number;
  /** forewarn.detector_state.window_cache, as JSON and as stored. */
  cacheBytes: number;
  cacheStoredBytes: number;
}

async function benchTicks(options: {
  pairs: number;
  historyHours: number;
  ticks: number;
  explainDir: string | undefined;
}): Promise<TickRun> {
  const { pairs, historyHours, ticks } = options;
  const platform = benchPlatform(pairs);
  const label = `${pairs} pairs, ${historyHours} h`;
  const historyFrom = FIRST_TICK - historyHours * HOUR - HISTORY_MARGIN;
  const liveFrom = FIRST_TICK - LIVE_LEAD;
  const lastTick = FIRST_TICK + ticks * TICK_STEP;
  const db = await benchDatabase(`forewarn_bench_detection_${process.pid}`);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  let child: Child | undefined;
  try {
    await migrate(db.url, createLogger({ level: 'silent' }));
    const client = await pool.connect();
    let load: Awaited<ReturnType<typeof bulkLoad>>;
    let vacuum: { ms: number };
    try {
      await createPlatformSchema(client, SCHEMA, { reset: true });
      await seedPlatform(client, SCHEMA, platform, []);
      progress(`${label}: loading history`);
      load = await bulkLoad(
        client,
        generateAttempts({ platform, from: historyFrom, to: liveFrom, seed: 2026 }),
      );
      vacuum = await timed(() => vacuumAnalyze(client));
    } finally {
      client.release();
    }

    // The platform from here on: attempts inserted pending as they start, updated when they end.
    let clock = liveFrom;
    const writer = startLiveWriter({
      db: pool,
      schema: SCHEMA,
      attempts: generateAttempts({
        platform,
        from: liveFrom,
        to: lastTick + 1,
        seed: 2027,
        firstId: LIVE_FIRST_ID,
      }),
      logger: createLogger({ level: 'warn' }),
      now: () => clock,
      flushEveryMs: null,
    });
    const advanceTo = async (t: number) => {
      while (clock < t) {
        clock = Math.min(t, clock + SECOND);
        await writer.flush();
      }
      if (writer.counts().errors > 0) throw new Error(`${label}: the live writer failed; see its log lines`);
    };

    child = startChild();
    const loadAverage = loadavg()[0]!;
    const results: TickFigures[] = [];
    for (let i = 0; i <= ticks; i++) {
      const tickAt = FIRST_TICK + i * TICK_STEP;
      await advanceTo(tickAt);
      progress(`${label}: tick ${i + 1} of ${ticks + 1}`);
      const tick = await child.call<TickFigures>({ type: 'tick', url: db.url, tickAt, full: i === ticks });
      if (tick.outcome !== 'evaluated') throw new Error(`${label}: tick ${i + 1} was ${tick.outcome}`);
      results.push(tick);
    }
    if (options.explainDir) {
      // Every tick's own figures too, for a closer look than medians give.
      await mkdir(options.explainDir, { recursive: true });
      await writeFile(
        join(options.explainDir, `detection-${pairs}pairs-${historyHours}h-ticks.json`),
        `${JSON.stringify(results, null, 2)}\n`,
      );
      await child.call({
        type: 'explain',
        url: db.url,
        folder: options.explainDir,
        label: `${pairs}pairs-${historyHours}h`,
      });
    }
    const live = await writer.stop();
    await child.close();
    child = undefined;
    return {
      pairs,
      historyHours,
      perMinute: peakPerMinute(platform),
      historyRows: load.rows,
      copySeconds: load.copyMs / 1000,
      indexAndVacuumSeconds: (load.indexMs + vacuum.ms) / 1000,
      liveRows: { inserted: live.inserted, finished: live.finished },
      loadAverage,
      first: results[0]!,
      rest: results.slice(1),
    };
  } finally {
    child?.kill();
    await pool.end();
    await db.drop();
  }
}

function tickFigures(run: TickRun): Figure[] {
  const p = `${run.pairs.toLocaleString('en-US')} pairs`;
  const { first, rest } = run;
  const med = (pick: (t: TickFigures) => number) => median(rest.map(pick));
  const max = (pick: (t: TickFigures) => number) => Math.max(...rest.map(pick));
  const sql = (t: TickFigures, ...labels: string[]) => labels.reduce((sum, l) => sum + (t.sqlMs[l] ?? 0), 0);
  const others = (t: TickFigures) =>
    Object.entries(t.sqlMs)
      .filter(([l]) => !SCAN_LABELS.includes(l))
      .reduce((sum, [, ms]) => sum + ms, 0);
  const s = (ms: number) => ms / 1000;
  const n = rest.length;
  return [
    figure(`${p}: offered load`, Math.round(run.perMinute), 'attempts/min'),
    figure(
      `${p}: history loaded (${run.historyHours} h + ${HISTORY_MARGIN / MINUTE} min)`,
      run.historyRows,
      'rows',
    ),
    figure(`${p}: history load: COPY`, run.copySeconds, 's'),
    figure(`${p}: history load: indexes built again, VACUUM ANALYZE`, run.indexAndVacuumSeconds, 's'),
    figure(`${p}: written live (inserted pending / updated)`, run.liveRows.inserted, 'rows'),
    figure(`${p}: first tick (no state, fresh process)`, s(first.tickMs), 's'),
    figure(`${p}: first tick: signals read again directly (${first.readMode} read)`, s(first.signalsMs), 's'),
    figure(`${p}: first tick: rows its scans read`, first.rowsRead, 'rows'),
    figure(`${p}: first tick: peak RSS`, first.peakRssMb, 'MiB'),
    figure(`${p}: first tick: peak live heap`, first.peakLiveHeapMb, 'MiB'),
    figure(`${p}: tick, median of ${n} (15 s apart)`, s(med((t) => t.tickMs)), 's'),
    figure(`${p}: tick, slowest of ${n}`, s(max((t) => t.tickMs)), 's'),
    figure(
      `${p}: tick: signals read again directly (${rest.every((t) => t.readMode === 'incremental') ? 'incremental' : 'NOT ALL incremental'} read, median)`,
      s(med((t) => t.signalsMs)),
      's',
    ),
    ...SIGNAL_LABELS.map((label) =>
      figure(`${p}: tick: ${label} (in the tick, summed, median)`, s(med((t) => sql(t, label))), 's'),
    ),
    figure(`${p}: tick: invalid-rows query (in the tick, median)`, s(med((t) => sql(t, INVALID_ROWS))), 's'),
    figure(`${p}: tick: other SQL: clock, channels, state, cache, run (median)`, s(med(others)), 's'),
    figure(`${p}: tick: wall time in SQL (overlapping statements once)`, s(med((t) => t.sqlWallMs)), 's'),
    figure(
      `${p}: tick: outside SQL (detector, assembly; median)`,
      s(med((t) => t.tickMs - t.sqlWallMs)),
      's',
    ),
    figure(`${p}: tick: rows its scans read (median)`, Math.round(med((t) => t.rowsRead)), 'rows'),
    figure(`${p}: tick: rows in the longest window (1 h)`, Math.round(med((t) => t.rowsInWindow)), 'rows'),
    figure(
      `${p}: full read for reference (readPairSignals, last tick's query)`,
      s(rest.at(-1)!.fullSignalsMs ?? NaN),
      's',
    ),
    figure(`${p}: tick: pairs with signals`, Math.round(med((t) => t.signalPairs)), 'pairs'),
    figure(
      `${p}: tick: peak RSS (highest of ${n}; RSS before: ${med((t) => t.rssBeforeMb).toFixed(0)} MiB)`,
      max((t) => t.peakRssMb),
      'MiB',
    ),
    figure(
      `${p}: tick: peak live heap (highest of ${n})`,
      max((t) => t.peakLiveHeapMb),
      'MiB',
    ),
    figure(
      `${p}: state (its detector_state and subject_state rows) as JSON`,
      rest.at(-1)!.stateBytes / 1024,
      'KiB',
    ),
    figure(`${p}: state, stored (TOAST-compressed)`, rest.at(-1)!.stateStoredBytes / 1024, 'KiB'),
    figure(`${p}: window cache (detector_state.window_cache) as JSON`, rest.at(-1)!.cacheBytes / 1024, 'KiB'),
    figure(`${p}: window cache, stored (TOAST-compressed)`, rest.at(-1)!.cacheStoredBytes / 1024, 'KiB'),
  ];
}

function historyFigures(short: TickRun, long: TickRun): Figure[] {
  const p = `${short.pairs.toLocaleString('en-US')} pairs`;
  const figures: Figure[] = [];
  for (const run of [short, long]) {
    const h = `${p}, ${run.historyHours} h of history`;
    figures.push(
      figure(`${h}: rows in the table`, run.historyRows + run.liveRows.inserted, 'rows'),
      figure(`${h}: tick, median`, median(run.rest.map((t) => t.tickMs)) / 1000, 's'),
      figure(`${h}: tick, rows its scans read`, Math.round(median(run.rest.map((t) => t.rowsRead))), 'rows'),
      figure(`${h}: tick, peak RSS`, Math.max(...run.rest.map((t) => t.peakRssMb)), 'MiB'),
      figure(`${h}: tick, peak live heap`, Math.max(...run.rest.map((t) => t.peakLiveHeapMb)), 'MiB'),
      figure(`${h}: first tick, peak RSS`, run.first.peakRssMb, 'MiB'),
    );
  }
  return figures;
}

function tickNotes(runs: TickRun[], short: TickRun, long: TickRun): string[] {
  const notes: string[] = [];
  const target = runs.find((r) => r.pairs === TARGET_TICK_PAIRS);
  if (target) {
    const seconds = median(target.rest.map((t) => t.tickMs)) / 1000;
    notes.push(
      `target: a tick at ${TARGET_TICK_PAIRS.toLocaleString('en-US')} pairs in under ${TARGET_TICK_SECONDS} s: ${seconds < TARGET_TICK_SECONDS ? 'met' : 'MISSED'} (median ${seconds.toFixed(2)} s, first tick ${(target.first.tickMs / 1000).toFixed(2)} s)`,
    );
  } else {
    notes.push(
      `target: a tick at ${TARGET_TICK_PAIRS.toLocaleString('en-US')} pairs in under ${TARGET_TICK_SECONDS} s: not measured (BENCH_DETECTION_PAIRS)`,
    );
  }
  const rss = (r: TickRun) => Math.max(...r.rest.map((t) => t.peakRssMb));
  const heap = (r: TickRun) => Math.max(...r.rest.map((t) => t.peakLiveHeapMb));
  const time = (r: TickRun) => median(r.rest.map((t) => t.tickMs));
  const pct = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(0)}%`;
  notes.push(
    `target: tick memory does not grow with history (${short.pairs.toLocaleString('en-US')} pairs, 1 h vs ${long.historyHours} h): peak RSS ${rss(short).toFixed(0)} vs ${rss(long).toFixed(0)} MiB (${pct(rss(short), rss(long))}), peak live heap ${heap(short).toFixed(1)} vs ${heap(long).toFixed(1)} MiB (${pct(heap(short), heap(long))}), tick ${(time(short) / 1000).toFixed(2)} vs ${(time(long) / 1000).toFixed(2)} s (${pct(time(short), time(long))})`,
  );
  notes.push(
    `1-minute load average of the machine as each configuration's ticks began: ${[...runs, long]
      .map((r) => `${r.pairs} pairs/${r.historyHours} h ${r.loadAverage.toFixed(1)}`)
      .join(', ')} (other work shares its cores; figures are this run's, not a quiet machine's)`,
  );
  notes.push(
    `each configuration: its own database, the ticks in a fresh process (node --expose-gc); tick 1 at ${new Date(FIRST_TICK).toISOString()}, then every 15 s of platform time, the live writer inserting and updating rows second by second in between (not timed)`,
  );
  notes.push(
    "SQL by kind of statement is the time the tick's own pool client saw (a pg client wrapper); the signal queries run at once, so they add up to more than the wall time in SQL; rows read are PostgreSQL's counters for the table (a sequential scan reads every row of the table, an index scan those it fetches)",
  );
  return notes;
}

// ---------------------------------------------------------------------------------------------
// Backtest

async function benchBacktest(config: Config, days: number): Promise<{ figures: Figure[]; notes: string[] }> {
  const settings = config.detectors.paymentHealth;
  const platform = referencePlatform();
  const fromMs = BACKTEST_START;
  const toMs = fromMs + days * DAY;
  const stepMs = TICK_STEP;
  const warmupMs = config.backtest.warmupMinutes * MINUTE;
  // Without a stored state the backtest warms up for at least a baseline half-life, and its first
  // tick reads a longest window and a settle horizon before it: load all that and an hour more.
  // Which rows it reads is its own business; the raw read below takes its ranges from its COPY.
  const replayWarmupMs = Math.max(warmupMs, settings.baseline.halfLifeMinutes * MINUTE);
  const { windowMs, settleMs } = lookback(settings);
  const loadFrom = fromMs - replayWarmupMs - windowMs - settleMs - HOUR;
  const scenarios = backtestScenarios(fromMs, days);

  const db = await benchDatabase(`forewarn_bench_detection_backtest_${process.pid}`);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  let child: Child | undefined;
  try {
    await createPlatformSchema(client, SCHEMA, { reset: true });
    await seedPlatform(client, SCHEMA, platform, []);
    const expected = expectedAttempts(platform, loadFrom, toMs);
    progress(`backtest: loading ${days} days (~${Math.round(expected).toLocaleString('en-US')} attempts)`);
    const memory = watchMemory();
    const load = await bulkLoad(
      client,
      reporting(generateAttempts({ platform, from: loadFrom, to: toMs, seed: 2026, scenarios }), expected),
    );
    const loader = memory.stop();
    const loaded = load.rows;
    progress('backtest: VACUUM ANALYZE');
    const vacuum = await timed(() => vacuumAnalyze(client));
    const { rows: sizes } = await client.query<{ bytes: string }>(
      `SELECT pg_total_relation_size('${SCHEMA}.payment_attempts') AS bytes`,
    );

    // The page cache holds the whole table after the load (24 GiB of RAM): every read below is warm.
    progress('backtest: replaying');
    const loadAverage = loadavg()[0]!;
    child = startChild();
    const replay = await child.call<BacktestFigures>({
      type: 'backtest',
      url: db.url,
      fromMs,
      toMs,
      stepMs,
      warmupMs,
    });
    await child.close();
    child = undefined;

    // The floor: the same rows (the creation-time ranges of the backtest's own COPY) and columns,
    // unfiltered and unordered, through psql. Then the backtest's own query through psql: the
    // database's share of the backtest.
    progress('backtest: psql \\copy of the same rows');
    const ranges = [
      ...(replay.copySql ?? '').matchAll(
        /a\.created_at >= ('[^']+'::timestamptz) AND a\.created_at < ('[^']+'::timestamptz)/g,
      ),
    ].map((m) => `(created_at >= ${m[1]} AND created_at < ${m[2]})`);
    if (ranges.length === 0)
      throw new Error(`backtest: no created_at range found in its COPY: ${replay.copySql}`);
    const psqlCopy = (select: string) =>
      timed(() =>
        promisify(execFile)('psql', [
          '-X',
          '-v',
          'ON_ERROR_STOP=1',
          db.url,
          '-c',
          `\\copy (${select.replace(/\s+/g, ' ').trim()}) TO '/dev/null'`,
        ]),
      );
    const raw = await psqlCopy(
      `SELECT channel_id, region, user_id, status, created_at, finished_at, latency_ms, error_code
         FROM ${SCHEMA}.payment_attempts WHERE ${ranges.join(' OR ')}`,
    );
    const rawRows = Number(/COPY (\d+)/.exec(raw.value.stdout)?.[1] ?? NaN);
    const own = /^\s*COPY\s*\(([\s\S]*)\)\s*TO\s+STDOUT\s*$/i.exec(replay.copySql ?? '')?.[1];
    const ownRead = own ? await psqlCopy(own) : undefined;

    const s = (ms: number) => ms / 1000;
    const d = `backtest, ${days} day${days === 1 ? '' : 's'}, 30 pairs`;
    const firstDay = replay.samples[0];
    const lastDay = replay.samples.at(-1);
    const figures = [
      figure(`${d}: attempts loaded`, loaded, 'rows'),
      figure(`${d}: load: COPY, generator streamed in`, s(load.copyMs), 's'),
      figure(`${d}: load: COPY rate`, Math.round(loaded / s(load.copyMs)), 'rows/s'),
      figure(`${d}: load: indexes built again`, s(load.indexMs), 's'),
      figure(`${d}: load: VACUUM ANALYZE`, s(vacuum.ms), 's'),
      figure(`${d}: load: total`, s(load.copyMs + load.indexMs + vacuum.ms), 's'),
      figure(`${d}: loader peak RSS (this process)`, loader.peakRssMb, 'MiB'),
      figure(`${d}: table and indexes on disk`, Number(sizes[0]!.bytes) / 1024 ** 3, 'GiB'),
      figure(`${d}: raw read, psql \\copy to /dev/null`, s(raw.ms), 's'),
      figure(`${d}: raw read: rows`, rawRows, 'rows'),
      figure(`${d}: raw read rate`, Math.round(rawRows / s(raw.ms)), 'rows/s'),
      ...(ownRead
        ? [figure(`${d}: the backtest's own query (filtered, ordered), psql \\copy`, s(ownRead.ms), 's')]
        : []),
      figure(`${d}: backtest: streamed read and replay`, s(replay.elapsedMs), 's'),
      figure(`${d}: backtest: total in process`, s(replay.totalMs), 's'),
      figure(`${d}: backtest: attempts read`, replay.attemptsRead, 'rows'),
      figure(`${d}: backtest rate`, Math.round(replay.attemptsRead / s(replay.elapsedMs)), 'attempts/s'),
      figure(`${d}: backtest / raw read time`, replay.elapsedMs / raw.ms, '×'),
      figure(`${d}: ticks replayed (15 s step, warm-up included)`, replay.ticks, 'ticks'),
      figure(`${d}: incidents found`, replay.incidents, 'incidents'),
      figure(`${d}: backtest peak RSS (fresh process)`, replay.peakRssMb, 'MiB'),
      figure(`${d}: backtest peak live heap`, replay.peakLiveHeapMb, 'MiB'),
    ];
    for (const sample of firstDay === lastDay ? [firstDay] : [firstDay, lastDay]) {
      if (!sample) continue;
      figures.push(
        figure(`${d}: RSS after day ${sample.day}`, sample.rssMb, 'MiB'),
        figure(`${d}: live heap after a full GC, after day ${sample.day}`, sample.liveHeapMb, 'MiB'),
      );
    }
    const notes = [
      `backtest: ${new Date(fromMs).toISOString()} plus ${days} days of the reference platform (rateScale 1, its daily cycle), ${scenarios.length} scripted incidents, loaded from ${new Date(loadFrom).toISOString()}; the raw read takes the same creation-time ranges as the backtest's COPY (${ranges.length}), unfiltered and unordered, as the floor`,
      `backtest: 1-minute load average of the machine as the replay began: ${loadAverage.toFixed(1)}`,
    ];
    if (rawRows !== replay.attemptsRead) {
      notes.push(
        `backtest: it read ${replay.attemptsRead.toLocaleString('en-US')} attempts, the raw read ${rawRows.toLocaleString('en-US')} rows of the same ranges (rows that break the contract are skipped)`,
      );
    }
    return { figures, notes };
  } finally {
    child?.kill();
    await client.end();
    await db.drop();
  }
}

/** An outage and a slow spell on the first day, and again on the last, for the replay to find. */
function backtestScenarios(fromMs: number, days: number): Scenario[] {
  const on = (day: number): Scenario[] => [
    {
      channel: 'wechat_pay',
      region: 'CN-GD',
      from: fromMs + day * DAY + 10 * HOUR,
      to: fromMs + day * DAY + 10.25 * HOUR,
      effect: { type: 'outage' },
    },
    {
      channel: 'alipay',
      region: 'CN-SH',
      from: fromMs + day * DAY + 20 * HOUR,
      to: fromMs + day * DAY + 20.5 * HOUR,
      effect: { type: 'slow', latencyMs: 40_000 },
    },
  ];
  return days > 1 ? [...on(0), ...on(days - 1)] : on(0);
}

/** Passes the attempts through, telling stderr how far the load has come every 5 million. */
function* reporting(
  attempts: Iterable<SimAttempt>,
  expected: number,
): Generator<SimAttempt, void, undefined> {
  const started = performance.now();
  let n = 0;
  for (const a of attempts) {
    yield a;
    if (++n % 5_000_000 === 0) {
      const seconds = (performance.now() - started) / 1000;
      progress(
        `  ${n.toLocaleString('en-US')} of ~${Math.round(expected).toLocaleString('en-US')} (${seconds.toFixed(0)} s)`,
      );
    }
  }
}

interface BacktestFigures {
  elapsedMs: number;
  totalMs: number;
  attemptsRead: number;
  ticks: number;
  incidents: number;
  peakRssMb: number;
  peakLiveHeapMb: number;
  /** RSS and live heap (after a full collection) as each replayed day ends. */
  samples: Array<{ day: number; rssMb: number; liveHeapMb: number }>;
  /** The COPY statement the backtest streamed its rows with. */
  copySql: string | null;
}

/**
 * Loads settled history as bulk loads are done: the table's keys and indexes dropped, the rows
 * streamed in with COPY, then the same keys and indexes built again (their definitions read from
 * the catalog, so they stay sim/schema.ts's). With the indexes in place COPY managed ~40,000 rows/s
 * here (the (user_id, channel_id, created_at) index takes random inserts); without, ~190,000.
 */
async function bulkLoad(
  client: pg.ClientBase,
  attempts: Iterable<SimAttempt>,
): Promise<{ rows: number; copyMs: number; indexMs: number }> {
  const table = `${SCHEMA}.payment_attempts`;
  const { rows: keys } = await client.query<{ name: string; def: string }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = $1::regclass AND contype IN ('p', 'u')`,
    [table],
  );
  const { rows: indexes } = await client.query<{ name: string; def: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
      WHERE x.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)`,
    [table],
  );
  for (const k of keys)
    await client.query(`ALTER TABLE ${table} DROP CONSTRAINT ${pg.escapeIdentifier(k.name)}`);
  for (const i of indexes) await client.query(`DROP INDEX ${SCHEMA}.${pg.escapeIdentifier(i.name)}`);
  let rows = 0;
  const copy = await timed(async () => {
    rows = await copyAttempts(client, SCHEMA, attempts);
  });
  const build = await timed(async () => {
    await client.query(`SET maintenance_work_mem = '1GB'`);
    for (const k of keys)
      await client.query(`ALTER TABLE ${table} ADD CONSTRAINT ${pg.escapeIdentifier(k.name)} ${k.def}`);
    for (const i of indexes) await client.query(i.def);
    await client.query('RESET maintenance_work_mem');
  });
  return { rows, copyMs: copy.ms, indexMs: build.ms };
}

/**
 * autovacuum may be off (it is on the bench machine); a live platform's table is vacuumed and
 * analyzed, and unset hint bits would make the first reader write.
 */
async function vacuumAnalyze(client: pg.ClientBase): Promise<void> {
  await client.query(`VACUUM (ANALYZE) ${SCHEMA}.payment_attempts`);
}

// ---------------------------------------------------------------------------------------------
// The child process: ticks and the backtest, requested over IPC.

type ChildRequest =
  | { type: 'tick'; url: string; tickAt: number; full: boolean }
  | { type: 'explain'; url: string; folder: string; label: string }
  | { type: 'backtest'; url: string; fromMs: number; toMs: number; stepMs: number; warmupMs: number }
  | { type: 'close' };

type ChildReply = { ok: true; value: unknown } | { ok: false; error: string };

interface Child {
  call<T = unknown>(request: ChildRequest): Promise<T>;
  close(): Promise<void>;
  kill(): void;
}

const SCRIPT = fileURLToPath(import.meta.url);

function startChild(): Child {
  const process_: ChildProcess = fork(SCRIPT, ['child'], {
    execArgv: ['--expose-gc', '--import', 'tsx'],
    // The child's stdout is the parent's stderr: only the figures go to stdout.
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  let pending: { resolve: (value: unknown) => void; reject: (error: Error) => void } | null = null;
  let exited: Error | null = null;
  process_.on('message', (message: ChildReply) => {
    const p = pending;
    pending = null;
    if (message.ok) p?.resolve(message.value);
    else p?.reject(new Error(`bench child: ${message.error}`));
  });
  process_.on('exit', (code, signal) => {
    exited = new Error(`bench child exited (${signal ?? code}) with a request outstanding`);
    pending?.reject(exited);
    pending = null;
  });
  const call = <T>(request: ChildRequest) =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(exited);
      pending = { resolve: resolve as (value: unknown) => void, reject };
      process_.send(request);
    });
  return {
    call,
    async close() {
      const gone = new Promise((resolve) => process_.once('exit', resolve));
      await call({ type: 'close' });
      await gone;
    },
    kill() {
      if (process_.exitCode === null && process_.signalCode === null) process_.kill();
    },
  };
}

interface Statement {
  label: string;
  text: string;
  values: unknown[] | undefined;
  /** The SET LOCAL in force in the statement's transaction, if any. */
  settings: string | null;
  start: number;
  end: number;
}

const WINDOW_GROUPS = 'signals: window-groups query';
const SLICES = 'signals: slice-tallies query';
const BAD_USERS = 'signals: bad-users queries';
const RECENT = 'signals: recent-part query (groups and bad users)';
const INVALID_ROWS = 'invalid rows';
const SIGNAL_LABELS = [RECENT, WINDOW_GROUPS, SLICES, BAD_USERS];
/** The statements that scan payment_attempts by creation time. */
const SCAN_LABELS = [...SIGNAL_LABELS, INVALID_ROWS, 'top error codes'];

function labelOf(sql: string): string {
  if (/^\s*(BEGIN|COMMIT|ROLLBACK|SET LOCAL|SAVEPOINT|RELEASE)/i.test(sql)) return 'transaction control';
  // The recent-part query holds the bad-users query, which groups by four columns too: test
  // for them first.
  if (/WITH o AS MATERIALIZED/.test(sql)) return RECENT;
  if (/CROSS JOIN LATERAL \(VALUES \('failures'/.test(sql)) return BAD_USERS;
  if (/AS piece/.test(sql)) return SLICES;
  if (/GROUP BY 1, 2, 3, 4/.test(sql)) return WINDOW_GROUPS;
  if (/AS problem/.test(sql)) return INVALID_ROWS;
  if (/error_code AS code/.test(sql)) return 'top error codes';
  if (/date_part\('epoch', now\(\)\)/.test(sql)) return 'database clock';
  if (/payment_channels/.test(sql)) return 'channels';
  if (/window_cache/.test(sql)) return 'window cache';
  if (/detector_state|subject_state/.test(sql)) return 'state';
  if (/detector_runs/.test(sql)) return 'run record';
  return 'other';
}

/** Statements being recorded (by every client of the child's pools), or null. */
let recording: Statement[] | null = null;
/** The last COPY statement any client of the child's pools sent. */
let lastCopy: string | null = null;

/** A pool whose clients time every statement while `recording` is set. */
function timedPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 5, application_name: 'forewarn-bench' });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    let settings: string | null = null;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0];
      const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') return query(...args); // COPY streams and other submittables
      if (/^\s*COPY\b/i.test(text)) lastCopy = text;
      if (/^\s*BEGIN/i.test(text)) settings = null;
      if (/^\s*SET LOCAL/i.test(text)) settings = text;
      const into = recording;
      if (into === null) return query(...args);
      const statement: Statement = {
        label: labelOf(text),
        text,
        values: Array.isArray(args[1]) ? (args[1] as unknown[]) : undefined,
        settings,
        start: performance.now(),
        end: 0,
      };
      const done = () => {
        statement.end = performance.now();
        into.push(statement);
      };
      const callback = args.at(-1);
      if (typeof callback === 'function') {
        args[args.length - 1] = (...results: unknown[]) => {
          done();
          (callback as (...r: unknown[]) => void)(...results);
        };
        return query(...args);
      }
      const result = query(...args);
      if (result instanceof Promise) {
        return result.then(
          (value: unknown) => {
            done();
            return value;
          },
          (error: unknown) => {
            done();
            throw error;
          },
        );
      }
      return result;
    };
  });
  return pool;
}

async function childMain(): Promise<void> {
  const config = await loadConfigFile(CONFIG_FILE);
  const logger = createLogger({ level: 'error' });
  const pools = new Map<string, pg.Pool>();
  const poolFor = (url: string) => {
    let pool = pools.get(url);
    if (!pool) pools.set(url, (pool = timedPool(url)));
    return pool;
  };
  const contexts = new Map<string, DetectionContext>();
  const contextFor = (url: string): DetectionContext => {
    let ctx = contexts.get(url);
    if (!ctx) {
      // What createContext gives a tick when the platform is in forewarn's own database, without
      // the Redis, queues and mail that a tick does not use.
      const pool = poolFor(url);
      ctx = {
        db: pool,
        platformDb: pool,
        platformSchema: SCHEMA,
        config: () => config,
        logger,
        workerId: `bench:${process.pid}`,
        invalidRows: new InvalidRowReporter(logger),
      };
      contexts.set(url, ctx);
    }
    return ctx;
  };
  let firstStatements: Statement[] | null = null;
  let lastStatements: Statement[] = [];

  const handle = async (request: ChildRequest): Promise<unknown> => {
    switch (request.type) {
      case 'tick': {
        const figures = await measureTick(
          contextFor(request.url),
          config.detectors.paymentHealth,
          request.tickAt,
          request.full,
        );
        firstStatements ??= figures.statements;
        lastStatements = figures.statements;
        return figures.figures;
      }
      case 'explain':
        return explain(
          poolFor(request.url),
          { 'first-tick': firstStatements ?? [], tick: lastStatements },
          request.folder,
          request.label,
        );
      case 'backtest':
        return runBacktest(poolFor(request.url), config, request);
      case 'close':
        await Promise.all([...pools.values()].map((p) => p.end()));
        return null;
    }
  };
  process.on('message', (request: ChildRequest) => {
    void handle(request).then(
      (value) =>
        process.send!({ ok: true, value } satisfies ChildReply, () => {
          if (request.type === 'close') process.exit(0);
        }),
      (error: unknown) =>
        process.send!({
          ok: false,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        } satisfies ChildReply),
    );
  });
  // The parent went away: nothing left to do.
  process.on('disconnect', () => process.exit(0));
}

async function measureTick(
  ctx: DetectionContext,
  settings: PaymentHealthSettings,
  tickAt: number,
  full: boolean,
): Promise<{ figures: TickFigures; statements: Statement[] }> {
  const db = ctx.platformDb;
  const look = lookback(settings);
  const now = Math.floor(tickAt / BUCKET_MS) * BUCKET_MS;
  // The arguments the tick will give the signal reader: they depend on the stored state's clock
  // and on the window cache, which the tick uses only when it matches that clock.
  const { rows: stored } = await ctx.db.query<{
    evaluated_at: Date | null;
    window_cache: WindowCache | null;
  }>('SELECT evaluated_at, window_cache FROM forewarn.detector_state WHERE detector = $1', [DETECTOR]);
  const evaluatedAt = stored[0]?.evaluated_at?.getTime() ?? null;
  const cached = stored[0]?.window_cache ?? null;
  const usable =
    cached && evaluatedAt !== null && cached.settledTo === evaluatedAt - look.settleMs ? cached : null;
  const query = signalQueryFor(
    settings,
    SCHEMA,
    now,
    settledFromFor(evaluatedAt, now, look.settleMs, look.windowMs),
  );
  const longestMs = Math.max(...query.lengths) * 1000;
  const { rows: counted } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${SCHEMA}.payment_attempts WHERE created_at >= $1 AND created_at < $2`,
    [new Date(now - longestMs), new Date(now)],
  );

  const readBefore = await tuplesRead(db);
  const memory = watchMemory();
  const rssBefore = process.memoryUsage.rss();
  const statements: Statement[] = [];
  recording = statements;
  const profile = await profileCpu(`detection-tick-${new Date(tickAt).toISOString().replaceAll(':', '')}`);
  const started = performance.now();
  let result: Awaited<ReturnType<typeof runPaymentHealthTick>>;
  try {
    result = await runPaymentHealthTick(ctx, tickAt);
  } finally {
    recording = null;
  }
  const ended = performance.now();
  await profile.stop();
  const peaks = memory.stop();
  const rowsRead = (await tuplesRead(db)) - readBefore;

  const direct = await timed(() => readPairSignalsIncremental(db, query, usable));
  const fullRead = full ? await timed(() => readPairSignals(db, query)) : null;
  const { rows: state } = await ctx.db.query<{
    bytes: number;
    stored: number;
    cache_bytes: number | null;
    cache_stored: number | null;
  }>(
    `SELECT octet_length(state::text)
              + (SELECT coalesce(sum(octet_length(s.state::text)), 0) FROM forewarn.subject_state s WHERE s.detector = $1)
              AS bytes,
            pg_column_size(state)
              + (SELECT coalesce(sum(pg_column_size(s.state)), 0) FROM forewarn.subject_state s WHERE s.detector = $1)
              AS stored,
            octet_length(window_cache::text) AS cache_bytes, pg_column_size(window_cache) AS cache_stored
       FROM forewarn.detector_state WHERE detector = $1`,
    [DETECTOR],
  );
  const sqlMs: Record<string, number> = {};
  for (const s of statements) sqlMs[s.label] = (sqlMs[s.label] ?? 0) + (s.end - s.start);
  return {
    statements,
    figures: {
      tickAt,
      tickMs: ended - started,
      outcome: result.outcome,
      changes: result.changes.length,
      sqlWallMs: unionLength(statements.map((s) => [Math.max(s.start, started), Math.min(s.end, ended)])),
      sqlMs,
      signalsMs: direct.ms,
      readMode: direct.value.rowsRead,
      fullSignalsMs: fullRead?.ms ?? null,
      signalPairs: direct.value.set.pairs.size,
      rowsRead,
      rowsInWindow: counted[0]!.n,
      rssBeforeMb: rssBefore / 1024 / 1024,
      peakRssMb: peaks.peakRssMb,
      peakLiveHeapMb: peaks.peakLiveHeapMb,
      stateBytes: Number(state[0]?.bytes ?? 0),
      stateStoredBytes: Number(state[0]?.stored ?? 0),
      cacheBytes: Number(state[0]?.cache_bytes ?? 0),
      cacheStoredBytes: Number(state[0]?.cache_stored ?? 0),
    },
  };
}

/**
 * Rows of payment_attempts read by scans so far, by PostgreSQL's counters. Backends report them
 * when idle, at most about once a second: read until two readings agree.
 */
async function tuplesRead(db: pg.Pool): Promise<number> {
  const read = async () => {
    const { rows } = await db.query<{ n: string }>(
      `SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) AS n
         FROM pg_stat_user_tables WHERE relid = $1::regclass`,
      [`${SCHEMA}.payment_attempts`],
    );
    return Number(rows[0]?.n ?? 0);
  };
  const pause = () => new Promise((resolve) => setTimeout(resolve, 700));
  await pause();
  let last = await read();
  for (let i = 0; i < 20; i++) {
    await pause();
    const n = await read();
    if (n === last) return n;
    last = n;
  }
  return last;
}

/** EXPLAIN (ANALYZE, BUFFERS) of the scanning statements of some ticks, each with its settings. */
async function explain(
  pool: pg.Pool,
  ticks: Record<string, Statement[]>,
  folder: string,
  label: string,
): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const written: string[] = [];
  for (const [tick, statements] of Object.entries(ticks)) {
    const seen = new Map<string, number>();
    for (const statement of statements.filter((s) => SCAN_LABELS.includes(s.label))) {
      const n = (seen.get(statement.label) ?? 0) + 1;
      seen.set(statement.label, n);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        if (statement.settings) await client.query(statement.settings);
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`,
          statement.values,
        );
        const name = `${statement.label.replace(/[^a-z]+/g, '-')}${n}`;
        const file = join(folder, `detection-${label}-${tick}-${name}.txt`);
        await writeFile(
          file,
          `-- ${statement.label} (${tick}), settings: ${statement.settings ?? '(none)'}\n-- values: ${JSON.stringify(statement.values)}\n${statement.text}\n\n${rows.map((r) => r['QUERY PLAN']).join('\n')}\n`,
        );
        written.push(file);
      } finally {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
      }
    }
  }
  progress(`EXPLAIN ANALYZE written: ${written.length} plans in ${folder}`);
  return written;
}

async function runBacktest(
  pool: pg.Pool,
  config: Config,
  request: Extract<ChildRequest, { type: 'backtest' }>,
): Promise<BacktestFigures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const samples: BacktestFigures['samples'] = [];
  const ticksPerDay = DAY / request.stepMs;
  let sampledDays = 0;
  let ticksBeforeFrom = 0;
  const profile = await profileCpu('detection-backtest');
  const memory = watchMemory();
  const total = await timed(() =>
    backtestPaymentHealth({
      platformDb: pool,
      schema: SCHEMA,
      settings: config.detectors.paymentHealth,
      fromMs: request.fromMs,
      toMs: request.toMs,
      stepMs: request.stepMs,
      warmupMs: request.warmupMs,
      onProgress: ({ ticksDone, ticksTotal }) => {
        // Ticks count from the warm-up's start; days from `from`.
        ticksBeforeFrom ||= ticksTotal - Math.floor((request.toMs - request.fromMs) / request.stepMs) - 1;
        const day = Math.floor((ticksDone - ticksBeforeFrom) / ticksPerDay);
        if (day > sampledDays) {
          sampledDays = day;
          gc?.();
          samples.push({
            day,
            rssMb: process.memoryUsage.rss() / 1024 / 1024,
            liveHeapMb: process.memoryUsage().heapUsed / 1024 / 1024,
          });
          if (day % 5 === 0) progress(`  replayed day ${day}`);
        }
      },
    }),
  );
  const peaks = memory.stop();
  await profile.stop();
  return {
    copySql: lastCopy,
    elapsedMs: total.value.elapsedMs,
    totalMs: total.ms,
    attemptsRead: total.value.attemptsRead,
    ticks: total.value.ticks,
    incidents: total.value.incidents.length,
    peakRssMb: peaks.peakRssMb,
    peakLiveHeapMb: peaks.peakLiveHeapMb,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Total length of the union of [start, end] intervals. */
function unionLength(intervals: Array<[number, number]>): number {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [from, to] = [-Infinity, -Infinity];
  for (const [a, b] of sorted) {
    if (a > to) {
      if (to > from) total += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  if (to > from) total += to - from;
  return total;
}

function progress(message: string): void {
  process.stderr.write(`[bench detection ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

if (
  process.argv[1] &&
  pathToFileURL(process.argv[1]).href === import.meta.url &&
  process.argv[2] === 'child'
) {
  await childMain();
}
