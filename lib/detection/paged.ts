// A paged pass: how the tick runner evaluates a watcher of more subjects than one reading can hold
// (a catalogue of products, a user base). It reads a page of subjects' signals, that page's states
// from forewarn.subject_state, runs the watcher's pure `detect` on the page, and records the page's
// cause changes (set-based, falling back to a savepoint a subject) and changed states before it
// reads on, so a pass over millions of subjects takes the memory of one page. A watcher may pace
// itself: at most `limit` subjects get changes recorded per pass, the rest wait for the next.
// Then it sweeps the stored subjects, a page at a time too: the watcher's pure `sweep` ends those
// whose cause the platform's facts no longer bear out (a product removed, a user who came back).
// A pass whose pages come in the order of a number (`position`) reads each page's states as one
// range of that number and sweeps, page by page, only the states in the range no subject matched,
// then those below the last page; the states its pages matched are not read twice.
// All in the tick's transaction: a dry run rolls it all back.
import type { PoolClient } from '../db/pool.ts';
import {
  readPositionedStatePage,
  readSubjectStatesBetween,
  readSubjectStates,
  readUnpositionedStatePage,
  saveSubjectStates,
  type CauseChange,
  type PositionedState,
  type RecordedChange,
  type SubjectStateWrite,
} from '../incidents/store.ts';
import type { Logger } from '../logger.ts';
import { readAhead } from '../read-ahead.ts';
import type { DetectedChange, DetectionContext, Recording } from './detector.ts';
import { recordInBulk } from './record-changes.ts';

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
  /** Stored subjects the sweep ended (the platform no longer bears their cause out). */
  gone: number;
  /**
   * Subjects whose changes wait for a later pass because this one reached its `limit`: live, those
   * of the page it stopped in (more may follow it); a dry run reads on and counts them all.
   */
  deferred: number;
  /** Whether the pass stopped at its limit. */
  limited: boolean;
  tally: Tally;
}

export interface PassPositions<SubjectSignals, SubjectState> {
  ofSubject: (subject: SubjectSignals) => number;
  ofState: (state: SubjectState) => number;
}

