// forewarn's notification records: one small function per query. PostgreSQL holds the truth;
// BullMQ only carries ids, so any job can be lost and redone from here.
import type { Queryable } from '../db/pool.ts';

export type DeliveryChannel = 'email' | 'inapp';

/** A notification to record: its identity (dedupe key) and everything needed to send it. */
export interface NotificationDraft {
  dedupeKey: string;
  cause: string;
  incidentId: string | null;
  kind: string;
  channel: DeliveryChannel;
  audience: 'user' | 'ops';
  userId: string | null;
  address: string | null;
  locale: string;
  data: Record<string, unknown>;
}

export interface ClaimedNotification extends NotificationDraft {
  id: string;
  attempts: number;
}

/** Records drafts; a dedupe key already recorded is skipped. Returns the ids of new rows. */
export async function insertNotifications(
  db: Queryable,
  drafts: readonly NotificationDraft[],
): Promise<string[]> {
  if (drafts.length === 0) return [];
  // One JSON document rather than ten arrays: node-pg would quote every array element, which
  // costs more than the insert itself for a batch of thousands.
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO forewarn.notifications
       (dedupe_key, cause, incident_id, kind, channel, audience, user_id, address, locale, data)
     SELECT d.k, d.c, d.i, d.t, d.ch, d.a, d.u, d.ad, d.l, d.d
       FROM jsonb_to_recordset($1::jsonb) AS d(k text, c text, i bigint, t text, ch text, a text, u text, ad text, l text, d jsonb)
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING id`,
    [
      JSON.stringify(
        drafts.map((d) => ({
          k: d.dedupeKey,
          c: d.cause,
          i: d.incidentId,
          t: d.kind,
          ch: d.channel,
          a: d.audience,
          u: d.userId,
          ad: d.address,
          l: d.locale,
          d: d.data,
        })),
      ),
    ],
  );
  return rows.map((r) => r.id);
}

/**
 * Claims the given notifications that are due, atomically: only rows still pending (or whose
 * claim expired) are taken, so two workers never hold the same row. A warning whose incident
 * resolved before its turn is cancelled instead: a stale warning helps nobody.
 */
export async function claimNotifications(
  db: Queryable,
  ids: readonly string[],
  claimSeconds: number,
): Promise<{ claimed: ClaimedNotification[]; cancelled: number }> {
  if (ids.length === 0) return { claimed: [], cancelled: 0 };
  const { rows } = await db.query<{
    id: string;
    status: string;
    dedupe_key: string;
    cause: string;
    incident_id: string | null;
    kind: string;
    channel: DeliveryChannel;
    audience: 'user' | 'ops';
    user_id: string | null;
    address: string | null;
    locale: string;
    data: Record<string, unknown>;
    attempts: number;
  }>(
    `WITH stale AS (
       SELECT n.id FROM forewarn.notifications n JOIN forewarn.incidents i ON i.id = n.incident_id
        WHERE n.id = ANY ($1::bigint[]) AND n.kind = 'payment-degraded' AND i.resolved_at IS NOT NULL
     )
     UPDATE forewarn.notifications n
        SET status = CASE WHEN n.id IN (SELECT id FROM stale) THEN 'cancelled' ELSE 'sending' END,
            claimed_until = now() + make_interval(secs => $2),
            last_error = CASE WHEN n.id IN (SELECT id FROM stale)
                              THEN 'cancelled: the incident resolved before the warning went out' ELSE n.last_error END,
            finished_at = CASE WHEN n.id IN (SELECT id FROM stale) THEN now() ELSE NULL END
      -- Conditions on the target row itself, so that a concurrent claim re-checks them on the
      -- row's newest version and two workers never both take it.
      WHERE n.id = ANY ($1::bigint[])
        AND n.next_attempt_at <= now()
        AND (n.status = 'pending' OR (n.status = 'sending' AND n.claimed_until < now()))
     RETURNING n.id, n.status, n.dedupe_key, n.cause, n.incident_id, n.kind, n.channel, n.audience,
               n.user_id, n.address, n.locale, n.data, n.attempts`,
    [ids, claimSeconds],
  );
  const claimed = rows
    .filter((r) => r.status === 'sending')
    .map((r) => ({
      id: r.id,
      dedupeKey: r.dedupe_key,
      cause: r.cause,
      incidentId: r.incident_id,
      kind: r.kind,
      channel: r.channel,
      audience: r.audience,
      userId: r.user_id,
      address: r.address,
      locale: r.locale,
      data: r.data,
      attempts: r.attempts,
    }));
  return { claimed, cancelled: rows.length - claimed.length };
}

export async function markSent(db: Queryable, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    `UPDATE forewarn.notifications
        SET status = 'sent', attempts = attempts + 1, sent_at = now(), finished_at = now(), claimed_until = NULL, last_error = NULL
      WHERE id = ANY ($1::bigint[]) AND status = 'sending'`,
    [ids],
  );
}

/**
 * A temporary failure: back to pending, due again after `delayMs` by the database's clock (the
 * clock that claims compare with). Returns when that is, in epoch ms.
 */
export async function markRetry(db: Queryable, id: string, reason: string, delayMs: number): Promise<number> {
  const { rows } = await db.query<{ due: Date }>(
    `UPDATE forewarn.notifications
        SET status = 'pending', attempts = attempts + 1, claimed_until = NULL, last_error = $2,
            next_attempt_at = now() + make_interval(secs => $3::float8 / 1000)
      WHERE id = $1 AND status = 'sending'
     RETURNING next_attempt_at AS due`,
    [id, reason, delayMs],
  );
  return rows[0]?.due.getTime() ?? Date.now() + delayMs;
}

/** A permanent failure, or retries exhausted: recorded with the reason, never retried. */
export async function markFailed(
  db: Queryable,
  failures: ReadonlyArray<{ id: string; reason: string }>,
): Promise<void> {
  if (failures.length === 0) return;
  await db.query(
    `UPDATE forewarn.notifications n
        SET status = 'failed', attempts = n.attempts + 1, last_error = f.reason, finished_at = now(), claimed_until = NULL
       FROM unnest($1::bigint[], $2::text[]) AS f(id, reason)
      WHERE n.id = f.id AND n.status = 'sending'`,
    [failures.map((f) => f.id), failures.map((f) => f.reason)],
  );
}

export interface InAppDelivery {
  draft: NotificationDraft;
  /** The rendered message, or why it could not be rendered (recorded as failed). */
  message: { title: string; body: string; link: string | null } | { error: string };
}

/**
 * Records in-app notifications as delivered, with their inbox rows, in one statement: an in-app
 * delivery is a write to forewarn's own database, so recording it and delivering it are the same
 * transaction and need no claim. A dedupe key already recorded is skipped, inbox row included.
 * Returns how many were delivered and how many failed to render.
 */
export async function recordInAppDeliveries(
  db: Queryable,
  deliveries: readonly InAppDelivery[],
): Promise<{ delivered: number; failed: number }> {
  if (deliveries.length === 0) return { delivered: 0, failed: 0 };
  const { rows } = await db.query<{ status: string; n: number }>(
    `WITH d AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb)
         AS d(k text, c text, i bigint, t text, u text, l text, d jsonb, title text, body text, link text, err text)
     ), recorded AS (
       INSERT INTO forewarn.notifications
         (dedupe_key, cause, incident_id, kind, channel, audience, user_id, locale, data,
          status, attempts, sent_at, finished_at, last_error)
       SELECT d.k, d.c, d.i, d.t, 'inapp', 'user', d.u, d.l, d.d,
              CASE WHEN d.err IS NULL THEN 'sent' ELSE 'failed' END, 1,
              CASE WHEN d.err IS NULL THEN now() END, now(), d.err
         FROM d
       ON CONFLICT (dedupe_key) DO NOTHING
       RETURNING id, dedupe_key, status
     ), inboxed AS (
       INSERT INTO forewarn.inbox (notification_id, user_id, kind, title, body, link)
       SELECT r.id, d.u, d.t, d.title, d.body, d.link FROM recorded r JOIN d ON d.k = r.dedupe_key
        WHERE r.status = 'sent'
       RETURNING 1
     )
     SELECT status, count(*)::int AS n FROM recorded GROUP BY status`,
    [
      JSON.stringify(
        deliveries.map(({ draft, message }) => ({
          k: draft.dedupeKey,
          c: draft.cause,
          i: draft.incidentId,
          t: draft.kind,
          u: draft.userId,
          l: draft.locale,
          d: draft.data,
          ...('error' in message
            ? { err: message.error }
            : { title: message.title, body: message.body, link: message.link }),
        })),
      ),
    ],
  );
  const count = (status: string) => rows.find((r) => r.status === status)?.n ?? 0;
  return { delivered: count('sent'), failed: count('failed') };
}

export interface InboxEntry {
  notificationId: string;
  userId: string;
  kind: string;
  title: string;
  body: string;
  link: string | null;
}

/** Writes in-app messages and marks their notifications sent, in the caller's transaction. */
export async function insertInboxEntries(db: Queryable, entries: readonly InboxEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db.query(
    `INSERT INTO forewarn.inbox (notification_id, user_id, kind, title, body, link)
     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     ON CONFLICT (notification_id) DO NOTHING`,
    [
      entries.map((e) => e.notificationId),
      entries.map((e) => e.userId),
      entries.map((e) => e.kind),
      entries.map((e) => e.title),
      entries.map((e) => e.body),
      entries.map((e) => e.link),
    ],
  );
}

export interface IncidentEventRow {
  id: string;
  /** Unique across databases, recreated or restored ones too: what job ids are made from. */
  uid: string;
  incidentId: string;
  type: 'opened' | 'resolved';
  payload: Record<string, unknown>;
  dispatchedAt: Date | null;
}

export async function readIncidentEvent(db: Queryable, eventId: string): Promise<IncidentEventRow | null> {
  const { rows } = await db.query<{
    id: string;
    uid: string;
    incident_id: string;
    type: 'opened' | 'resolved';
    payload: Record<string, unknown>;
    dispatched_at: Date | null;
  }>(
    'SELECT id, uid, incident_id, type, payload, dispatched_at FROM forewarn.incident_events WHERE id = $1',
    [eventId],
  );
  const r = rows[0];
  return r
    ? {
        id: r.id,
        uid: r.uid,
        incidentId: r.incident_id,
        type: r.type,
        payload: r.payload,
        dispatchedAt: r.dispatched_at,
      }
    : null;
}

/** The id of the event with this uid, or null when this database has none. */
export async function readIncidentEventId(db: Queryable, uid: string): Promise<string | null> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM forewarn.incident_events WHERE uid = $1', [
    uid,
  ]);
  return rows[0]?.id ?? null;
}

/** The uids of the given events, in the order of their ids; unknown ids are left out. */
export async function readIncidentEventUids(db: Queryable, eventIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ uid: string }>(
    'SELECT uid FROM forewarn.incident_events WHERE id = ANY ($1::bigint[]) ORDER BY id',
    [eventIds],
  );
  return rows.map((r) => r.uid);
}

export async function isIncidentResolved(db: Queryable, incidentId: string): Promise<boolean> {
  const { rows } = await db.query<{ resolved: boolean }>(
    'SELECT resolved_at IS NOT NULL AS resolved FROM forewarn.incidents WHERE id = $1',
    [incidentId],
  );
  return rows[0]?.resolved ?? false;
}

/** The fan-out's progress, created on first use. */
export async function startFanout(
  db: Queryable,
  eventId: string,
): Promise<{ cursor: string | null; recipients: number; batches: number }> {
  const { rows } = await db.query<{ cursor: string | null; recipients: number; batches: number }>(
    `INSERT INTO forewarn.fanouts (event_id) VALUES ($1)
     ON CONFLICT (event_id) DO UPDATE SET updated_at = now()
     RETURNING cursor, recipients, batches`,
    [eventId],
  );
  return rows[0]!;
}

export async function advanceFanout(
  db: Queryable,
  eventId: string,
  cursor: string,
  recipients: number,
): Promise<void> {
  await db.query(
    `UPDATE forewarn.fanouts SET cursor = $2, recipients = recipients + $3, batches = batches + 1, updated_at = now()
      WHERE event_id = $1`,
    [eventId, cursor, recipients],
  );
}

export async function finishFanout(db: Queryable, eventId: string): Promise<void> {
  await db.query('UPDATE forewarn.fanouts SET finished_at = now(), updated_at = now() WHERE event_id = $1', [
    eventId,
  ]);
  await db.query(
    'UPDATE forewarn.incident_events SET dispatched_at = now() WHERE id = $1 AND dispatched_at IS NULL',
    [eventId],
  );
}

/** Users warned of an incident, per channel, after `after` (keyset on user id, then channel). */
export async function readWarnedRecipients(
  db: Queryable,
  incidentId: string,
  after: { userId: string; channel: DeliveryChannel } | null,
  limit: number,
): Promise<Array<{ userId: string; channel: DeliveryChannel; address: string | null; locale: string }>> {
  const { rows } = await db.query<{
    user_id: string;
    channel: DeliveryChannel;
    address: string | null;
    locale: string;
  }>(
    `SELECT user_id, channel, address, locale FROM forewarn.notifications
      WHERE incident_id = $1 AND kind = 'payment-degraded' AND status IN ('sent', 'sending')
        AND ($2::text IS NULL OR (user_id, channel) > ($2::text, $3::text))
      ORDER BY user_id, channel
      LIMIT $4`,
    [incidentId, after?.userId ?? null, after?.channel ?? null, limit],
  );
  return rows.map((r) => ({ userId: r.user_id, channel: r.channel, address: r.address, locale: r.locale }));
}

/** Events whose fan-out never finished and has not moved for `staleSeconds`. */
export async function readStalledEvents(db: Queryable, staleSeconds: number, limit = 100): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT e.id FROM forewarn.incident_events e
       LEFT JOIN forewarn.fanouts f ON f.event_id = e.id
      WHERE e.dispatched_at IS NULL
        AND e.created_at < now() - make_interval(secs => $1)
        AND (f.event_id IS NULL OR f.updated_at < now() - make_interval(secs => $1))
      ORDER BY e.id LIMIT $2`,
    [staleSeconds, limit],
  );
  return rows.map((r) => r.id);
}

