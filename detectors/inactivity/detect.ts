// The inactivity detector: pure functions from a page of idle users and their remembered periods
// to the check-ups due. A user gets each step once per inactivity period; a user first seen past
// several steps gets only the highest reached; a new idleSince (the user came back and went idle
// again) is a new period. No I/O, no clock: the tick passes `now`.
import {
  CAUSE_KIND,
  DETECTOR,
  type IdleUser,
  type InactivityChange,
  type InactivityPageFindings,
  type InactivityState,
  type InactivityTally,
  type PeriodEnd,
  type PeriodEnded,
} from './types.ts';

const DAY = 86_400_000;

export interface InactivityRules {
  stepDays: readonly number[];
  maxIdleDays: number;
}

/** The highest step a user idle since `idleSince` has reached at `now`; null: none yet, or past the maximum. */
export function stepReached(idleSince: number, now: number, rules: InactivityRules): number | null {
  const idleMs = now - idleSince;
  if (idleMs >= rules.maxIdleDays * DAY) return null;
  let reached: number | null = null;
  for (const days of rules.stepDays) if (idleMs >= days * DAY) reached = days;
  return reached;
}

export function detectInactivity(
  page: readonly IdleUser[],
  states: ReadonlyMap<string, InactivityState>,
  rules: InactivityRules,
  now: number,
): InactivityPageFindings {
  const changes: InactivityChange[] = [];
  const updates: Array<{ subjectKey: string; state: InactivityState | null }> = [];
  const tally: InactivityTally = { idle: 0, opened: 0, steps: 0, ended: 0 };
  for (const user of page) {
    const reached = stepReached(user.idleSince, now, rules);
    if (reached === null) continue;
    tally.idle++;
    const key = user.userId;
    const previous = states.get(key);
    const samePeriod = previous !== undefined && previous.since === user.idleSince;
    if (samePeriod && reached <= previous.stepDays) continue;
    const evidence = {
      since: user.idleSince,
      neverSignedIn: user.neverSignedIn,
      idleDays: Math.floor((now - user.idleSince) / DAY),
      stepDays: reached,
      previousStepDays: samePeriod ? previous.stepDays : null,
    };
    const common = {
      detector: DETECTOR,
      subjectKey: key,
      subject: { userId: key },
      kind: CAUSE_KIND,
      at: now,
      userId: key,
    } as const;
    if (samePeriod) {
      changes.push({ ...common, ...evidence, type: 'step', seq: reached, evidence });
      tally.steps++;
    } else {
      // The user came back and went idle again between two passes: the old period ends first.
      if (previous) {
        changes.push(periodEnded(key, previous, 'returned', now));
        tally.ended++;
      }
      changes.push({ ...common, ...evidence, type: 'opened', evidence });
      tally.opened++;
    }
    updates.push({ subjectKey: key, state: { since: user.idleSince, stepDays: reached } });
  }
  return { changes, updates, tally };
}

/** Whether a remembered period still stands at `now` given the user's current idleSince (null: not an active user). */
export function periodStands(
  state: InactivityState,
  idleSince: number | null,
  now: number,
  rules: InactivityRules,
): PeriodEnd | null {
  if (idleSince !== state.since) return 'returned';
  if (now - state.since >= rules.maxIdleDays * DAY) return 'aged-out';
  return null;
}

/** The change that ends a remembered period. */
export function periodEnded(
  userId: string,
  state: InactivityState,
  resolution: PeriodEnd,
  now: number,
): PeriodEnded {
  return {
    detector: DETECTOR,
    subjectKey: userId,
    subject: { userId },
    kind: CAUSE_KIND,
    type: 'resolved',
    at: now,
    userId,
    resolution,
    evidence: { since: state.since, stepDays: state.stepDays, resolution },
  };
}