export interface PagedPass<Settings, Signals, SubjectSignals, SubjectState, Change, Tally, Fact = true> {
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
  /**
   * Pacing: at most this many subjects get changes recorded in one pass (from what `read` found,
   * e.g. a rate times the time since the last pass); the pass stops reading there. Absent: no limit.
   */
  limit?: (signals: Signals, settings: Settings) => number;
  /**
   * For a pass whose pages come in descending order of a number (e.g. when a subject's period
   * began): that number for a subject, and for a stored state (equal while the state is the
   * subject's current one). Each page's states are then read as one range of positions, and only
   * the states in it that no page subject matched are swept, so a steady pass looks nothing up
   * twice. Absent: a page's states are looked up by key, and the sweep walks every stored state.
   */
  position?: PassPositions<SubjectSignals, SubjectState>;
  /** How many stored states a page of the sweep reads. */
  pageSize: (settings: Settings) => number;
  /** What the platform has of stored subjects, for the sweep: a subject it no longer has is absent. */
  lookup: (
    ctx: DetectionContext,
    keys: readonly string[],
    settings: Settings,
  ) => Promise<ReadonlyMap<string, Fact>>;
  /**
   * Pure: the changes that end a stored subject's cause (its state is then dropped), or null while
   * it stands. `fact` is what `lookup` found (undefined: the platform no longer has the subject).
   */
  sweep: (
    subjectKey: string,
    state: SubjectState,
    fact: Fact | undefined,
    settings: Settings,
    now: number,
  ) => Change[] | null;
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
  Fact,
>(
  client: PoolClient,
  ctx: DetectionContext,
  detector: {
    id: string;
    pass: PagedPass<Settings, Signals, SubjectSignals, SubjectState, Change, Tally, Fact>;
  },
  tick: {
    signals: Signals;
    previous: State;
    settings: Settings;
    now: number;
    log: Logger;
    /** A dry run ignores the limit, so that it lists everything due. */
    dryRun?: boolean;
  },
): Promise<Recording<State, PassFindings<Tally>, Change>> {
  const { pass } = detector;
  const { settings, now } = tick;
  const recorder = new PassRecorder<SubjectState, Change>(
    client,
    detector.id,
    tick.log,
    pass.describeChange,
    {
      keepAll: tick.dryRun === true,
    },
  );
  const findings: PassFindings<Tally> = {
    subjects: 0,
    pages: 0,
    gone: 0,
    deferred: 0,
    limited: false,
    tally: pass.emptyTally(),
  };
  let room = pass.limit ? Math.max(0, Math.floor(pass.limit(tick.signals, settings))) : Infinity;
  const sweep = async (stored: ReadonlyArray<{ subjectKey: string; state: SubjectState }>) => {
    if (stored.length === 0) return;
    const facts = await pass.lookup(
      ctx,
      stored.map((s) => s.subjectKey),
      settings,
    );
    const ended = stored.flatMap((s) => {
      const changes = pass.sweep(s.subjectKey, s.state, facts.get(s.subjectKey), settings, now);
      return changes === null ? [] : [{ subjectKey: s.subjectKey, changes }];
    });
    await recorder.apply(
      ended.flatMap((e) => e.changes),
      ended.map((e) => ({ subjectKey: e.subjectKey, state: null })),
    );
    findings.gone += ended.length;
  };
  const positioned = new PositionedReads(client, detector.id, pass.position);

  for await (const page of readAhead(pass.pages(ctx, { settings, now, signals: tick.signals }))) {
    const { states, unmatched } = await positioned.statesOf(page, pass.keyOf);
    const found = pass.detect(page, states, settings, now);
    const { kept, deferred } = withinLimit(found, room);
    room -= kept.subjects;
    findings.deferred += deferred;
    findings.subjects += page.length;
    findings.pages++;
    findings.tally = pass.addTally(findings.tally, found.tally);
    const limited = !tick.dryRun && deferred > 0;
    await recorder.apply(limited ? kept.changes : found.changes, positioned.writes(limited ? kept : found));
    // States in this page's range that no subject of it matched: the platform may no longer bear
    // them out (the user came back, or is no longer active).
    await sweep(unmatched);
    if (limited) {
      findings.limited = true;
      break;
    }
  }

  // Then the stored states below the last page's range (or all, without positions).
  const pageSize = pass.pageSize(settings);
  if (pass.position) {
    let after: { position: number; subjectKey: string } | null = null;
    for (;;) {
      const stored: Array<PositionedState<SubjectState>> = await readPositionedStatePage<SubjectState>(
        client,
        detector.id,
        positioned.lowest,
        after,
        pageSize,
      );
      await sweep(stored);
      if (stored.length < pageSize) break;
      after = stored.at(-1)!;
    }
  }
  let after: string | null = null;
  for (;;) {
    const stored: Array<{ subjectKey: string; state: SubjectState }> =
      await readUnpositionedStatePage<SubjectState>(client, detector.id, after, pageSize);
    await sweep(stored);
    if (stored.length < pageSize) break;
    after = stored.at(-1)!.subjectKey;
  }

  return {
    state: tick.previous,
    findings,
    proposed: recorder.proposed,
    kept: recorder.recorded.map((r) => r.change),
    recorded: recorder.recorded,
    omitted: recorder.omitted,
    failedSubjects: recorder.failed,
    opsNotificationIds: [],
  };
}

/**
 * A page's findings cut to `room` subjects with changes, in the order of their first change
 * (subjects without changes keep their state updates); `deferred` counts the subjects left out.
 */
function withinLimit<SubjectState, Change extends CauseChange>(
  found: PageFindings<SubjectState, Change, unknown>,
  room: number,
): {
  kept: Pick<PageFindings<SubjectState, Change, unknown>, 'changes' | 'updates'> & { subjects: number };
  deferred: number;
} {
  const subjects = [...new Set(found.changes.map((c) => c.subjectKey))];
  if (subjects.length <= room)
    return {
      kept: { changes: found.changes, updates: found.updates, subjects: subjects.length },
      deferred: 0,
    };
  const left = new Set(subjects.slice(room));
  return {
    kept: {
      changes: found.changes.filter((c) => !left.has(c.subjectKey)),
      updates: found.updates.filter((u) => !left.has(u.subjectKey)),
      subjects: room,
    },
    deferred: left.size,
  };
}

/** A live pass keeps this many of its recorded changes in full; of the rest, their event ids. */
export const CHANGES_KEPT_IN_FULL = 1_000;

/**
 * A pass's changes and states, page by page: a subject whose change cannot be recorded keeps its
 * previous state (and is tried again next tick); only changed states are written. A live pass
 * keeps CHANGES_KEPT_IN_FULL recorded changes (for its log and `forewarn run`) and of the others
 * only their event ids (for the fan-out), so a first pass over a large backlog does not hold
 * every check-up; a dry run keeps all, to list them.
 */
class PassRecorder<SubjectState, Change extends CauseChange> {
  readonly proposed: Change[] = [];
  readonly recorded: RecordedChange<Change>[] = [];
  readonly omitted = { changes: 0, eventIds: [] as string[] };
  readonly failed: string[] = [];

