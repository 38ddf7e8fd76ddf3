// The inactivity detector's data: what the scan reads per user, what it remembers per user
// between passes (one forewarn.subject_state row per user in a reminded inactivity period), and
// the cause changes it emits (the payload fields the security check-up kinds read).

export const DETECTOR = 'inactivity' as const;
/** The cause kind: one inactivity period of one user. */
export const CAUSE_KIND = 'inactive' as const;

/** One active user the scan found idle past the first step (and not past the maximum). */
export interface IdleUser {
  userId: string;
  /** last_active_at, or created_at for a user who never signed in after sign-up (epoch ms). */
  idleSince: number;
  neverSignedIn: boolean;
}

/**
 * What the detector remembers of a user in a reminded period: when the period began (the user's
 * idleSince then) and the highest step reminded in it. A new idleSince is a new period.
 */
export interface InactivityState {
  since: number;
  stepDays: number;
}

/** The user a cause is about (incidents.subject). */
export interface InactivitySubject {
  userId: string;
}

interface ChangeCommon {
  detector: typeof DETECTOR;
  subjectKey: string;
  subject: InactivitySubject;
  kind: typeof CAUSE_KIND;
  at: number;
  userId: string;
}

/** What a check-up's cause event carries, as its evidence too. */
export interface CheckupEvidence {
  /** The period's start (epoch ms): the stale rule cancels a check-up once it moved. */
  since: number;
  neverSignedIn: boolean;
  /** Whole days idle when the step was decided. */
  idleDays: number;
  /** The configured step reached. */
  stepDays: number;
  /** The step of the period's earlier check-up; null for the first. */
  previousStepDays: number | null;
}

/** The first check-up of a period (at the highest step reached, when first seen past several). */
export interface PeriodOpened extends ChangeCommon, CheckupEvidence {
  type: 'opened';
  evidence: CheckupEvidence;
}

/** A later step of the same period: its seq is the step's days, so each step is recorded once. */
export interface StepReached extends ChangeCommon, CheckupEvidence {
  type: 'step';
  seq: number;
  evidence: CheckupEvidence;
}

/**
 * Why a period ended: `returned` the user came back (or is no longer an active user), `aged-out`
 * idle past maxIdleDays, so nothing more is sent.
 */
export type PeriodEnd = 'returned' | 'aged-out';

export interface PeriodEnded extends ChangeCommon {
  type: 'resolved';
  resolution: PeriodEnd;
  evidence: { since: number; stepDays: number; resolution: PeriodEnd };
}

export type InactivityChange = PeriodOpened | StepReached | PeriodEnded;

/** A pass's counts: idle users seen, check-ups (first and later steps), periods ended. */
export interface InactivityTally {
  idle: number;
  opened: number;
  steps: number;
  ended: number;
}

/** One page's findings: its changes, and the users whose remembered period changed. */
export interface InactivityPageFindings {
  changes: InactivityChange[];
  updates: Array<{ subjectKey: string; state: InactivityState | null }>;
  tally: InactivityTally;
}
