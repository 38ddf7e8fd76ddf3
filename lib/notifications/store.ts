// forewarn's notification records: one small function per query. PostgreSQL holds the truth;
// BullMQ only carries ids, so any job can be lost and redone from here.
import { inTransaction, type Pool, type Queryable } from '../db/pool.ts';
import type { Category, QueuedMessage } from '../messages/kind.ts';
import { cancelStoppedDue } from '../ops/store.ts';

/** A channel's id (lib/channels/registry.ts); the column takes any lowercase id. */
export type DeliveryChannel = string;

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
  /** The category its kind declares (lib/messages/kind.ts). */
  category: Category;
  /** Ops alerts that may be sent as one message share this key (null: never grouped). */
  groupKey?: string | null;
  /** The recipient's IANA zone (users.timezone), for quiet hours at claim time; null: unknown. */
  timezone?: string | null;
  /** Held by the delivery policy until then (epoch ms); null or absent: due at once. */
  notBefore?: number | null;
  /** Why it is held (lib/notifications/policy.ts). */
  heldReason?: string | null;
  /** Never held by quiet hours (Recipient.urgent). */
  urgent?: boolean;
  /**
   * Withheld by the delivery policy (opted out, suppressed): recorded as cancelled with this
   * reason (held_reason) and never sent.
   */
  withheldReason?: string | null;
}

export interface ClaimedNotification extends NotificationDraft {
  id: string;
  /** Attempts so far, this claim included. */
  attempts: number;
  /** The claim's token, which its outcome is written under. */
  token: string;
}

/**
 * Records drafts; a dedupe key already recorded is skipped. A withheld draft is recorded as
 * cancelled, with its reason. Returns the ids of the new rows to deliver (not the withheld ones).
 */
export async function insertNotifications(
  db: Queryable,
  drafts: readonly NotificationDraft[],
): Promise<string[]> {
  if (drafts.length === 0) return [];
  // One JSON document rather than ten arrays: node-pg would quote every array element, which
  // costs more than the insert itself for a batch of thousands.
  const { rows } = await db.query<{ id: string; status: string }>(
    `INSERT INTO forewarn.notifications
       (dedupe_key, cause, incident_id, kind, channel, audience, user_id, address, locale, data, category, group_key,
        timezone, next_attempt_at, held_reason, status, finished_at, urgent)
     SELECT d.k, d.c, d.i, d.t, d.ch, d.a, d.u, d.ad, d.l, d.d, d.cat, d.g, d.tz, coalesce(d.nb, now()),
            coalesce(d.w, d.h), CASE WHEN d.w IS NULL THEN 'pending' ELSE 'cancelled' END,
            CASE WHEN d.w IS NOT NULL THEN now() END, coalesce(d.ur, false)
       FROM jsonb_to_recordset($1::jsonb)
         AS d(k text, c text, i bigint, t text, ch text, a text, u text, ad text, l text, d jsonb, cat text, g text,
              tz text, nb timestamptz, h text, w text, ur boolean)
     ON CONFLICT (dedupe_key) DO NOTHING
     RETURNING id, status`,
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
          cat: d.category,
          g: d.groupKey ?? null,
          tz: d.timezone ?? null,
          nb: d.notBefore == null ? null : new Date(d.notBefore).toISOString(),
          h: d.heldReason ?? null,
          w: d.withheldReason ?? null,
          ...(d.urgent ? { ur: true } : {}),
        })),
      ),
    ],
  );
  return rows.filter((r) => r.status === 'pending').map((r) => r.id);
}

/** What a claim does with a row it may take: $5 is retry.maxAttempts. */
const CLAIM_OUTCOME = `(CASE WHEN n.id IN (SELECT id FROM stale) THEN 'cancelled'
                             WHEN n.attempts >= $5 THEN 'failed' ELSE 'sending' END)`;

/** A row as a claim returns it (CLAIM_COLUMNS). */
export interface ClaimRow {
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
  last_error: string | null;
  category: Category;
  group_key: string | null;
}