/** Deliveries due and not in a live claim: pending ones past their time, and expired claims. */
export async function readDueNotifications(
  db: Queryable,
  staleSeconds: number,
  limit: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM forewarn.notifications
      WHERE ((status = 'pending' AND next_attempt_at <= now() - make_interval(secs => $1))
          OR (status = 'sending' AND claimed_until < now()))
      ORDER BY id LIMIT $2`,
    [staleSeconds, limit],
  );
  return rows.map((r) => r.id);
}

export interface FailedDelivery {
  id: string;
  kind: string;
  channel: string;
  userId: string | null;
  address: string | null;
  attempts: number;
  reason: string | null;
  failedAt: Date | null;
  dedupeKey: string;
}

export async function listFailedDeliveries(db: Queryable, limit: number): Promise<FailedDelivery[]> {
  const { rows } = await db.query<{
    id: string;
    kind: string;
    channel: string;
    user_id: string | null;
    address: string | null;
    attempts: number;
    last_error: string | null;
    finished_at: Date | null;
    dedupe_key: string;
  }>(
    `SELECT id, kind, channel, user_id, address, attempts, last_error, finished_at, dedupe_key
       FROM forewarn.notifications WHERE status = 'failed' ORDER BY finished_at DESC, id DESC LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    channel: r.channel,
    userId: r.user_id,
    address: r.address,
    attempts: r.attempts,
    reason: r.last_error,
    failedAt: r.finished_at,
    dedupeKey: r.dedupe_key,
  }));
}
