// What restock alerts read from forewarn's own tables: the restock requests users made through
// the low-stock notice's link (keyset-paginated like the platform's subscriptions, and merged with
// them in code), opt-outs, and who was alerted already. One query each; forewarn's tables only.
import type { Queryable } from '../db/pool.ts';
import { signupTimeSql, type Signup, type SignupKey, type SignupTime } from '../platform/restock.ts';

/** The product's restock requests after `after`, earliest first, ties by user id byte-wise. */
export async function readRequestPage(
  db: Queryable,
  productId: string,
  after: SignupKey | null,
  limit: number,
): Promise<Signup[]> {
  const { rows } = await db.query<{ user_id: string; at: string }>(
    `SELECT user_id, ${signupTimeSql('requested_at')} AS at
       FROM forewarn.restock_requests
      WHERE product_id = $1
        AND ($2::timestamptz IS NULL OR (requested_at, user_id COLLATE "C") > ($2::timestamptz, $3::text))
      ORDER BY requested_at, user_id COLLATE "C"
      LIMIT $4`,
    [productId, after?.at ?? null, after?.userId ?? null, limit],
  );
  return rows.map((r) => ({ userId: r.user_id, at: r.at }));
}

/** The given users' restock requests for the product, by user id. */
export async function readRequestsOf(
  db: Queryable,
  productId: string,
  userIds: readonly string[],
): Promise<Map<string, SignupTime>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ user_id: string; at: string }>(
    `SELECT user_id, ${signupTimeSql('requested_at')} AS at FROM forewarn.restock_requests
      WHERE product_id = $1 AND user_id = ANY ($2::text[])`,
    [productId, userIds],
  );
  return new Map(rows.map((r) => [r.user_id, r.at]));
}

/**
 * When the given users stopped restock alerts for the product, by user id (users who did not
 * are absent). A sign-up after that time asks again and counts; one before it does not.
 */
export async function readOptOuts(
  db: Queryable,
  productId: string,
  userIds: readonly string[],
): Promise<Map<string, SignupTime>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ user_id: string; at: string }>(
    `SELECT user_id, ${signupTimeSql('created_at')} AS at FROM forewarn.restock_optouts
      WHERE product_id = $1 AND user_id = ANY ($2::text[])`,
    [productId, userIds],
  );
  return new Map(rows.map((r) => [r.user_id, r.at]));
}

/**
 * Which of the given notifications (restock alerts, their product id in data.productId) were
 * recorded before their user stopped alerts for that product: the user changed their mind while
 * the alert waited.
 */
export async function readOptedOutSince(
  db: Queryable,
  notificationIds: readonly string[],
): Promise<Set<string>> {
  if (notificationIds.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `SELECT n.id FROM forewarn.notifications n
       JOIN forewarn.restock_optouts o ON o.user_id = n.user_id AND o.product_id = n.data->>'productId'
      WHERE n.id = ANY ($1::bigint[]) AND o.created_at >= n.created_at`,
    [notificationIds],
  );
  return new Set(rows.map((r) => r.id));
}

export interface PastAlert {
  /** When the user's latest restock alert for the product was recorded (not counting cancelled ones); null if none. */
  lastAlertedAt: SignupTime | null;
  /** The user has a restock alert of this cause, in any status (its dedupe keys are taken). */
  thisCause: boolean;
}

/**
 * The given users' restock alerts for the product so far, by user id (users never alerted are
 * absent). Derived from forewarn.notifications rather than kept in a table of its own:
 * - a notification row is written by the generic fan-out, which knows no kind's side tables; a
 *   second record would have to be written in the same transaction (a hook in the spine, or a
 *   trigger on every notifications insert) to stay true;
 * - an alert the stale rule cancels (stock gone before its turn) never reached the user, so it
 *   must not count: here that is `status <> 'cancelled'`, where a table would need undoing;
 * - it holds across restocks: the product's restock causes are found by subject key, each
 *   cause's alerts through notifications_by_incident (incident_id, kind, user_id), one probe per
 *   user, so a page costs the same however many alerts were written before it.
 * The price: the rule lasts as long as notification rows are kept (a retention job that prunes
 * them must keep the latest restock alert per user and product, or move them to a table then).
 * An email that failed for good still counts: in-app went out with it, and the same address
 * would fail again.
 */
export async function readRestockAlerts(
  db: Queryable,
  options: { detector: string; causeKind: string; kind: string; productId: string; causeId: string },
  userIds: readonly string[],
): Promise<Map<string, PastAlert>> {
  if (userIds.length === 0) return new Map();
  // One probe of notifications_by_incident per user (the lateral join), with the product's causes
  // read once: a join PostgreSQL may plan as a scan of the cause's whole audience (its statistics
  // lag while a wave is being written) would make every page cost more than the one before.
  const { rows } = await db.query<{ user_id: string; last_at: string | null; this_cause: boolean }>(
    `SELECT ids.id AS user_id, ${signupTimeSql('a.last_at')} AS last_at, a.this_cause
       FROM unnest($6::text[]) AS ids(id)
      CROSS JOIN LATERAL (
        SELECT max(n.created_at) FILTER (WHERE n.status <> 'cancelled') AS last_at,
               bool_or(n.incident_id = $5::bigint) AS this_cause
          FROM forewarn.notifications n
         WHERE n.incident_id = ANY (ARRAY(SELECT id FROM forewarn.incidents
                                           WHERE detector = $1 AND subject_key = $2 AND kind = $3))
           AND n.kind = $4 AND n.user_id = ids.id
      ) AS a
      WHERE a.this_cause IS NOT NULL`,
    [options.detector, options.productId, options.causeKind, options.kind, options.causeId, userIds],
  );
  return new Map(rows.map((r) => [r.user_id, { lastAlertedAt: r.last_at, thisCause: r.this_cause }]));
}