/** What a claim's RETURNING lists, for ClaimRow. */
export const CLAIM_COLUMNS = `n.id, n.status, n.dedupe_key, n.cause, n.incident_id, n.kind, n.channel, n.audience,
               n.user_id, n.address, n.locale, n.data, n.attempts, n.last_error, n.category, n.group_key`;

/** A claimed row as delivery hands it on, with the token its outcome is written under. */
export function claimedOf(r: ClaimRow, token: string): ClaimedNotification {
  return {
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
    category: r.category,
    groupKey: r.group_key,
    attempts: r.attempts,
    token,
  };
}

/** The due, unclaimed messages among `ids` whose kind has a stale rule, as the rules read them. */
async function readDueForStaleRules(
  db: Queryable,
  ids: readonly string[],
  kinds: readonly string[],
): Promise<QueuedMessage[]> {
  if (kinds.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    kind: string;
    incident_id: string | null;
    user_id: string | null;
    data: Record<string, unknown>;
  }>(
    `SELECT id, kind, incident_id, user_id, data FROM forewarn.notifications
      WHERE id = ANY ($1::bigint[]) AND kind = ANY ($2::text[]) AND status = 'pending' AND next_attempt_at <= now()`,
    [ids, kinds],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    causeId: r.incident_id,
    userId: r.user_id,
    data: r.data,
  }));
}

/** Who claims, under which token, for how long, and how many attempts a delivery gets. */
export interface ClaimOptions {
  /** A UUID of the claimer's own: every outcome is written under it (see markSent). */
  token: string;
  /** The worker's id (host:pid:random), recorded as claimed_by. */
  worker: string;
  claimSeconds: number;
  /** retry.maxAttempts: a delivery that has used them all is failed instead of claimed. */
  maxAttempts: number;
  /** The kinds' stale rules: which of the due messages to cancel rather than send. */
  stale?: StaleRules;
  /** The delivery policy: which due messages to hold (quiet hours), and until when. */
  hold?: HoldRule;
}

/** The delivery policy's hold, as the claim applies it (lib/notifications/policy.ts). */
export interface HoldRule {
  /** The categories it may hold: only their messages are looked at. */
  categories: readonly string[];
  holdFor: (message: {
    category: Category;
    timezone: string | null;
  }) => { until: number; reason: string } | null;
  /**
   * Why a due message must not go at all (its user opted out since it was recorded, its address
   * was suppressed since), or null: it is then cancelled with that reason.
   */
  withhold?: (
    message: { userId: string | null; category: Category; channel: string; address: string | null },
    found: { optedOut: boolean; suppression: { reason: string; since: Date } | null },
  ) => string | null;
  /** The frequency caps (absent: none configured). */
  cap?: CapRule | undefined;
}

/** A due message as the frequency caps judge it. */
export interface CapSubject {
  kind: string;
  category: Category;
  channel: string;
  timezone: string | null;
}

/** Go; or not now: held until `until` (epoch ms), or cancelled (`until` null), with the reason. */
export type CapVerdict = { go: true } | { go: false; until: number | null; reason: string };

/** The delivery policy's frequency caps, as the claim applies them (lib/notifications/policy.ts). */
export interface CapRule {
  /** The channels with a cap: only their users' messages are counted and judged. */
  channels: readonly string[];
  /** When the message's user's day began (their local midnight, epoch ms): what is counted from. */
  dayStart: (message: { timezone: string | null }) => number;
  /** The verdict on a message when `sentToday` went to its user on its channel since then. */
  decide: (message: CapSubject, sentToday: number) => CapVerdict;
}

/** The stale rules of message kinds (lib/messages/stale.ts builds them from the registry). */
export interface StaleRules {
  /** The kinds that have a rule: only their messages are looked at. */
  kinds: readonly string[];
  /** Of these due messages, the ids to cancel. */
  pick: (messages: QueuedMessage[]) => Promise<Set<string>>;
}

