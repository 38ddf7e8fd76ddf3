// What a watcher declares to plug into the spine, once: its id, its settings (embedded in the
// config under `detectors.<configKey>`), its schedule (from those settings), how it reads its
// signals, its pure `detect`, and how its findings are recorded. The scheduler, the tick runner,
// the detection jobs and the CLI know a watcher only through this interface (lib/detection/registry.ts
// lists them); where one of them would need to name a watcher, this interface is missing a field.
import { z } from 'zod';
import { cronExpression } from '../config/cron.ts';
import type { Config } from '../config/schema.ts';
import type { ReportPart } from '../backtest/report-series.ts';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import type { CauseChange, RecordedChange } from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import type { InvalidRowReporter } from '../platform/invalid-rows.ts';
import type { PagedPass, PassFindings } from './paged.ts';
import { readStoredState } from './state.ts';
import { runTick } from './tick.ts';

/** Settings every detector has, read by the scheduler and the tick runner. */
export const detectorBaseSettings = {
  /** false stops the schedule; `forewarn run <detector>` still works by hand. */
  enabled: z.boolean(),
  /** When the detector runs, in cron syntax with seconds. */
  schedule: cronExpression,
  /** A tick further ahead of the platform database's clock than this is refused. */
  maxClockSkewSeconds: z.number().int().positive(),
};
/** A combination of settings that no single key's check can see, as a detector reports it. */
export interface SettingsProblem {
  path: string[];
  expected: string;
  found: unknown;
}

/**
 * A settings schema's cross-key check (zod's superRefine): each problem the detector's own check
 * finds becomes an issue at its path, "expected ..." with what was found.
 */
export function refineSettings<T>(problems: (settings: T) => readonly SettingsProblem[]) {
  return (settings: T, ctx: z.RefinementCtx): void => {
    for (const problem of problems(settings))
      ctx.addIssue({
        code: 'custom',
        path: problem.path,
        message: `expected ${problem.expected}`,
        input: problem.found,
      });
  };
}

export interface DetectorBaseSettings {
  enabled: boolean;
  schedule: string;
  maxClockSkewSeconds: number;
}

export interface DetectionContext {
  db: Pool;
  platformDb: Pool;
  platformSchema: string;
  config: () => Config;
  logger: Logger;
  workerId: string;
  invalidRows: InvalidRowReporter;
}

/** A change a detector's findings hold: what `forewarn run --format json` prints, one a line. */
export interface DetectedChange {
  type: string;
  at: number;
}

export interface TickResult<Findings = unknown, Change extends DetectedChange = DetectedChange> {
  tickAt: number;
  outcome: 'evaluated' | 'stale' | 'refused';
  /** Why a tick was refused. */
  detail?: string;
  /**
   * The changes recorded (a dry run: every change the findings hold). A live paged pass keeps
   * the first thousands in full, so that its memory does not grow with what it records;
   * `changeCount` counts them all.
   */
  changes: Change[];
  recorded: RecordedChange[];
  changeCount: number;
  /** The outbox event of every change recorded, for the fan-out. */
  eventIds: string[];
  findings: Findings | null;
  skippedRows: number;
  /** Subjects whose change could not be recorded; they are tried again next tick. */
  failedSubjects: string[];
  /** Ops notifications the tick recorded itself (e.g. a data-feed fault), for the delivery queue. */
  opsNotificationIds: string[];
}

/** What the reader hands the tick: the signals for `detect`, its cache, rows it had to skip. */
export interface Reading<Signals, Cache> {
  signals: Signals;
  cache: Cache | null;
  skippedRows: number;
}

/** What the recorder wrote in the tick's transaction. */
export interface Recording<State, Findings, Change> {
  /** The state to save (subjects whose change failed keep their previous state). */
  state: State;
  /** The findings as recorded (with that state), for the tick's result. */
  findings: Findings;
  /** Every change the findings hold, and those recorded. */
  proposed: Change[];
  kept: Change[];
  recorded: RecordedChange<Change & CauseChange>[];
  /** Changes recorded beyond those kept in full (a live paged pass): how many, and their events. */
  omitted?: { changes: number; eventIds: string[] };
  failedSubjects: string[];
  opsNotificationIds: string[];
}

export interface BacktestRun<Settings> {
  platformDb: Pool;
  schema: string;
  settings: Settings;
  fromMs: number;
  toMs: number;
  stepMs: number;
  warmupMs: number;
  /** The live daemon's stored state for this detector, when forewarn's database has one. */
  storedState: unknown;
  onProgress?: (progress: { ticksDone: number; ticksTotal: number }) => void;
  /**
   * Record the series of the HTML report (`--format html`): the backtest then returns `report`,
   * its charts per subject downsampled to about `buckets` buckets (lib/backtest/report-series.ts).
   */
  report?: { buckets?: number };
}

