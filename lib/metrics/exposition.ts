// /metrics in Prometheus text format (prom-client): what lib/metrics/read.ts and lib/watchdog/read.ts
// read, as counters, gauges and histograms. A part that cannot be read (PostgreSQL down) leaves
// its metrics out and sets forewarn_metrics_read_failed{part} to 1: the rest is still served,
// within PART_TIMEOUT_MS however a service fails.
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { bounded } from '../bounded.ts';
import type { Queryable } from '../db/pool.ts';
import type { Queues } from '../queue/queues.ts';
import type { TickBound } from '../watchdog/bounds.ts';
import { readDataHighWater, readLastTicks, type DataHighWater, type LastTick } from '../watchdog/read.ts';
import { BUCKETS, readOpenIncidents, readQueueDepths, type HistogramRead } from './read.ts';
import type { HistoryRead, SettledTotals } from './settled.ts';

export interface MetricsSources {
  db: Queryable;
  platformDb: Queryable;
  platformSchema: string;
  queues: Queues;
  /** This process's running totals of the history tables (lib/metrics/settled.ts). */
  history: SettledTotals;
  /**
   * The detectors the config runs on a schedule, with the watchdog's bound on their tick age
   * (lib/watchdog/bounds.ts), and its bound on the platform data's lag, in seconds.
   */
  watchdog: () => { ticks: readonly TickBound[]; maxDataLagSeconds: number };
  configHash: () => string;
  /** Epoch ms. */
  now: () => number;
  /** PART_TIMEOUT_MS unless given. */
  partTimeoutMs?: number;
}

export interface MetricsSnapshot {
  /** Detector runs, messages and first deliveries. */
  history?: HistoryRead;
  openIncidents?: { detector: string; kind: string; n: number }[];
  queues?: { queue: string; state: string; n: number }[];
  lastTicks?: LastTick[];
  highWater?: DataHighWater;
  /** The parts that could not be read, with why (logged by the route, never sent). */
  failed: { part: string; error: unknown }[];
  configHash: string;
  readMs: number;
  now: number;
  watchdog: ReturnType<MetricsSources['watchdog']>;
}

/**
 * How long a scrape waits for each part: one that does not answer in time (Redis down: its
 * commands wait for the reconnection) is left out like one that failed, and the rest is served.
 */
export const PART_TIMEOUT_MS = 8_000;

/** Reads every part at once; a failing or hanging part is recorded, not thrown. */
export async function readMetricsSnapshot(sources: MetricsSources): Promise<MetricsSnapshot> {
  const started = performance.now();
  const now = sources.now();
  const watchdog = sources.watchdog();
  const parts = {
    history: () => sources.history.read(sources.db),
    openIncidents: () => readOpenIncidents(sources.db),
    queues: () => readQueueDepths(sources.queues),
    lastTicks: () =>
      readLastTicks(
        sources.db,
        watchdog.ticks.map((b) => b.detector),
      ),
    highWater: () => readDataHighWater(sources.platformDb, sources.platformSchema),
  };
  const names = Object.keys(parts) as (keyof typeof parts)[];
  const settled = await Promise.allSettled(
    names.map((name) => bounded<unknown>(parts[name](), sources.partTimeoutMs ?? PART_TIMEOUT_MS)),
  );
  const snapshot: MetricsSnapshot = {
    failed: [],
    configHash: sources.configHash(),
    readMs: 0,
    now,
    watchdog,
  };
  settled.forEach((result, i) => {
    const name = names[i]!;
    if (result.status === 'rejected') snapshot.failed.push({ part: name, error: result.reason });
    else (snapshot as unknown as Record<string, unknown>)[name] = result.value;
  });
  snapshot.readMs = performance.now() - started;
  return snapshot;
}