export interface ClaimResult {
  claimed: ClaimedNotification[];
  /**
   * Messages cancelled: by their kind's stale rule (e.g. a warning whose incident resolved
   * first), or withheld by the policy (see `withheld`).
   */
  cancelled: number;
  /** Of those, the ones the delivery policy withheld (opted out, suppressed), with the reason. */
  withheld: Array<{ id: string; reason: string }>;
  /** Deliveries that had used every attempt, recorded as failed with the reason. */
  exhausted: Array<{ id: string; reason: string }>;
  /** Pending messages not due yet (held by the policy, now or when recorded), and when they are. */
  later: Array<{ id: string; dueAt: number }>;
}

/**
 * Claims the given notifications that are due, atomically, under `options.token`: only rows
 * still pending are taken, so two workers never hold the same row. Each claim is an attempt
 * (`attempts` counts claims), so a message that crashes or hangs every worker that takes it runs
 * out of attempts like any other failure. A claim that ran out without an outcome (its worker
 * died or hung) is taken over only by a claim of that one row: the sweeper queues such rows one
 * per job, so that a message that kills its worker takes no chunk of others with it next time.
 * Such a row is made pending again first, and judged below like any other due message.
 * A message that its kind's stale rule finds no longer true (a warning whose incident resolved
 * before its turn) is cancelled instead: a stale warning helps nobody. A due message that the
 * delivery policy holds (`hold`: quiet hours) is moved to its new time, not taken; those not due
 * yet are returned as `later`, so the caller can come back for them when they are. Over a user's
 * frequency cap (`hold.cap`), a due message is held until their next day or cancelled, counted
 * and claimed in one transaction under the user's lock (see capDue).
 */
export async function claimNotifications(
  db: Queryable,
  ids: readonly string[],
  options: ClaimOptions,
): Promise<ClaimResult> {
  if (ids.length === 0) return { claimed: [], cancelled: 0, withheld: [], exhausted: [], later: [] };
  // A claim of one row may take it over from a claim that ran out: it is made pending again
  // first, so the stale rules and the policy judge it like any other due message (its user may
  // have opted out, its cause resolved, its quiet hours begun since it was last claimed).
  if (ids.length === 1) await releaseExpiredClaim(db, ids[0]!);
  // A cause whose fan-out ops stopped sends nothing more of what it had queued.
  const stopped = await cancelStoppedDue(db, ids);
  const stale = options.stale
    ? [...(await options.stale.pick(await readDueForStaleRules(db, ids, options.stale.kinds)))]
    : [];
  // A stale message is cancelled, quiet hours or not; the policy withholds or holds the others.
  let withheld: Array<{ id: string; reason: string }> = [];
  if (options.hold) {
    const cancelled = new Set(stale);
    const withhold = options.hold.withhold;
    if (withhold) {
      withheld = await withholdDue(
        db,
        ids.filter((id) => !cancelled.has(id)),
        withhold,
      );
      for (const w of withheld) cancelled.add(w.id);
    }
    await holdDue(
      db,
      ids.filter((id) => !cancelled.has(id)),
      options.hold,
    );
  }
  const cap = options.hold?.cap;
  const take = async (q: Queryable) => {
    // The caps count what went to each user and take the claim in one transaction, holding the
    // users' cap locks (capDue): a concurrent claim or fan-out batch for the same user waits and
    // then counts this one's messages as `sending`, so together they never exceed a cap.
    const done = new Set([...stale, ...withheld.map((w) => w.id)]);
    const capped = cap
      ? await capDue(
          q,
          ids.filter((id) => !done.has(id)),
          cap,
        )
      : [];
    return { capped, rows: await claimDue(q, ids, options, stale) };
  };
  const { capped, rows } = cap && isPool(db) ? await inTransaction(db, take) : await take(db);
  withheld = [...withheld, ...capped];
  const claimed = rows.filter((r) => r.status === 'sending').map((r) => claimedOf(r, options.token));
  return {
    claimed,
    cancelled: rows.filter((r) => r.status === 'cancelled').length + withheld.length + stopped,
    withheld,
    exhausted: rows
      .filter((r) => r.status === 'failed')
      .map((r) => ({ id: r.id, reason: r.last_error ?? '' })),
    later: await readNotDue(db, ids),
  };
}

