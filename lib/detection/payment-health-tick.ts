// The payment-health watcher's registry entry: its settings (config key detectors.paymentHealth),
// its reader (the tick's pair signals, incremental on the stored window cache, and the platform's
// channels), its pure detector (detectors/payment-health), its recorder (incidents and outbox
// events, one savepoint per pair; a data-feed alert) and its backtest. The tick itself (lock,
// stale guard, run records, dry runs) is the generic runner's (lib/detection/tick.ts).
import type { z } from 'zod';
import {
  BUCKET_MS,
  DETECTOR,
  detectPaymentHealth,
  initialPaymentHealthState,
  lookback,
  pairKey,
  paymentHealthOverridesSchema,
  paymentHealthThresholdsSchema,
  settingsProblems,
  settledFromFor,
  upgradeState,
  type IncidentChange,
  type IncidentKind,
  type PairState,
  type PaymentSubject,
  type PaymentChannel,
  type PaymentHealthFindings,
  type PaymentHealthState,
  type SignalSet,
} from '../../detectors/payment-health/index.ts';
import { backtestPaymentHealth, type BacktestIncident } from '../backtest/payment-health.ts';
import { percent, table } from '../format.ts';
import {
  readInvalidAttempts,
  readPairSignalsIncremental,
  readTopErrorCodes,
  signalQueryFor,
  type SignalQuery,
  type WindowCache,
} from '../platform/payment-attempts.ts';
import { readPaymentChannels } from '../platform/payment-channels.ts';
import { feedAlertDrafts } from '../notifications/feed-alerts.ts';
import { insertNotifications } from '../notifications/store.ts';
import {
  defineDetector,
  detectorBaseSettings,
  refineSettings,
  type TickResult as GenericTickResult,
} from './detector.ts';
import { recordBySubject } from './record-changes.ts';

export { platformNow } from './tick.ts';
export type { DetectionContext } from './detector.ts';

export const paymentHealthConfigSchema = paymentHealthThresholdsSchema
  .extend({
    ...detectorBaseSettings,
    overrides: paymentHealthOverridesSchema,
  })
  // Combinations a single key's check cannot see: a pair that could never alert, and the like.
  .superRefine(refineSettings(settingsProblems));
export type PaymentHealthConfig = z.infer<typeof paymentHealthConfigSchema>;

/** What `detect` reads: the pair signals and channels; the query is kept for the recorder. */
interface PaymentHealthReading {
  set: SignalSet;
  channels: PaymentChannel[];
  query: SignalQuery;
}

export type TickResult = GenericTickResult<PaymentHealthFindings, IncidentChange>;