  constructor(
    private readonly client: PoolClient,
    private readonly detector: string,
    private readonly log: Logger,
    private readonly describe: (change: Change) => Record<string, unknown>,
    private readonly options: { keepAll: boolean },
  ) {}

  async apply(
    changes: readonly Change[],
    updates: ReadonlyArray<SubjectStateWrite<SubjectState>>,
  ): Promise<void> {
    if (this.options.keepAll) this.proposed.push(...changes);
    const { recorded, failed } = await recordInBulk(this.client, changes, {
      log: this.log,
      describe: this.describe,
    });
    const room = this.options.keepAll ? Infinity : Math.max(0, CHANGES_KEPT_IN_FULL - this.recorded.length);
    this.recorded.push(...recorded.slice(0, room));
    for (const r of recorded.slice(room)) {
      this.omitted.changes++;
      this.omitted.eventIds.push(r.eventId);
    }
    this.failed.push(...failed);
    const keep = new Set(failed);
    await saveSubjectStates(
      this.client,
      this.detector,
      updates.filter((u) => !keep.has(u.subjectKey)),
    );
  }
}

/**
 * A page's stored states: with positions, the states in the page's range of positions (from its
 * lowest position up to the previous page's lowest), plus, looked up by key, those of its
 * subjects whose state lies elsewhere (a period that moved); `unmatched` are the range's states no
 * page subject has. Without positions, the page's subjects' states by key, and nothing unmatched.
 */
class PositionedReads<SubjectSignals, SubjectState> {
  /** The lowest position read so far: the next page's range ends below it. */
  lowest: number | null = null;

  constructor(
    private readonly client: PoolClient,
    private readonly detector: string,
    private readonly position: PassPositions<SubjectSignals, SubjectState> | undefined,
  ) {}

  async statesOf(
    page: readonly SubjectSignals[],
    keyOf: (subject: SubjectSignals) => string,
  ): Promise<{
    states: Map<string, SubjectState>;
    unmatched: Array<{ subjectKey: string; state: SubjectState }>;
  }> {
    const keys = page.map(keyOf);
    if (!this.position)
      return { states: await readSubjectStates(this.client, this.detector, keys), unmatched: [] };
    const positions = page.map(this.position.ofSubject);
    const from = Math.min(...positions);
    const highest = Math.max(...positions);
    if (this.lowest !== null && highest > this.lowest)
      throw new Error(
        `the ${this.detector} pass's pages are not in descending position: a page reaches ${highest} after one reached down to ${this.lowest}`,
      );
    const ranged = await readSubjectStatesBetween<SubjectState>(
      this.client,
      this.detector,
      from,
      this.lowest,
    );
    this.lowest = from;
    const onPage = new Set(keys);
    const states = new Map<string, SubjectState>();
    const unmatched: Array<{ subjectKey: string; state: SubjectState }> = [];
    for (const r of ranged) {
      if (onPage.has(r.subjectKey)) states.set(r.subjectKey, r.state);
      else unmatched.push(r);
    }
    const elsewhere = keys.filter((k) => !states.has(k));
    if (elsewhere.length > 0)
      for (const [k, state] of await readSubjectStates<SubjectState>(this.client, this.detector, elsewhere))
        states.set(k, state);
    return { states, unmatched };
  }

  /** The page's state updates, each with its position when the pass has them. */
  writes(found: {
    updates: ReadonlyArray<{ subjectKey: string; state: SubjectState | null }>;
  }): Array<SubjectStateWrite<SubjectState>> {
    const position = this.position;
    if (!position) return [...found.updates];
    return found.updates.map((u) => ({
      ...u,
      position: u.state === null ? null : position.ofState(u.state),
    }));
  }
}
