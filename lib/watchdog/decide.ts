// The watchdog's pure decision: given each watched detector's last tick, the platform data's
// high-water mark, the bounds, the stored state and `now`, is each subject (`ticks:<detector>`,
// `data:payment_attempts`) ok or failing, and which changes warrant a message (it started
// failing: an alert; it is ok again: a recovery notice). No I/O, no clock of its own.
import type { DataHighWater, LastTick } from './read.ts';

export const DATA_SUBJECT = 'data:payment_attempts';
export const ticksSubject = (detector: string): string => `ticks:${detector}`;

/** What the watchdog keeps per subject between checks (forewarn.watchdog_state). */
export interface WatchState {
  subject: string;
  status: 'ok' | 'failing';
  /** When the current status began (epoch ms, the watchdog's clock). */
  since: number;
  /** When the watchdog first saw the subject: a detector that never ran is measured from here. */
  firstSeenAt: number;
  /**
   * While failing: what the episode is about, the last tick's (or newest row's) time when it
   * started, or firstSeenAt when there was none. Every replica derives the same value from the
   * same data, so the messages' dedupe keys agree even without the lock.
   */
  episode: number | null;
}

export interface WatchInputs {
  /** The last tick of each watched detector (the enabled ones). */
  ticks: readonly LastTick[];
  /** Per detector id: how old its last tick may be (ms). */
  tickBounds: ReadonlyMap<string, number>;
  /** null: the platform database could not be read this time; the data subject stays as it was. */
  data: DataHighWater | null;
  maxDataLagMs: number;
  previous: ReadonlyMap<string, WatchState>;
  now: number;
}

export interface Verdict {
  subject: string;
  watched: 'ticks' | 'data';
  /** The detector, for a ticks subject. */
  detector: string | null;
  status: 'ok' | 'failing';
  /** Ticks: the last tick's finish; data: the newest row's created_at; null: none yet. */
  lastAt: number | null;
  /** The last tick's outcome (ticks only). */
  lastOutcome: string | null;
  /** Ticks: since the last tick finished (or since first seen); data: the lag on the platform's clock. */
  ageMs: number;
  boundMs: number;
  transition: 'alert' | 'recovery' | null;
  /** The state to store. */
  next: WatchState;
  /** For a recovery: the state it recovers from (when the alert went out, its episode). */
  recoveredFrom: WatchState | null;
}

export interface Decision {
  verdicts: Verdict[];
  /** Stored subjects no longer watched (a detector disabled or removed): their state is dropped. */
  forget: string[];
}

export function decideWatchdog(input: WatchInputs): Decision {
  const { now, previous } = input;
  const verdicts: Verdict[] = [];
  for (const tick of input.ticks) {
    const boundMs = input.tickBounds.get(tick.detector);
    if (boundMs === undefined) continue;
    const subject = ticksSubject(tick.detector);
    const prev = previous.get(subject);
    const firstSeenAt = prev?.firstSeenAt ?? now;
    const from = tick.finishedAt ?? firstSeenAt;
    verdicts.push(
      judge({
        subject,
        watched: 'ticks',
        detector: tick.detector,
        lastAt: tick.finishedAt,
        lastOutcome: tick.outcome,
        ageMs: Math.max(0, now - from),
        boundMs,
        episode: from,
        prev,
        firstSeenAt,
        now,
      }),
    );
  }
  if (input.data) {
    const prev = previous.get(DATA_SUBJECT);
    const firstSeenAt = prev?.firstSeenAt ?? now;
    const { newestAt, platformNow } = input.data;
    // On the platform's clock: a replica whose own clock runs ahead sees no false lag. An empty
    // table has no clock of its own to compare with: it lags from when the watchdog first saw it.
    const ageMs = newestAt === null ? now - firstSeenAt : platformNow - newestAt;
    verdicts.push(
      judge({
        subject: DATA_SUBJECT,
        watched: 'data',
        detector: null,
        lastAt: newestAt,
        lastOutcome: null,
        ageMs: Math.max(0, ageMs),
        boundMs: input.maxDataLagMs,
        episode: newestAt ?? firstSeenAt,
        prev,
        firstSeenAt,
        now,
      }),
    );
  }
  const judged = new Set(verdicts.map((v) => v.subject));
  const forget = [...previous.keys()].filter(
    (s) => !judged.has(s) && !(s === DATA_SUBJECT && input.data === null),
  );
  return { verdicts, forget };
}

function judge(j: {
  subject: string;
  watched: 'ticks' | 'data';
  detector: string | null;
  lastAt: number | null;
  lastOutcome: string | null;
  ageMs: number;
  boundMs: number;
  episode: number;
  prev: WatchState | undefined;
  firstSeenAt: number;
  now: number;
}): Verdict {
  const status = j.ageMs > j.boundMs ? 'failing' : 'ok';
  const wasFailing = j.prev?.status === 'failing';
  const transition =
    status === 'failing' && !wasFailing ? 'alert' : status === 'ok' && wasFailing ? 'recovery' : null;
  const next: WatchState =
    transition === null && j.prev
      ? j.prev
      : {
          subject: j.subject,
          status,
          since: transition === null ? j.firstSeenAt : j.now,
          firstSeenAt: j.firstSeenAt,
          episode: status === 'failing' ? j.episode : null,
        };
  return {
    subject: j.subject,
    watched: j.watched,
    detector: j.detector,
    status,
    lastAt: j.lastAt,
    lastOutcome: j.lastOutcome,
    ageMs: j.ageMs,
    boundMs: j.boundMs,
    transition,
    next,
    recoveredFrom: transition === 'recovery' ? j.prev! : null,
  };
}