export interface BacktestOutcome {
  /** What `--format json` prints, as one array. */
  incidents: unknown[];
  ticks: number;
  /** Fields of the "backtest finished" log line. */
  stats: Record<string, unknown>;
  skippedSample: Array<{ table: string; id: string; reason: string }>;
  /** The summary for people (`--format table`). */
  summary: string;
  /** What the HTML report draws, when `run.report` asked for it. */
  report?: ReportPart;
}

/**
 * A state kept one row per subject (forewarn.subject_state) beside a detector-wide head
 * (forewarn.detector_state.state): the tick runner reads the rows with the head and writes back
 * only the subjects whose state changed. For watchers of thousands of subjects, read whole every
 * tick; a watcher of millions pages its subjects (`pass`, lib/detection/paged.ts) instead.
 */
export interface SubjectStateLayout<State> {
  split: (state: State) => { head: object; subjects: Readonly<Record<string, unknown>> };
  /** `head` as stored: an earlier release's may still hold its subjects. */
  join: (head: State, subjects: ReadonlyMap<string, unknown>) => State;
}

/**
 * What a watcher declares. Its evaluation takes one of two forms: a whole tick (`detect` over one
 * reading, then `record`), or a paged pass (`pass`) for more subjects than one reading can hold.
 */
export type DetectorDefinition<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  State,
  Cache,
  Signals,
  Findings,
  Change extends DetectedChange,
  Prepared = undefined,
  SubjectSignals = never,
  SubjectState = never,
  Tally = never,
  Fact = never,
> = DetectorCommon<Id, S, State, Cache, Signals, Findings, Change, Prepared> &
  (
    | WholeTick<S, State, Signals, Findings, Change>
    | PagedTick<S, Signals, Change, SubjectSignals, SubjectState, Tally, Fact>
  );

/** A whole tick: the pure detector sees every subject's signals at once. */
export interface WholeTick<S extends z.ZodType<DetectorBaseSettings>, State, Signals, Findings, Change> {
  /** Pure: no I/O, no clock. */
  detect: (signals: Signals, previous: State, settings: z.infer<S>, now: number) => Findings;
  /** Records the findings (incidents, outbox events) in the tick's transaction. */
  record: (
    client: PoolClient,
    ctx: DetectionContext,
    tick: {
      findings: Findings;
      signals: Signals;
      previous: State;
      settings: z.infer<S>;
      now: number;
      log: Logger;
    },
  ) => Promise<Recording<State, Findings, Change>>;
  pass?: never;
}

/** A paged pass (lib/detection/paged.ts): its findings are the pass's counts. */
export interface PagedTick<
  S extends z.ZodType<DetectorBaseSettings>,
  Signals,
  Change,
  SubjectSignals,
  SubjectState,
  Tally,
  Fact,
> {
  pass: PagedPass<z.infer<S>, Signals, SubjectSignals, SubjectState, Change & CauseChange, Tally, Fact>;
  detect?: never;
  record?: never;
}

export interface DetectorCommon<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  State,
  Cache,
  Signals,
  Findings,
  Change extends DetectedChange,
  Prepared,
> {
  /** Kebab case: the CLI argument, the `detector` column, the tick job ids. */
  id: Id;
  /** Its settings: embedded in the config under `detectors.<camelCase id>`. */
  settings: S;
  /** Ticks are evaluated at multiples of this many milliseconds (rounded down). */
  bucketMs: number;
  initialState: () => State;
  /** Where the state is kept one row per subject; without it, one JSON document. */
  subjectState?: SubjectStateLayout<State>;
  /** A stored state as an earlier release saved it, brought to today's shape. */
  upgradeState: (stored: State) => State;
  /**
   * Reads what does not depend on the stored state, before the tick's transaction, so that the
   * state row is not locked meanwhile (a platform's reference tables). Its skipped rows count
   * for stale ticks too.
   */
  prepare?: (
    ctx: DetectionContext,
    settings: z.infer<S>,
  ) => Promise<{ prepared: Prepared; skippedRows: number }>;
  /** Reads the tick's signals from the platform (in the tick's transaction, after the lock). */
  read: (
    ctx: DetectionContext,
    tick: {
      settings: z.infer<S>;
      now: number;
      evaluatedAt: number | null;
      cache: Cache | null;
      prepared: Prepared;
    },
  ) => Promise<Reading<Signals, Cache>>;
  /** Logs what a committed tick recorded (`recorded`: those kept in full, of `changeCount`). */
  committed?: (log: Logger, recorded: RecordedChange<Change & CauseChange>[], changeCount: number) => void;
  /** Lines `forewarn run` prints after its one-line header. */
  describe: (result: TickResult<Findings, Change>) => string;
  /** Replays stored history (`forewarn backtest --detector <id>`), where history exists. */
  backtest?: (run: BacktestRun<z.infer<S>>) => Promise<BacktestOutcome>;
  /**
   * Resolving one of its causes by hand (`forewarn incidents resolve`), in the caller's
   * transaction, which holds the detector's state row locked: the resolve change as the detector
   * would record it, with the cause released in the detector's own state. Absent: not possible.
   */
  resolveByHand?: ResolveByHand;
}

