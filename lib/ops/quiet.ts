// Whether a subject's users may be warned now: not while ops muted the subject (`forewarn mute`)
// nor during one of its maintenance windows (config maintenance.windows). Applied by the fan-out
// to user warnings only, generically by detector and subject key: ops alerts go out as usual,
// the incident is recorded, and a recovery notice still reaches whoever was warned before.
// Withheld warnings are recorded as cancelled with the reason ("muted: ...", "maintenance: ..."),
// which `forewarn deliveries stats` and `incidents show` count.
import type { Config } from '../config/schema.ts';
import type { Queryable } from '../db/pool.ts';
import { opsAlertDrafts } from '../notifications/ops-drafts.ts';
import type { NotificationDraft } from '../notifications/store.ts';
import { maintenanceAt, type MaintenanceOccurrence } from './maintenance.ts';
import { activeMute } from './store.ts';

export interface QuietVerdict {
  /** The reason recorded on each withheld warning. */
  reason: string;
  /** Set when a maintenance window (not a mute) is the reason. */
  maintenance: MaintenanceOccurrence | null;
}

export async function userWarningsQuiet(
  db: Queryable,
  config: Pick<Config, 'maintenance'>,
  subject: { detector: string; subjectKey: string },
  at: number,
): Promise<QuietVerdict | null> {
  const mute = await activeMute(db, subject.detector, subject.subjectKey, at);
  if (mute)
    return {
      reason: `muted: ${subject.detector} ${subject.subjectKey} by ${mute.actor} until ${mute.until.toISOString()} (${mute.reason})`,
      maintenance: null,
    };
  const occurrence = maintenanceAt(config.maintenance.windows, subject, at);
  if (occurrence)
    return {
      reason: `maintenance: ${occurrence.window.name} until ${new Date(occurrence.end).toISOString()}`,
      maintenance: occurrence,
    };
  return null;
}

/**
 * The ops notice that a maintenance window withholds user warnings: one per ops address and
 * webhook target per occurrence of the window (its dedupe key names the occurrence, not the
 * incident), however many incidents and ticks fall in it.
 */
export function maintenanceNoticeDrafts(
  config: Pick<Config, 'notifications' | 'timezone'>,
  occurrence: MaintenanceOccurrence,
  cause: { id: string; detector: string; subjectKey: string; kind: string },
): NotificationDraft[] {
  const ops = config.notifications.ops;
  const start = new Date(occurrence.start).toISOString();
  const data = {
    window: occurrence.window.name,
    detector: cause.detector,
    subjectKey: cause.subjectKey,
    incidentKind: cause.kind,
    startsAt: start,
    endsAt: new Date(occurrence.end).toISOString(),
    timeZone: config.timezone,
  };
  return opsAlertDrafts(ops, {
    cause: `maintenance:${occurrence.window.name}:${start}`,
    kind: 'ops-maintenance',
    key: 'ops-maintenance',
    data,
  });
}
