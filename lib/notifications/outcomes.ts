// What became of each recorded message, for the operator: sent, held (and until when), withheld
// by the delivery policy, cancelled as stale, failed. One classification, in SQL, that the
// delivery reports (lib/notifications/reports.ts) group and list by. It reads the reasons by the
// prefixes their writers give them: held_reason "held: … quiet hours …" (lib/notifications/policy.ts),
// "opted out: …", "suppressed: …", "capped: …", "no address: …"; last_error "cancelled: … stale
// rule" (the claim) and "gave up after …" (retries exhausted); manual control's "muted: …",
// "maintenance: …" (lib/ops/quiet.ts) and "cancelled: stopped by ops" (lib/ops/store.ts).
export const OUTCOMES = [
  'sent',
  'sending',
  'pending',
  'pending: retrying',
  'held: quiet hours',
  'held: capped',
  'withheld: opted out',
  'withheld: suppressed',
  'withheld: capped',
  'withheld: no address',
  'withheld: muted',
  'withheld: maintenance',
  'cancelled: stale',
  'cancelled: stopped by ops',
  'cancelled: other',
  'failed: permanent',
  'failed: retries exhausted',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

// A quiet-hours hold names its end ("until <ISO time>"); a row still pending at that time is held,
// while one pending at another time is waiting for a retry after its hold ended.
const HELD_UNTIL_NEXT_ATTEMPT = `n.held_reason LIKE 'held:%until ' || to_char(n.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The outcome of the row `n` (forewarn.notifications), as SQL. */
export const OUTCOME_SQL = `(CASE
  WHEN n.status = 'sent' THEN 'sent'
  WHEN n.status = 'sending' THEN 'sending'
  WHEN n.status = 'pending' AND n.next_attempt_at > now() AND ${HELD_UNTIL_NEXT_ATTEMPT} THEN 'held: quiet hours'
  WHEN n.status = 'pending' AND n.next_attempt_at > now() AND n.held_reason LIKE 'capped:%' THEN 'held: capped'
  WHEN n.status = 'pending' AND n.last_error IS NOT NULL THEN 'pending: retrying'
  WHEN n.status = 'pending' THEN 'pending'
  WHEN n.status = 'cancelled' AND n.held_reason LIKE 'opted out:%' THEN 'withheld: opted out'
  WHEN n.status = 'cancelled' AND n.held_reason LIKE 'suppressed:%' THEN 'withheld: suppressed'
  WHEN n.status = 'cancelled' AND n.held_reason LIKE 'capped:%' THEN 'withheld: capped'
  WHEN n.status = 'cancelled' AND (n.held_reason LIKE 'no address%' OR n.last_error LIKE 'no address%') THEN 'withheld: no address'
  WHEN n.status = 'cancelled' AND n.held_reason LIKE 'muted:%' THEN 'withheld: muted'
  WHEN n.status = 'cancelled' AND n.held_reason LIKE 'maintenance:%' THEN 'withheld: maintenance'
  WHEN n.status = 'cancelled' AND n.last_error LIKE 'cancelled:%stale rule%' THEN 'cancelled: stale'
  WHEN n.status = 'cancelled' AND n.last_error LIKE 'cancelled: stopped by ops%' THEN 'cancelled: stopped by ops'
  WHEN n.status = 'cancelled' THEN 'cancelled: other'
  WHEN n.status = 'failed' AND n.last_error LIKE 'gave up after%' THEN 'failed: retries exhausted'
  ELSE 'failed: permanent'
END)`;

/** The reason that goes with an outcome: the policy's (held_reason) or the delivery's (last_error). */
export function reasonFor(
  outcome: Outcome,
  row: { heldReason: string | null; lastError: string | null },
): string | null {
  if (outcome === 'sent' || outcome === 'sending' || outcome === 'pending') return null;
  if (outcome.startsWith('held:') || outcome.startsWith('withheld:')) return row.heldReason ?? row.lastError;
  return row.lastError ?? row.heldReason;
}
