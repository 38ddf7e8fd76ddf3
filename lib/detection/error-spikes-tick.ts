// The error-spikes watcher's registry entry (ops only): its settings (config key
// detectors.errorSpikes), its reader (the error codes of payment attempts created since the last
// tick's settle horizon, each code's stored counts in forewarn.subject_state, the open
// incidents), its pure detector (detectors/error-spikes) and its recorder (incidents and outbox
// events, one savepoint per change; each evaluated code's counts). The tick itself (lock, stale
// guard, run records, dry runs) is the generic runner's (lib/detection/tick.ts).
import type { z } from 'zod';
import {
  BUCKET_MS,
  DETECTOR,
  RULES,
  detectErrorSpikes,
  errorSpikesThresholdsSchema,
  horizonsAt,
  initialErrorSpikesState,
  settingsProblems,
  upgradeState,
  type CodeCounts,
  type ErrorSpikesFindings,
  type ErrorSpikesSignals,
  type ErrorSpikesState,
  type Rule,
  type SpikeChange,
} from '../../detectors/error-spikes/index.ts';
import { table } from '../format.ts';
import { readAllOpenCauses } from '../incidents/open-causes.ts';
import { readSubjectStatePage, readSubjectStates, saveSubjectStates } from '../incidents/store.ts';
import { readErrorExamples, readErrorOccurrences, readFirstAttemptAt } from '../platform/error-codes.ts';
import { readInvalidAttempts } from '../platform/payment-attempts.ts';
import {
  defineDetector,
  detectorBaseSettings,
  refineSettings,
  type TickResult as GenericTickResult,
} from './detector.ts';
import { recordBySubject } from './record-changes.ts';

export const errorSpikesConfigSchema = errorSpikesThresholdsSchema
  .extend(detectorBaseSettings)
  .superRefine(refineSettings(settingsProblems));
export type ErrorSpikesConfig = z.infer<typeof errorSpikesConfigSchema>;

/**
 * What the reader keeps between ticks (the detector state row's cache): where the settled part
 * ends, since when counts are known and under which reading (epoch), and where the sweep is.
 * Without it, or when the windows change, the whole range is read again under a new epoch and
 * every code's older counts are dropped as it is next evaluated.
 */
interface ReaderCache {
  v: 1;
  epoch: number;
  knownFrom: number;
  settledTo: number;
  /** The settings the counts were made under. */
  shape: string;
  sweepAfter: string | null;
}

function shapeOf(settings: ErrorSpikesConfig): string {
  return JSON.stringify([
    settings.settleMinutes,
    settings.count.windowDays,
    settings.count.baselineWeeks,
    settings.surge.windowMinutes,
  ]);
}

export type TickResult = GenericTickResult<ErrorSpikesFindings, SpikeChange>;

