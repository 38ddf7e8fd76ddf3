// A paged pass: how the tick runner evaluates a watcher of more subjects than one reading can hold
// (a catalogue of products, a user base). It reads a page of subjects' signals, that page's states
// from forewarn.subject_state, runs the watcher's pure `detect` on the page, and records the page's
// cause changes (a savepoint a subject) and changed states before it reads on, so a pass over
// millions of subjects takes the memory of one page. Then it sweeps the stored subjects the
// platform no longer has, a page at a time too. All in the tick's transaction: a dry run rolls
// it all back.
import type { PoolClient } from '../db/pool.ts';
import {
  readSubjectStatePage,
  readSubjectStates,
  saveSubjectStates,
  type CauseChange,
  type RecordedChange,
} from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import { readAhead } from '../read-ahead.ts';
import type { DetectedChange, DetectionContext, Recording } from './detector.ts';
import { recordBySubject } from './record-changes.ts';

/** What the pure detector finds on one page. */
export interface PageFindings<SubjectState, Change, Tally> {
  changes: Change[];
  /** The subjects whose state changed, and their new state (null: nothing left to remember). */
  updates: Array<{ subjectKey: string; state: SubjectState | null }>;
  /** The page's counts, summed over the pass (`addTally`). */
  tally: Tally;
}

/** What a pass saw: for `forewarn run` and the tick's result. */
export interface PassFindings<Tally> {
  subjects: number;
  pages: number;
  /** Stored subjects the platform no longer has (their causes ended). */
  gone: number;
  tally: Tally;
}

export interface PagedPass<Settings, Signals, SubjectSignals, SubjectState, Change, Tally> {
  /** The subjects' signals a page at a time, in key order (`signals`: what `read` found first). */
  pages: (
    ctx: DetectionContext,
    tick: { settings: Settings; now: number; signals: Signals },
  ) => AsyncIterable<readonly SubjectSignals[]>;
  keyOf: (subject: SubjectSignals) => string;
  /** Pure: no I/O, no clock. `states` holds the page's subjects that have one. */
  detect: (
    page: readonly SubjectSignals[],
    states: ReadonlyMap<string, SubjectState>,
    settings: Settings,
    now: number,
  ) => PageFindings<SubjectState, Change, Tally>;
  emptyTally: () => Tally;
  addTally: (total: Tally, page: Tally) => Tally;
  /** How many stored states a page of the sweep reads. */
  pageSize: (settings: Settings) => number;
  /** The stored subjects the platform no longer has: which of `keys` it still has. */
  existing: (ctx: DetectionContext, keys: readonly string[]) => Promise<ReadonlySet<string>>;
  /** Pure: the changes that end a subject the platform no longer has. */
  detectGone: (subjectKey: string, state: SubjectState, now: number) => Change[];
  /** The fields that name a change of a subject that could not be recorded, in the error line. */
  describeChange: (change: Change) => Record<string, unknown>;
}

/** Runs a paged pass in the tick's transaction; the detector-wide state is kept as it was. */
export async function runPass<
  Settings,
  Signals,
  SubjectSignals,
  SubjectState,
  Change extends DetectedChange & CauseChange,
  Tally,
  State,
>(
  client: PoolClient,
  ctx: DetectionContext,
  detector: { id: string; pass: PagedPass<Settings, Signals, SubjectSignals, SubjectState, Change, Tally> },
  tick: { signals: Signals; previous: State; settings: Settings; now: number; log: Logger },
): Promise<Recording<State, PassFindings<Tally>, Change>> {
  const { pass } = detector;
  const { settings, now } = tick;
  const recorder = new PassRecorder<SubjectState, Change>(client, detector.id, tick.log, pass.describeChange);
  const findings: PassFindings<Tally> = { subjects: 0, pages: 0, gone: 0, tally: pass.emptyTally() };
  for await (const page of readAhead(pass.pages(ctx, { settings, now, signals: tick.signals }))) {
    const states = await readSubjectStates<SubjectState>(client, detector.id, page.map(pass.keyOf));
    const found = pass.detect(page, states, settings, now);
    await recorder.apply(found.changes, found.updates);
    findings.subjects += page.length;
    findings.pages++;
    findings.tally = pass.addTally(findings.tally, found.tally);
  }

  const pageSize = pass.pageSize(settings);
  let after: string | null = null;
  for (;;) {
    const stored: Array<{ subjectKey: string; state: SubjectState }> =
      await readSubjectStatePage<SubjectState>(client, detector.id, after, pageSize);
    if (stored.length === 0) break;
    const existing = await pass.existing(
      ctx,
      stored.map((s) => s.subjectKey),
    );
    const gone = stored.filter((s) => !existing.has(s.subjectKey));
    await recorder.apply(
      gone.flatMap((s) => pass.detectGone(s.subjectKey, s.state, now)),
      gone.map((s) => ({ subjectKey: s.subjectKey, state: null })),
    );
    findings.gone += gone.length;
    after = stored.at(-1)!.subjectKey;
    if (stored.length < pageSize) break;
  }

  return {
    state: tick.previous,
    findings,
    proposed: recorder.proposed,
    kept: recorder.recorded.map((r) => r.change),
    recorded: recorder.recorded,
    failedSubjects: recorder.failed,
    opsNotificationIds: [],
  };
}

/**
 * A pass's changes and states, page by page: a subject whose change cannot be recorded keeps its
 * previous state (and is tried again next tick); only changed states are written.
 */
class PassRecorder<SubjectState, Change extends CauseChange> {
  readonly proposed: Change[] = [];
  readonly recorded: RecordedChange<Change>[] = [];
  readonly failed: string[] = [];

  constructor(
    private readonly client: PoolClient,
    private readonly detector: string,
    private readonly log: Logger,
    private readonly describe: (change: Change) => Record<string, unknown>,
  ) {}

  async apply(
    changes: readonly Change[],
    updates: ReadonlyArray<{ subjectKey: string; state: SubjectState | null }>,
  ): Promise<void> {
    this.proposed.push(...changes);
    const { recorded, failed } = await recordBySubject(this.client, changes, {
      log: this.log,
      describe: this.describe,
    });
    this.recorded.push(...recorded);
    this.failed.push(...failed);
    const keep = new Set(failed);
    await saveSubjectStates(
      this.client,
      this.detector,
      updates.filter((u) => !keep.has(u.subjectKey)),
    );
  }
}