export const paymentHealth = defineDetector({
  id: DETECTOR,
  settings: paymentHealthConfigSchema,
  bucketMs: BUCKET_MS,
  initialState: initialPaymentHealthState,
  // One subject_state row per channel × region pair; the head keeps the detector-wide fields.
  subjectState: {
    split: ({ pairs, ...head }) => ({ head, subjects: pairs }),
    join: (head, subjects) => ({
      ...head,
      // An earlier release kept the pairs in the head (migration 011 moves them to rows).
      pairs: { ...head.pairs, ...(Object.fromEntries(subjects) as PaymentHealthState['pairs']) },
    }),
  },
  upgradeState,

  async prepare(ctx) {
    const channelsRead = await readPaymentChannels(ctx.platformDb, ctx.platformSchema);
    ctx.invalidRows.report('payment_channels', channelsRead.invalid, channelsRead.invalid.length);
    return { prepared: channelsRead.channels, skippedRows: channelsRead.invalid.length };
  },

  async read(
    ctx,
    {
      settings,
      now,
      evaluatedAt,
      cache: cached,
      prepared: channels,
    }: {
      settings: PaymentHealthConfig;
      now: number;
      evaluatedAt: number | null;
      cache: WindowCache | null;
      prepared: PaymentChannel[];
    },
  ) {
    const look = lookback(settings);
    const query = signalQueryFor(
      settings,
      ctx.platformSchema,
      now,
      settledFromFor(evaluatedAt, now, look.settleMs, look.windowMs),
    );
    // A cache left by an older tick is only usable when it matches the stored state's tick.
    const usable =
      cached && evaluatedAt !== null && cached.settledTo === evaluatedAt - look.settleMs ? cached : null;
    // The contract check covers the rows this tick reads as they are now: everything created
    // since the last tick's settled part began (older rows were checked by earlier ticks and no
    // longer change what the detector sees), or the whole lookback without a cache.
    const [{ set, cache }, invalid] = await Promise.all([
      readPairSignalsIncremental(ctx.platformDb, query, usable),
      readInvalidAttempts(ctx.platformDb, {
        schema: ctx.platformSchema,
        fromMs: usable ? usable.settledTo : now - look.windowMs,
        toMs: now,
      }),
    ]);
    ctx.invalidRows.report('payment_attempts', invalid.sample, invalid.count);
    return {
      signals: { set, channels, query } satisfies PaymentHealthReading,
      cache,
      skippedRows: invalid.count,
    };
  },

  detect: (signals: PaymentHealthReading, previous: PaymentHealthState, settings, now) =>
    detectPaymentHealth({ set: signals.set, channels: signals.channels }, previous, settings, now),

  async record(client, ctx, { findings, signals, previous, now, log }) {
    if (findings.feed.started)
      log.error(
        { code: 'FW_FEED_SILENT' },
        'most payment pairs went silent at once: the platform data feed looks stalled; per-pair silence is not resolved meanwhile',
      );
    if (findings.feed.ended) log.info('payment attempts are arriving again after a data-feed silence');
    const openIncidents = Object.values(findings.state.pairs).reduce(
      (n, p) => n + (p.kinds.failures.open ? 1 : 0) + (p.kinds.slow.open ? 1 : 0),
      0,
    );
    const opsNotificationIds = await insertNotifications(
      client,
      feedAlertDrafts(
        ctx.config().notifications,
        ctx.config().timezone,
        DETECTOR,
        findings.feed,
        now,
        openIncidents,
      ),
    );

    const { recorded, failed: failedSubjects } = await recordBySubject(
      client,
      findings.changes.map((change) => ({
        ...change,
        subjectKey: pairKey(change.subject.channel, change.subject.region),
      })),
      {
        log,
        describe: (c) => ({
          channel: c.subject.channel,
          region: c.subject.region,
          change: c.type,
          kind: c.kind,
        }),
        prepare: async (change) => {
          if (change.type !== 'opened') return;
          change.evidence.topErrorCodes = await readTopErrorCodes(
            ctx.platformDb,
            signals.query,
            change.subject,
            now - change.evidence.windowSeconds * 1000,
          );
        },
      },
    );
    const state = keepPrevious(findings.state, previous, failedSubjects);
    return {
      state,
      findings: { ...findings, state },
      proposed: findings.changes,
      kept: findings.changes.filter(
        (c) => !failedSubjects.includes(pairKey(c.subject.channel, c.subject.region)),
      ),
      recorded,
      failedSubjects,
      opsNotificationIds,
    };
  },

  committed(log, recorded) {
    for (const r of recorded) {
      const change = r.change;
      log.info(
        {
          incidentId: r.incidentId,
          change: change.type,
          kind: change.kind,
          channel: change.subject.channel,
          region: change.subject.region,
          ...(change.type === 'resolved' ? { reason: change.reason } : {}),
          evidence: change.evidence,
          backupChannels: change.backupChannels,
        },
        `incident ${change.type}`,
      );
    }
  },

  describe(result) {
    let out = '';
    if (result.changes.length > 0) {
      out += `${table(
        ['change', 'kind', 'channel', 'region', 'rate', 'baseline', 'window', 'backups'],
        result.changes.map((c) => [
          c.type,
          c.kind,
          c.subject.channel,
          c.subject.region,
          percent(c.evidence.rate),
          percent(c.evidence.baseline),
          `${c.evidence.windowSeconds}s`,
          c.backupChannels.join(', ') || null,
        ]),
      )}\n`;
    }
    const degraded = [...(result.findings?.assessments ?? [])].flatMap(([key, kinds]) =>
      Object.entries(kinds)
        .filter(([, a]) => a.status === 'degraded')
        .map(([kind]) => `${key} ${kind}`),
    );
    if (degraded.length > 0) out += `degraded now (confirming or open): ${degraded.join('; ')}\n`;
    return out;
  },

  // A pair's cause resolved by hand: the kind is closed in the pair's state as a recovery would
  // close it, with resolvedAt now, so no window reaching back before this moment proves a new
  // incident: trouble that goes on opens one again only once confirmed on later data.
  async resolveByHand(client, cause, at, who) {
    const { rows } = await client.query<{ state: PairState }>(
      'SELECT state FROM forewarn.subject_state WHERE detector = $1 AND subject_key = $2 FOR UPDATE',
      [DETECTOR, cause.subjectKey],
    );
    const pair = rows[0]?.state;
    const kind = cause.kind as IncidentKind;
    const open = pair?.kinds[kind]?.open ?? null;
    if (pair)
      await client.query(
        'UPDATE forewarn.subject_state SET state = $3, updated_at = now() WHERE detector = $1 AND subject_key = $2',
        [
          DETECTOR,
          cause.subjectKey,
          {
            ...pair,
            kinds: {
              ...pair.kinds,
              [kind]: {
                degradedSince: null,
                lastDegradedAt: null,
                healthySince: null,
                open: null,
                resolvedAt: at,
              },
            },
          } satisfies PairState,
        ],
      );
    const subject = cause.subject as unknown as PaymentSubject;
    const evidence = open?.evidence ?? ({} as IncidentChange['evidence']);
    return {
      type: 'resolved',
      detector: DETECTOR,
      subject,
      subjectKey: cause.subjectKey,
      kind,
      openedAt: cause.openedAt,
      at: Math.max(at, cause.openedAt),
      // Resolved by a person: users hear it is over, as after a recovery.
      reason: 'recovered',
      evidence,
      openEvidence: evidence,
      backupChannels: cause.backupChannels,
      byHand: who,
    };
  },

  async backtest(run) {
    const stored = (run.storedState as PaymentHealthState | null) ?? null;
    const report = await backtestPaymentHealth({
      ...run,
      // A daemon that has not learned a pair yet stores no baselines: that is a warm-up's case.
      storedState: stored && Object.keys(stored.pairs ?? {}).length > 0 ? stored : null,
    });
    return {
      incidents: report.incidents,
      ticks: report.ticks,
      stats: {
        ticks: report.ticks,
        attemptsRead: report.attemptsRead,
        baselinesFrom: report.baselinesFrom,
        warmupMinutes: Math.round(report.warmupMs / 60_000),
        skippedRows: report.skippedRows,
        elapsedMs: Math.round(report.elapsedMs),
      },
      skippedSample: report.skippedSample,
      summary: backtestSummary(report.incidents, report.ticks),
      ...(report.report ? { report: report.report } : {}),
    };
  },
});

