// Manual control for ops: acknowledge, resolve by hand, mute and unmute a subject, stop a
// cause's fan-out. Each action is one transaction that also writes its row of the audit trail
// (forewarn.ops_actions: who and why). The CLI (cli/commands/ops.ts) is their only caller.
import { inTransaction, type Pool, type PoolClient } from '../db/pool.ts';
import { findDetector } from '../detection/registry.ts';
import { ForewarnError } from '../errors.ts';
import { recordCauseChange } from '../incidents/store.ts';
import {
  cancelQueuedUserMessages,
  deleteMute,
  insertFanoutStop,
  lockIncident,
  markAcked,
  recordOpsAction,
  upsertMute,
} from './store.ts';

export interface Who {
  actor: string;
  reason: string;
}

async function openIncident(db: Pool | PoolClient, id: string) {
  const incident = await lockIncident(db, id);
  if (!incident)
    throw new ForewarnError(
      'FW_INCIDENT_NOT_FOUND',
      `incident ${id}: no such incident; expected an id from forewarn incidents list`,
    );
  return incident;
}

/**
 * Acknowledges an incident: recorded, and nothing else changes. It resolves as the detector sees
 * fit and sends its recovery notices as any other.
 */
export async function ackIncident(db: Pool, id: string, who: Who): Promise<void> {
  await inTransaction(db, async (client) => {
    await openIncident(client, id);
    await markAcked(client, id);
    await recordOpsAction(client, { action: 'ack', incidentId: id, ...who });
  });
}

/**
 * Resolves an open incident by hand, through the path the detector's own resolve takes: the
 * detector's state row is locked first (as a tick locks it, so the two never interleave), the
 * detector's entry builds the resolve and releases the cause in its state (so the next tick
 * neither resolves it again nor takes it as still open: trouble that goes on opens a new
 * incident only after the detector confirms it afresh on data after this moment), and the
 * resolved event goes to the outbox, whose fan-out (the daemon's sweeper picks it up) sends the
 * recovery notices and the ops alert once. Returns the outbox event's id.
 */
export async function resolveIncident(db: Pool, id: string, who: Who, at = Date.now()): Promise<string> {
  return inTransaction(db, async (client) => {
    const peek = await client.query<{ detector: string }>(
      'SELECT detector FROM forewarn.incidents WHERE id = $1',
      [id],
    );
    if (!peek.rows[0]) await openIncident(client, id);
    const detectorId = peek.rows[0]!.detector;
    await client.query('SELECT 1 FROM forewarn.detector_state WHERE detector = $1 FOR UPDATE', [detectorId]);
    const incident = await openIncident(client, id);
    if (incident.resolvedAt)
      throw new ForewarnError(
        'FW_OPS_ACTION_REFUSED',
        `incident ${id} was resolved at ${incident.resolvedAt.toISOString()} already; nothing to resolve`,
      );
    const detector = findDetector(incident.detector);
    if (!detector?.resolveByHand)
      throw new ForewarnError(
        'FW_OPS_ACTION_REFUSED',
        `incident ${id}: detector ${incident.detector} cannot be resolved by hand (it resolves its causes itself); mute its subject instead`,
      );
    const change = await detector.resolveByHand(
      client,
      { ...incident, openedAt: incident.openedAt.getTime() },
      at,
      who,
    );
    const recorded = await recordCauseChange(client, change);
    // Another process remembers the state it saved: a new version makes it read the state again.
    await client.query('UPDATE forewarn.detector_state SET version = gen_random_uuid() WHERE detector = $1', [
      incident.detector,
    ]);
    await recordOpsAction(client, {
      action: 'resolve',
      incidentId: id,
      ...who,
      detail: { eventId: recorded.eventId },
    });
    return recorded.eventId;
  });
}

export async function muteSubject(
  db: Pool,
  subject: { detector: string; subjectKey: string },
  until: number,
  who: Who,
): Promise<void> {
  await inTransaction(db, async (client) => {
    await upsertMute(client, { ...subject, until, ...who });
    await recordOpsAction(client, {
      action: 'mute',
      ...subject,
      ...who,
      detail: { until: new Date(until).toISOString() },
    });
  });
}

/** Ends a mute; false when the subject had none in force (recorded all the same). */
export async function unmuteSubject(
  db: Pool,
  subject: { detector: string; subjectKey: string },
  who: Who,
): Promise<boolean> {
  return inTransaction(db, async (client) => {
    const active = await deleteMute(client, subject.detector, subject.subjectKey);
    await recordOpsAction(client, { action: 'unmute', ...subject, ...who, detail: { wasActive: active } });
    return active;
  });
}

/**
 * Stops a cause's fan-out of user warnings: its row is locked for update, so a fan-out batch
 * being written (which holds it key-shared) finishes first and its rows are cancelled too; later
 * batches see the stop and write nothing; what is still pending is cancelled now, and a delivery
 * claim cancels what comes back from a failed attempt. Messages being sent at this moment finish.
 * Returns how many were cancelled.
 */
export async function stopFanout(db: Pool, id: string, who: Who): Promise<number> {
  return inTransaction(db, async (client) => {
    await openIncident(client, id);
    if (!(await insertFanoutStop(client, { incidentId: id, ...who })))
      throw new ForewarnError('FW_OPS_ACTION_REFUSED', `the fan-out of cause ${id} was stopped before`);
    const cancelled = await cancelQueuedUserMessages(client, id, who.reason);
    await recordOpsAction(client, { action: 'fanout-stop', incidentId: id, ...who, detail: { cancelled } });
    return cancelled;
  });
}
