// What `forewarn incidents show` prints: one incident with its evidence and backups, what became
// of its messages (counted by kind, audience and outcome, the outcomes of `deliveries stats`),
// and its timeline: opened, acknowledged, messages sent, resolved, and what ops did.
import type { Queryable } from '../db/pool.ts';
import { OUTCOME_SQL } from '../notifications/outcomes.ts';
import { listIncidentActions, type OpsAction } from './store.ts';

export interface IncidentReport {
  id: string;
  detector: string;
  subjectKey: string;
  subject: Record<string, unknown>;
  kind: string;
  openedAt: Date;
  resolvedAt: Date | null;
  ackedAt: Date | null;
  openEvidence: Record<string, unknown>;
  resolveEvidence: Record<string, unknown> | null;
  backupChannels: string[];
  fanoutStopped: boolean;
  messages: Array<{ kind: string; audience: string; outcome: string; count: number }>;
  timeline: Array<{ at: Date; what: string }>;
  actions: OpsAction[];
}

export async function readIncidentReport(db: Queryable, id: string): Promise<IncidentReport | null> {
  const { rows } = await db.query<{
    id: string;
    detector: string;
    subject_key: string;
    subject: Record<string, unknown>;
    kind: string;
    opened_at: Date;
    resolved_at: Date | null;
    acked_at: Date | null;
    open_evidence: Record<string, unknown>;
    resolve_evidence: Record<string, unknown> | null;
    backup_channels: string[];
    stopped: boolean;
  }>(
    `SELECT i.*, EXISTS (SELECT 1 FROM forewarn.fanout_stops s WHERE s.incident_id = i.id) AS stopped
       FROM forewarn.incidents i WHERE i.id = $1`,
    [id],
  );
  const r = rows[0];
  if (!r) return null;
  const messages = await db.query<{ kind: string; audience: string; outcome: string; count: number }>(
    `SELECT n.kind, n.audience, ${OUTCOME_SQL} AS outcome, count(*)::int AS count
       FROM forewarn.notifications n WHERE n.incident_id = $1
      GROUP BY 1, 2, 3 ORDER BY 2 DESC, 1, 3`,
    [id],
  );
  const sent = await db.query<{ kind: string; channel: string; first: Date; last: Date; count: number }>(
    `SELECT kind, channel, min(finished_at) AS first, max(finished_at) AS last, count(*)::int AS count
       FROM forewarn.notifications WHERE incident_id = $1 AND status = 'sent'
      GROUP BY 1, 2 ORDER BY 3`,
    [id],
  );
  const actions = await listIncidentActions(db, {
    id: r.id,
    detector: r.detector,
    subjectKey: r.subject_key,
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
  });
  const timeline: Array<{ at: Date; what: string }> = [{ at: r.opened_at, what: `opened (${r.kind})` }];
  for (const s of sent.rows)
    timeline.push({
      at: s.first,
      what: `${s.count} ${s.kind} sent by ${s.channel}${s.count > 1 ? ` (last at ${s.last.toISOString()})` : ''}`,
    });
  for (const a of actions)
    timeline.push({ at: a.at, what: `${a.action} by ${a.actor}: ${a.reason}${detailText(a.detail)}` });
  if (r.resolved_at) timeline.push({ at: r.resolved_at, what: 'resolved' });
  timeline.sort((a, b) => a.at.getTime() - b.at.getTime());
  return {
    id: r.id,
    detector: r.detector,
    subjectKey: r.subject_key,
    subject: r.subject,
    kind: r.kind,
    openedAt: r.opened_at,
    resolvedAt: r.resolved_at,
    ackedAt: r.acked_at,
    openEvidence: r.open_evidence,
    resolveEvidence: r.resolve_evidence,
    backupChannels: r.backup_channels,
    fanoutStopped: r.stopped,
    messages: messages.rows,
    timeline,
    actions,
  };
}

function detailText(detail: Record<string, unknown>): string {
  const parts = Object.entries(detail).map(([k, v]) => `${k} ${String(v)}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}