/**
 * Makes a row whose claim ran out without an outcome (its worker died or hung) pending again,
 * with the reason its attempt never finished. The worker that held it can no longer write an
 * outcome: its claim token is gone.
 */
async function releaseExpiredClaim(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE forewarn.notifications n
        SET status = 'pending', claimed_until = NULL, claim_token = NULL,
            last_error = 'attempt ' || n.attempts || ' never finished (its claim ran out: the worker crashed or hung while delivering it)'
      WHERE n.id = $1 AND n.status = 'sending' AND n.claimed_until < now()`,
    [id],
  );
}

/**
 * Whether `db` is a pool (the caps then take a transaction of their own) rather than a client,
 * which the caller must have put in a transaction: a pool counts its clients, a client does not.
 */
const isPool = (db: Queryable): db is Pool => typeof (db as Partial<Pool>).totalCount === 'number';

/** The claim itself: the due rows among `ids` taken, cancelled as stale, or failed as exhausted. */
async function claimDue(
  db: Queryable,
  ids: readonly string[],
  options: ClaimOptions,
  stale: readonly string[],
): Promise<ClaimRow[]> {
  const { rows } = await db.query<ClaimRow>(
    `WITH stale AS (SELECT unnest($6::bigint[]) AS id)
     UPDATE forewarn.notifications n
        SET status = ${CLAIM_OUTCOME},
            attempts = n.attempts + CASE WHEN ${CLAIM_OUTCOME} = 'sending' THEN 1 ELSE 0 END,
            claimed_until = CASE WHEN ${CLAIM_OUTCOME} = 'sending' THEN now() + make_interval(secs => $2) END,
            claim_token = CASE WHEN ${CLAIM_OUTCOME} = 'sending' THEN $3::uuid END,
            claimed_by = CASE WHEN ${CLAIM_OUTCOME} = 'sending' THEN $4 ELSE n.claimed_by END,
            last_error = CASE ${CLAIM_OUTCOME}
                           WHEN 'cancelled' THEN 'cancelled: its cause was no longer true when its turn came (the ' || n.kind || ' stale rule)'
                           WHEN 'failed' THEN 'gave up after ' || n.attempts || ' attempts: ' || coalesce(n.last_error, 'no reason recorded')
                           ELSE n.last_error END,
            finished_at = CASE WHEN ${CLAIM_OUTCOME} = 'sending' THEN NULL ELSE now() END
      -- Conditions on the target row itself, so that a concurrent claim re-checks them on the
      -- row's newest version and two workers never both take it.
      WHERE n.id = ANY ($1::bigint[])
        AND n.next_attempt_at <= now()
        AND n.status = 'pending'
     RETURNING ${CLAIM_COLUMNS}`,
    [ids, options.claimSeconds, options.token, options.worker, options.maxAttempts, stale],
  );
  return rows;
}

/**
 * The caps at claim time: of the given messages that are due, on a capped channel and to a user,
 * those over their user's cap for the day are held until the next day or cancelled, with the
 * reason (held_reason), as the rule says. Takes the users' cap locks first (lockCapBuckets):
 * run it in the claim's transaction.
 * Returns the cancelled ones.
 */
async function capDue(
  db: Queryable,
  ids: readonly string[],
  rule: CapRule,
): Promise<Array<{ id: string; reason: string }>> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    kind: string;
    category: Category;
    channel: string;
    timezone: string | null;
  }>(
    `SELECT id, user_id, kind, category, channel, timezone FROM forewarn.notifications
      WHERE id = ANY ($1::bigint[]) AND user_id IS NOT NULL AND channel = ANY ($2::text[])
        AND status = 'pending' AND next_attempt_at <= now()
      ORDER BY id`,
    [ids, rule.channels],
  );
  if (rows.length === 0) return [];
  const key = (r: { user_id: string; channel: string }) => `${r.channel}\u0000${r.user_id}`;
  const users = new Map<string, { user: string; channel: string; since: number }>();
  for (const r of rows)
    if (!users.has(key(r)))
      users.set(key(r), { user: r.user_id, channel: r.channel, since: rule.dayStart(r) });
  await lockCapBuckets(db, [...users.values()]);
  const counts = await countSentSince(db, [...users.values()]);
  const held: Array<{ id: string; until: string | null; reason: string }> = [];
  for (const r of rows) {
    const sent = counts.get(key(r)) ?? 0;
    const verdict = rule.decide(r, sent);
    if (verdict.go) counts.set(key(r), sent + 1);
    else
      held.push({
        id: r.id,
        until: verdict.until === null ? null : new Date(verdict.until).toISOString(),
        reason: verdict.reason,
      });
  }
  if (held.length === 0) return [];
  const { rows: updated } = await db.query<{ id: string; status: string; reason: string }>(
    `UPDATE forewarn.notifications n
        SET next_attempt_at = coalesce(h.until, n.next_attempt_at), held_reason = h.reason,
            status = CASE WHEN h.until IS NULL THEN 'cancelled' ELSE n.status END,
            finished_at = CASE WHEN h.until IS NULL THEN now() ELSE n.finished_at END
       FROM jsonb_to_recordset($1::jsonb) AS h(id bigint, until timestamptz, reason text)
      WHERE n.id = h.id AND n.status = 'pending'
     RETURNING n.id, n.status, h.reason`,
    [JSON.stringify(held)],
  );
  return updated.filter((r) => r.status === 'cancelled').map((r) => ({ id: r.id, reason: r.reason }));
}

/** Users share this many cap locks per channel: a batch of thousands takes at most this many. */
const CAP_LOCK_BUCKETS = 64;

/**
 * Takes the transaction-level advisory locks that guard the given users' counts on their
 * channels: one per channel and bucket of users (hashed), in (channel, bucket) order, the same
 * in every transaction, so that two cannot deadlock. A fan-out batch of thousands of users takes
 * at most CAP_LOCK_BUCKETS per channel, well inside PostgreSQL's lock table; users who share a
 * bucket only wait for each other's few milliseconds of counting and claiming.
 */
export async function lockCapBuckets(
  db: Queryable,
  keys: ReadonlyArray<{ user: string; channel: string }>,
): Promise<void> {
  if (keys.length === 0) return;
  // The lock calls are volatile, so PostgreSQL makes them after the sort: in this order.
  await db.query(
    `SELECT pg_advisory_xact_lock(hashtext('forewarn.caps:' || b.channel), b.bucket)
       FROM (SELECT DISTINCT k.channel, abs(hashtext(k.user_id) % $3) AS bucket
               FROM unnest($1::text[], $2::text[]) AS k(channel, user_id)) b
      ORDER BY b.channel, b.bucket`,
    [keys.map((k) => k.channel), keys.map((k) => k.user), CAP_LOCK_BUCKETS],
  );
}

/**
 * How many messages went to each user on each channel since the given moment (their local
 * midnight): those sent since, and those being sent now (claimed, no outcome yet). One query for
 * the batch (index notifications_sent_by_user, migration 015). Keyed `channel\0user`.
 */
export async function countSentSince(
  db: Queryable,
  users: ReadonlyArray<{ user: string; channel: string; since: number }>,
): Promise<Map<string, number>> {
  if (users.length === 0) return new Map();
  const { rows } = await db.query<{ u: string; ch: string; sent: number }>(
    `SELECT q.u, q.ch, count(n.id)::int AS sent
       FROM jsonb_to_recordset($1::jsonb) AS q(u text, ch text, since timestamptz)
       LEFT JOIN forewarn.notifications n
         ON n.user_id = q.u AND n.channel = q.ch AND n.status IN ('sent', 'sending')
        AND (n.status = 'sending' OR n.sent_at >= q.since)
      GROUP BY q.u, q.ch`,
    [
      JSON.stringify(
        users.map((u) => ({ u: u.user, ch: u.channel, since: new Date(u.since).toISOString() })),
      ),
    ],
  );
  return new Map(rows.map((r) => [`${r.ch}\u0000${r.u}`, r.sent]));
}

/**
 * The policy's hold at claim time: of the given messages that are due, those it holds are moved
 * to the end of their window with the reason, so the claim below does not take them.
 */
async function holdDue(db: Queryable, ids: readonly string[], rule: HoldRule): Promise<void> {
  if (rule.categories.length === 0) return;
  const { rows } = await db.query<{ id: string; category: Category; timezone: string | null }>(
    `SELECT id, category, timezone FROM forewarn.notifications
      WHERE id = ANY ($1::bigint[]) AND category = ANY ($2::text[]) AND status = 'pending' AND next_attempt_at <= now()
        AND NOT urgent`,
    [ids, rule.categories],
  );
  const held = rows.flatMap((r) => {
    const hold = rule.holdFor(r);
    return hold ? [{ id: r.id, until: new Date(hold.until).toISOString(), reason: hold.reason }] : [];
  });
  if (held.length === 0) return;
  await db.query(
    `UPDATE forewarn.notifications n SET next_attempt_at = h.until, held_reason = h.reason
       FROM jsonb_to_recordset($1::jsonb) AS h(id bigint, until timestamptz, reason text)
      WHERE n.id = h.id AND n.status = 'pending'`,
    [JSON.stringify(held)],
  );
}

/**
 * The policy's opt-outs and suppressions at claim time, as they stand now: of the given messages
 * that are due (`dueOnly`; any pending one otherwise, for a group that is due as a whole), those
 * whose user opted out since they were recorded, or whose address was suppressed since, are
 * cancelled with the reason (held_reason). One query finds them all.
 */
export async function withholdDue(
  db: Queryable,
  ids: readonly string[],
  withhold: NonNullable<HoldRule['withhold']>,
  options: { dueOnly: boolean } = { dueOnly: true },
): Promise<Array<{ id: string; reason: string }>> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    user_id: string | null;
    category: Category;
    channel: string;
    address: string | null;
    opted_out: boolean;
    suppressed_reason: string | null;
    suppressed_at: Date | null;
  }>(
    `SELECT n.id, n.user_id, n.category, n.channel, n.address, p.user_id IS NOT NULL AS opted_out,
            s.reason AS suppressed_reason, s.created_at AS suppressed_at
       FROM forewarn.notifications n
       LEFT JOIN forewarn.preferences p
         ON p.user_id = n.user_id AND p.category = n.category AND p.channel = n.channel AND p.opted_out
       LEFT JOIN forewarn.suppressions s ON s.channel = n.channel AND s.address = lower(n.address)
      WHERE n.id = ANY ($1::bigint[]) AND n.status = 'pending' AND (NOT $2 OR n.next_attempt_at <= now())
        AND (p.user_id IS NOT NULL OR s.address IS NOT NULL)`,
    [ids, options.dueOnly],
  );
  const withheld = rows.flatMap((r) => {
    const reason = withhold(
      { userId: r.user_id, category: r.category, channel: r.channel, address: r.address },
      {
        optedOut: r.opted_out,
        suppression:
          r.suppressed_reason === null ? null : { reason: r.suppressed_reason, since: r.suppressed_at! },
      },
    );
    return reason === null ? [] : [{ id: r.id, reason }];
  });
  if (withheld.length === 0) return [];
  const { rows: cancelled } = await db.query<{ id: string }>(
    `UPDATE forewarn.notifications n
        SET status = 'cancelled', held_reason = w.reason, finished_at = now()
       FROM jsonb_to_recordset($1::jsonb) AS w(id bigint, reason text)
      WHERE n.id = w.id AND n.status = 'pending'
     RETURNING n.id`,
    [JSON.stringify(withheld)],
  );
  const done = new Set(cancelled.map((r) => r.id));
  return withheld.filter((w) => done.has(w.id));
}

/** Of the given messages, the pending ones whose time has not come, with their time. */
async function readNotDue(
  db: Queryable,
  ids: readonly string[],
): Promise<Array<{ id: string; dueAt: number }>> {
  const { rows } = await db.query<{ id: string; due_at: Date }>(
    `SELECT id, next_attempt_at AS due_at FROM forewarn.notifications
      WHERE id = ANY ($1::bigint[]) AND status = 'pending' AND next_attempt_at > now()`,
    [ids],
  );
  return rows.map((r) => ({ id: r.id, dueAt: r.due_at.getTime() }));
}

/**
 * Extends the claims held under `token` by `claimSeconds` from now, while their holder is still
 * at work; returns the ids still held (a row taken over by another claim is not).
 */
export async function renewClaims(db: Queryable, token: string, claimSeconds: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE forewarn.notifications SET claimed_until = now() + make_interval(secs => $2)
      WHERE claim_token = $1 AND status = 'sending'
     RETURNING id`,
    [token, claimSeconds],
  );
  return rows.map((r) => r.id);
}