export const errorSpikes = defineDetector({
  id: DETECTOR,
  settings: errorSpikesConfigSchema,
  bucketMs: BUCKET_MS,
  initialState: initialErrorSpikesState,
  upgradeState,

  async read(
    ctx,
    {
      settings,
      now,
      cache,
    }: { settings: ErrorSpikesConfig; now: number; evaluatedAt: number | null; cache: ReaderCache | null },
  ) {
    const h = horizonsAt(settings, now);
    const usable =
      cache !== null && cache.v === 1 && cache.shape === shapeOf(settings) && cache.settledTo <= now;
    const epoch = usable ? cache.epoch : now;
    // A full reading knows the baseline weeks, or the platform's whole history when it is younger.
    const knownFrom = usable
      ? cache.knownFrom
      : Math.max(h.baselineFrom, (await readFirstAttemptAt(ctx.platformDb, ctx.platformSchema)) ?? now);
    const fromMs = usable ? Math.max(cache.settledTo, h.baselineFrom) : h.baselineFrom;
    const settledTo = Math.max(fromMs, now - h.settleMs);
    const query = {
      schema: ctx.platformSchema,
      fromMs,
      settledTo,
      nowMs: now,
      surgeFrom: h.surgeFrom,
      windowFrom: h.windowFrom,
      examplesFrom: h.windowFrom,
      examplesPerCode: settings.evidence.exampleIds,
    };
    const [occurrences, examples, invalid, open, sweep] = await Promise.all([
      readErrorOccurrences(ctx.platformDb, query),
      readErrorExamples(ctx.platformDb, query),
      readInvalidAttempts(ctx.platformDb, { schema: ctx.platformSchema, fromMs, toMs: now }),
      readAllOpenCauses(ctx.db, DETECTOR),
      readSubjectStatePage<CodeCounts>(
        ctx.db,
        DETECTOR,
        usable ? cache.sweepAfter : null,
        settings.sweepCodes,
      ),
    ]);
    ctx.invalidRows.report('payment_attempts', invalid.sample, invalid.count);
    const seen = new Set([
      ...occurrences.settled.map((o) => o.code),
      ...occurrences.recent.map((o) => o.code),
      ...open.map((o) => o.subjectKey),
    ]);
    for (const s of sweep) seen.delete(s.subjectKey);
    const stored = await readSubjectStates<CodeCounts>(ctx.db, DETECTOR, [...seen]);
    const counts: Record<string, CodeCounts> = Object.fromEntries(stored);
    for (const s of sweep) counts[s.subjectKey] = s.state;
    const signals: ErrorSpikesSignals = {
      epoch,
      knownFrom,
      settled: { occurrences: occurrences.settled, examples: examples.settled },
      recent: { occurrences: occurrences.recent, examples: examples.recent },
      counts,
      swept: sweep.map((s) => s.subjectKey),
      open: open
        .filter((o) => (RULES as readonly string[]).includes(o.kind))
        .map((o) => ({ code: o.subjectKey, rule: o.kind as Rule, openedAt: o.openedAt })),
    };
    const next: ReaderCache = {
      v: 1,
      epoch,
      knownFrom,
      settledTo,
      shape: shapeOf(settings),
      // A short page means the sweep went round: it starts again from the first code.
      sweepAfter: sweep.length < settings.sweepCodes ? null : sweep[sweep.length - 1]!.subjectKey,
    };
    return { signals, cache: next, skippedRows: invalid.count };
  },

  detect: (signals: ErrorSpikesSignals, previous: ErrorSpikesState, settings, now) =>
    detectErrorSpikes(signals, previous, settings, now),

  async record(client, _ctx, { findings, log }) {
    const { recorded, failed: failedSubjects } = await recordBySubject(client, findings.changes, {
      log,
      describe: (c) => ({ code: c.code, change: c.type, rule: c.kind }),
    });
    // Counts are saved whatever was recorded: the incidents table, read every tick, says what is open.
    await saveSubjectStates(
      client,
      DETECTOR,
      findings.saved.map((s) => ({ subjectKey: s.code, state: s.counts })),
    );
    return {
      state: findings.state,
      findings,
      proposed: findings.changes,
      kept: recorded.map((r) => r.change),
      recorded,
      failedSubjects,
      opsNotificationIds: [],
    };
  },

  committed(log, recorded) {
    for (const r of recorded) {
      const change = r.change;
      log.info(
        {
          incidentId: r.incidentId,
          change: change.type,
          rule: change.kind,
          errorCode: change.code,
          ...(change.type === 'resolved' ? { reason: change.reason } : {}),
          evidence: change.evidence,
        },
        `error-code ${change.kind} incident ${change.type}`,
      );
    }
  },

  describe(result) {
    let out = '';
    if (result.changes.length > 0) {
      out += `${table(
        ['change', 'rule', 'code', 'now', 'usual', 'window', 'top channels', 'top regions'],
        result.changes.map((c) => [
          c.type,
          c.kind,
          c.code,
          c.evidence.countNow,
          c.evidence.countBefore,
          windowLabel(c.evidence.windowMinutes),
          c.evidence.topChannels.map((p) => `${p.channel} ${p.count}`).join(', ') || null,
          c.evidence.topRegions.map((p) => `${p.region} ${p.count}`).join(', ') || null,
        ]),
      )}\n`;
    }
    const busiest = (result.findings?.assessments ?? []).slice(0, 10);
    if (busiest.length > 0) {
      out += `codes seen (busiest first): ${busiest
        .map(
          (a) =>
            `${a.code} ${a.count.countNow} in ${windowLabel(a.count.windowMinutes)} (usually ${a.count.countBefore}), ${a.surge.countNow} in ${windowLabel(a.surge.windowMinutes)}${a.open.length > 0 ? ` [open: ${a.open.join(', ')}]` : ''}`,
        )
        .join('; ')}\n`;
    }
    return out;
  },
});

function windowLabel(minutes: number): string {
  if (minutes % (24 * 60) === 0) return `${minutes / (24 * 60)} d`;
  if (minutes % 60 === 0) return `${minutes / 60} h`;
  return `${minutes} min`;
}

/** One live error-spikes pass (the detection job and `forewarn run error-spikes`). */
export const runErrorSpikesTick = errorSpikes.run;