/** One live payment-health pass (the detection job and `forewarn run payment-health`). */
export const runPaymentHealthTick = paymentHealth.run;

/** The new state, except that pairs whose change failed keep their previous state. */
function keepPrevious(
  next: PaymentHealthState,
  previous: PaymentHealthState,
  keys: string[],
): PaymentHealthState {
  if (keys.length === 0) return next;
  const pairs = { ...next.pairs };
  for (const key of keys) {
    const before = previous.pairs[key];
    if (before) pairs[key] = before;
    else delete pairs[key];
  }
  return { ...next, pairs };
}

function backtestSummary(incidents: BacktestIncident[], ticks: number): string {
  if (incidents.length === 0) return `no incidents in ${ticks} ticks\n`;
  const rows = incidents.map((i) => [
    i.subject.channel,
    i.subject.region,
    i.kind,
    i.openedAt,
    i.resolvedAt ?? 'still open',
    i.resolvedAt ? `${Math.round((Date.parse(i.resolvedAt) - Date.parse(i.openedAt)) / 60_000)} min` : null,
    `${percent(i.evidence.rate)} vs ${percent(i.evidence.baseline)}`,
    i.backupChannels.join(', ') || null,
  ]);
  return `${table(['channel', 'region', 'kind', 'opened', 'resolved', 'lasted', 'rate vs baseline', 'backups'], rows)}\n${incidents.length} incident(s) in ${ticks} ticks\n`;
}