/** A claimed row and the token it was claimed under: what every outcome write is fenced by. */
export interface ClaimRef {
  id: string;
  token: string;
}

/**
 * Marks claimed rows sent; returns the ids it marked. A row whose claim was taken over is left
 * to its new holder (and is not among them).
 */
export async function markSent(db: Queryable, refs: readonly ClaimRef[]): Promise<string[]> {
  if (refs.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE forewarn.notifications n
        SET status = 'sent', sent_at = now(), finished_at = now(), claimed_until = NULL, last_error = NULL
       FROM unnest($1::bigint[], $2::uuid[]) AS c(id, token)
      WHERE n.id = c.id AND n.claim_token = c.token AND n.status = 'sending'
     RETURNING n.id`,
    [refs.map((r) => r.id), refs.map((r) => r.token)],
  );
  return rows.map((r) => r.id);
}

/**
 * A temporary failure: back to pending, due again after `delayMs` by the database's clock (the
 * clock that claims compare with). Returns when that is, in epoch ms, or null when the claim was
 * taken over (nothing written).
 */
export async function markRetry(
  db: Queryable,
  ref: ClaimRef,
  reason: string,
  delayMs: number,
): Promise<number | null> {
  const { rows } = await db.query<{ due: Date }>(
    `UPDATE forewarn.notifications
        SET status = 'pending', claimed_until = NULL, last_error = $3,
            next_attempt_at = now() + make_interval(secs => $4::float8 / 1000)
      WHERE id = $1 AND claim_token = $2 AND status = 'sending'
     RETURNING next_attempt_at AS due`,
    [ref.id, ref.token, reason, delayMs],
  );
  return rows[0]?.due.getTime() ?? null;
}

/**
 * A permanent failure, or retries exhausted: recorded with the reason, never retried. Returns
 * the ids it marked (not those whose claim was taken over).
 */
export async function markFailed(
  db: Queryable,
  failures: ReadonlyArray<ClaimRef & { reason: string }>,
): Promise<string[]> {
  if (failures.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE forewarn.notifications n
        SET status = 'failed', last_error = f.reason, finished_at = now(), claimed_until = NULL
       FROM unnest($1::bigint[], $2::uuid[], $3::text[]) AS f(id, token, reason)
      WHERE n.id = f.id AND n.claim_token = f.token AND n.status = 'sending'
     RETURNING n.id`,
    [failures.map((f) => f.id), failures.map((f) => f.token), failures.map((f) => f.reason)],
  );
  return rows.map((r) => r.id);
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
         AS d(k text, c text, i bigint, t text, u text, l text, d jsonb, cat text, title text, body text, link text, err text,
              ur boolean)
     ), recorded AS (
       INSERT INTO forewarn.notifications
         (dedupe_key, cause, incident_id, kind, channel, audience, user_id, locale, data, category,
          status, attempts, sent_at, finished_at, last_error, urgent)
       SELECT d.k, d.c, d.i, d.t, 'inapp', 'user', d.u, d.l, d.d, d.cat,
              CASE WHEN d.err IS NULL THEN 'sent' ELSE 'failed' END, 1,
              CASE WHEN d.err IS NULL THEN now() END, now(), d.err, coalesce(d.ur, false)
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
          cat: draft.category,
          ...(draft.urgent ? { ur: true } : {}),
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
  type: string;
  /** The event's number within its type (a restock's waves). */
  seq: number;
  payload: Record<string, unknown>;
  dispatchedAt: Date | null;
}