/** The process's own metrics (CPU, memory, event loop), kept for the life of the process. */
const processRegistry = new Registry();
collectDefaultMetrics({ register: processRegistry, prefix: 'forewarn_' });

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** The snapshot in Prometheus text format, with this process's own metrics after it. */
export async function renderMetrics(snapshot: MetricsSnapshot): Promise<string> {
  const registry = new Registry();
  const registers = [registry];
  const { detectorRuns, notifications, firstDelivery } = snapshot.history ?? {};

  if (detectorRuns) {
    const runs = new Counter({
      name: 'forewarn_detector_runs_total',
      help: 'Detector ticks that ran, by outcome (evaluated, stale: the data lagged, refused: clock skew).',
      labelNames: ['detector', 'outcome'],
      registers,
    });
    for (const r of detectorRuns.runs) runs.inc({ detector: r.detector, outcome: r.outcome }, r.n);
    registry.registerMetric(
      histogram(
        'forewarn_detector_run_duration_seconds',
        'How long each detector tick took, from its start to its record.',
        BUCKETS.detectorRun,
        detectorRuns.durations,
      ),
    );
  }

  const bound = new Gauge({
    name: 'forewarn_detector_tick_age_bound_seconds',
    help: "The watchdog's bound on each scheduled detector's tick age (config watchdog.ticks): older, ops are alerted.",
    labelNames: ['detector'],
    registers,
  });
  for (const b of snapshot.watchdog.ticks) bound.set({ detector: b.detector }, b.boundMs / 1000);
  new Gauge({
    name: 'forewarn_platform_data_lag_bound_seconds',
    help: "The watchdog's bound on the platform data's lag (config watchdog.maxDataLagSeconds).",
    registers,
  }).set(snapshot.watchdog.maxDataLagSeconds);

  if (snapshot.lastTicks) {
    const age = new Gauge({
      name: 'forewarn_detector_last_tick_age_seconds',
      help: 'Seconds since each scheduled detector last finished a tick (absent: it never ran).',
      labelNames: ['detector'],
      registers,
    });
    for (const t of snapshot.lastTicks)
      if (t.finishedAt !== null)
        age.set({ detector: t.detector }, Math.max(0, (snapshot.now - t.finishedAt) / 1000));
  }

  if (snapshot.highWater) {
    const { newestAt, platformNow } = snapshot.highWater;
    if (newestAt !== null) {
      new Gauge({
        name: 'forewarn_platform_data_newest_timestamp_seconds',
        help: "The newest payment attempt's created_at (the platform data's high-water mark), Unix seconds.",
        registers,
      }).set(newestAt / 1000);
      new Gauge({
        name: 'forewarn_platform_data_lag_seconds',
        help: "How far the newest payment attempt lies behind the platform database's clock.",
        registers,
      }).set(Math.max(0, (platformNow - newestAt) / 1000));
    }
  }

  if (snapshot.openIncidents) {
    const open = new Gauge({
      name: 'forewarn_incidents_open',
      help: 'Causes open now (incidents, low-stock episodes, spikes...), by detector and kind.',
      labelNames: ['detector', 'kind'],
      registers,
    });
    for (const r of snapshot.openIncidents) open.set({ detector: r.detector, kind: r.kind }, r.n);
  }

  if (notifications) {
    const byOutcome = new Gauge({
      name: 'forewarn_notifications',
      help: 'Messages recorded, by kind, channel and what became of them so far (sent, held, withheld, failed...).',
      labelNames: ['kind', 'channel', 'outcome'],
      registers,
    });
    const sent = new Counter({
      name: 'forewarn_notifications_sent_total',
      help: 'Messages a channel accepted, by kind and channel.',
      labelNames: ['kind', 'channel'],
      registers,
    });
    const failed = new Counter({
      name: 'forewarn_notifications_failed_total',
      help: 'Messages that failed for good (permanent error or retries exhausted), by kind and channel.',
      labelNames: ['kind', 'channel'],
      registers,
    });
    for (const r of notifications.byOutcome) {
      byOutcome.set({ kind: r.kind, channel: r.channel, outcome: r.outcome }, r.n);
      if (r.outcome === 'sent') sent.inc({ kind: r.kind, channel: r.channel }, r.n);
      if (r.outcome.startsWith('failed:')) failed.inc({ kind: r.kind, channel: r.channel }, r.n);
    }
    registry.registerMetric(
      histogram(
        'forewarn_send_latency_seconds',
        'From a message being recorded to its channel accepting it, per channel (messages held on purpose left out).',
        BUCKETS.sendLatency,
        notifications.sendLatency,
      ),
    );
  }

  if (firstDelivery)
    registry.registerMetric(
      histogram(
        'forewarn_first_delivery_lag_seconds',
        "From a cause's opening change to the first message about it that a channel accepted, per detector.",
        BUCKETS.firstDelivery,
        firstDelivery,
      ),
    );

  if (snapshot.queues) {
    const depth = new Gauge({
      name: 'forewarn_queue_jobs',
      help: "Jobs in each of forewarn's BullMQ queues, by state.",
      labelNames: ['queue', 'state'],
      registers,
    });
    for (const r of snapshot.queues) depth.set({ queue: r.queue, state: r.state }, r.n);
  }

  new Gauge({
    name: 'forewarn_config_info',
    help: 'The config in force: its hash (sha256 of the config with sorted keys, 16 hex digits).',
    labelNames: ['hash'],
    registers,
  }).set({ hash: snapshot.configHash }, 1);

  const readFailed = new Gauge({
    name: 'forewarn_metrics_read_failed',
    help: 'Parts of this scrape that could not be read (1), their metrics left out.',
    labelNames: ['part'],
    registers,
  });
  for (const f of snapshot.failed) readFailed.set({ part: f.part }, 1);
  new Gauge({
    name: 'forewarn_metrics_read_seconds',
    help: 'How long reading this scrape took.',
    registers,
  }).set(snapshot.readMs / 1000);

  return `${await registry.metrics()}\n${await processRegistry.metrics()}`;
}

/**
 * A histogram whose counts come from the database: prom-client's Histogram only observes values
 * one by one, so this metric hands the registry the cumulative buckets as they were read.
 */
function histogram(
  name: string,
  help: string,
  buckets: readonly number[],
  reads: readonly HistogramRead[],
): Metric {
  const values = reads.flatMap((h) => [
    ...buckets.map((le, i) => ({
      metricName: `${name}_bucket`,
      labels: { ...h.labels, le: String(le) },
      value: h.counts[i]!,
    })),
    { metricName: `${name}_bucket`, labels: { ...h.labels, le: '+Inf' }, value: h.count },
    { metricName: `${name}_sum`, labels: h.labels, value: h.sum },
    { metricName: `${name}_count`, labels: h.labels, value: h.count },
  ]);
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get: async () => ({ name, help, type: 'histogram', aggregator: 'sum', values }),
  };
  return metric as unknown as Metric;
}