/** An open cause as `incidents resolve` hands it to its detector. */
export interface HandResolvedCause {
  id: string;
  subjectKey: string;
  subject: Record<string, unknown>;
  kind: string;
  openedAt: number;
  backupChannels: string[];
}

export type ResolveByHand = (
  client: PoolClient,
  cause: HandResolvedCause,
  at: number,
  who: { actor: string; reason: string },
) => Promise<CauseChange>;

/** A registered detector, its types erased: what the spine iterates over. */
export interface Detector<
  Id extends string = string,
  S extends z.ZodType<DetectorBaseSettings> = z.ZodType<DetectorBaseSettings>,
> {
  id: Id;
  /** Its key under `detectors` in the config. */
  configKey: string;
  settings: S;
  settingsOf: (config: Config) => z.infer<S>;
  tick: (ctx: DetectionContext, tickAt: number, options?: { dryRun?: boolean }) => Promise<TickResult>;
  describe: (result: TickResult) => string;
  /** The state the live daemon stored (null before its first tick), as `backtest` takes it. */
  readStoredState: (db: Queryable) => Promise<unknown>;
  backtest?(run: BacktestRun<z.infer<S>>): Promise<BacktestOutcome>;
  resolveByHand?: ResolveByHand;
}

/** A registered detector with its typed tick, for the detector's own callers and tests. */
export type DefinedDetector<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  Findings,
  Change extends DetectedChange,
> = Detector<Id, S> & {
  run: (
    ctx: DetectionContext,
    tickAt: number,
    options?: { dryRun?: boolean },
  ) => Promise<TickResult<Findings, Change>>;
};

/**
 * Declares a watcher whose pass is paged (see lib/detection/paged.ts); its findings are the pass's
 * counts and it keeps no cache.
 */
export function definePagedDetector<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  State,
  Signals,
  Change extends DetectedChange & CauseChange,
  SubjectSignals,
  SubjectState,
  Tally,
  Fact,
  Prepared = undefined,
>(
  definition: DetectorCommon<Id, S, State, null, Signals, PassFindings<Tally>, Change, Prepared> &
    PagedTick<S, Signals, Change, SubjectSignals, SubjectState, Tally, Fact>,
): DefinedDetector<Id, S, PassFindings<Tally>, Change> {
  return defineDetector(definition);
}

/** `stock-levels` → `stockLevels`: a detector's config key is its id in camel case. */
export function configKeyOf(id: string): string {
  return id.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export type ConfigKeyOf<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<ConfigKeyOf<Tail>>}`
  : S;

export function defineDetector<
  Id extends string,
  S extends z.ZodType<DetectorBaseSettings>,
  State,
  Cache,
  Signals,
  Findings,
  Change extends DetectedChange,
  Prepared = undefined,
  SubjectSignals = never,
  SubjectState = never,
  Tally = never,
  Fact = never,
>(
  definition: DetectorDefinition<
    Id,
    S,
    State,
    Cache,
    Signals,
    Findings,
    Change,
    Prepared,
    SubjectSignals,
    SubjectState,
    Tally,
    Fact
  >,
): DefinedDetector<Id, S, Findings, Change> {
  if (!/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(definition.id))
    throw new Error(`detector id "${definition.id}": expected kebab case such as "stock-levels"`);
  const configKey = configKeyOf(definition.id);
  const settingsOf = (config: Config) =>
    (config.detectors as unknown as Record<string, z.infer<S>>)[configKey]!;
  const run = (ctx: DetectionContext, tickAt: number, options: { dryRun?: boolean } = {}) =>
    runTick(definition, settingsOf(ctx.config()), ctx, tickAt, options);
  return {
    id: definition.id,
    configKey,
    settings: definition.settings,
    settingsOf,
    run,
    tick: run as Detector['tick'],
    describe: definition.describe as Detector['describe'],
    readStoredState: (db) => readStoredState(definition, db),
    ...(definition.backtest ? { backtest: definition.backtest } : {}),
    ...(definition.resolveByHand ? { resolveByHand: definition.resolveByHand } : {}),
  };
}