export async function readIncidentEvent(db: Queryable, eventId: string): Promise<IncidentEventRow | null> {
  const { rows } = await db.query<{
    id: string;
    uid: string;
    incident_id: string;
    type: string;
    seq: number;
    payload: Record<string, unknown>;
    dispatched_at: Date | null;
  }>(
    'SELECT id, uid, incident_id, type, seq, payload, dispatched_at FROM forewarn.incident_events WHERE id = $1',
    [eventId],
  );
  const r = rows[0];
  return r
    ? {
        id: r.id,
        uid: r.uid,
        incidentId: r.incident_id,
        type: r.type,
        seq: r.seq,
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

/** Moves the fan-out's cursor without counting a batch (from one message kind to the next). */
export async function moveFanout(db: Queryable, eventId: string, cursor: string): Promise<void> {
  await db.query('UPDATE forewarn.fanouts SET cursor = $2, updated_at = now() WHERE event_id = $1', [
    eventId,
    cursor,
  ]);
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

/**
 * The users a cause's messages of `kind` reached (sent, or being sent), with the channels they
 * went on, after user `after` (keyset on user id): who hears the follow-up (a recovery notice).
 */
export async function readWarnedUsers(
  db: Queryable,
  causeId: string,
  kind: string,
  after: string | null,
  limit: number,
): Promise<
  Array<{
    userId: string;
    channels: DeliveryChannel[];
    address: string | null;
    locale: string;
    timezone: string | null;
  }>
> {
  const { rows } = await db.query<{
    user_id: string;
    channels: DeliveryChannel[];
    address: string | null;
    locale: string;
    timezone: string | null;
  }>(
    `SELECT user_id, array_agg(channel ORDER BY channel) AS channels, max(address) AS address, max(locale) AS locale,
            max(timezone) AS timezone
       FROM forewarn.notifications
      WHERE incident_id = $1 AND kind = $2 AND status IN ('sent', 'sending')
        AND ($3::text IS NULL OR user_id > $3)
      GROUP BY user_id
      ORDER BY user_id
      LIMIT $4`,
    [causeId, kind, after, limit],
  );
  return rows.map((r) => ({
    userId: r.user_id,
    channels: r.channels,
    address: r.address,
    locale: r.locale,
    timezone: r.timezone,
  }));
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

export interface DueNotification {
  id: string;
  audience: 'user' | 'ops';
  /** Claimed, and the claim ran out with no outcome: its worker crashed or hung. */
  claimExpired: boolean;
  attempts: number;
}

/** Deliveries due and not in a live claim: pending ones past their time, and expired claims. */
export async function readDueNotifications(
  db: Queryable,
  staleSeconds: number,
  limit: number,
): Promise<DueNotification[]> {
  const { rows } = await db.query<{
    id: string;
    audience: 'user' | 'ops';
    claim_expired: boolean;
    attempts: number;
  }>(
    `SELECT id, audience, status = 'sending' AS claim_expired, attempts FROM forewarn.notifications
      WHERE ((status = 'pending' AND next_attempt_at <= now() - make_interval(secs => $1))
          OR (status = 'sending' AND claimed_until < now()))
      ORDER BY id LIMIT $2`,
    [staleSeconds, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    audience: r.audience,
    claimExpired: r.claim_expired,
    attempts: r.attempts,
  }));
}

/** Which of the given notifications are ops alerts (they have a queue of their own). */
export async function readOpsNotificationIds(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM forewarn.notifications WHERE id = ANY ($1::bigint[]) AND audience = 'ops'",
    [ids],
  );
  return new Set(rows.map((r) => r.id));
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
