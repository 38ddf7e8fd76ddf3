// The running totals behind /metrics (lib/metrics/settled.ts) against real PostgreSQL: after each
// change (a pending message sent, messages withheld, runs recorded, an old message that settled
// long ago) the totals equal a full read of every row, scrape after scrape: nothing is counted
// twice when a row moves from live to settled, and nothing is lost.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readDetectorRuns, readFirstDelivery, readNotifications } from '../../lib/metrics/read.ts';
import { SettledTotals, type HistoryRead } from '../../lib/metrics/settled.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

async function fullRead(): Promise<HistoryRead> {
  const all = { live: { after: null } };
  const [detectorRuns, notifications, firstDelivery] = await Promise.all([
    readDetectorRuns(db.pool, all),
    readNotifications(db.pool, all),
    readFirstDelivery(db.pool, all),
  ]);
  return { detectorRuns, notifications, firstDelivery };
}

/** Order-free, sums to the microsecond: totals and a full read compare equal when their rows do. */
function normalised(read: HistoryRead) {
  const sort = <T>(rows: T[]) =>
    [...rows]
      .map((r) =>
        JSON.stringify(r, (key, v: unknown) => (key === 'sum' ? Number((v as number).toFixed(6)) : v)),
      )
      .sort();
  return {
    runs: sort(read.detectorRuns.runs),
    durations: sort(read.detectorRuns.durations),
    messages: sort(read.notifications.byOutcome),
    latency: sort(read.notifications.sendLatency),
    first: sort(read.firstDelivery),
  };
}

async function message(key: string, status: string, finishedAgo: string | null, incident: string | null) {
  await db.pool.query(
    `INSERT INTO forewarn.notifications (dedupe_key, cause, incident_id, kind, channel, audience, user_id, locale, data,
                                         status, created_at, sent_at, finished_at, held_reason)
     VALUES ($1, 'cause:1', $2, 'payment-warning', 'inapp', 'user', $1, 'zh-CN', '{}', $3,
             now() - coalesce($4::interval, '0'), CASE WHEN $3 = 'sent' THEN now() - coalesce($4::interval, '0') END,
             now() - $4::interval, CASE WHEN $3 = 'cancelled' THEN 'opted out: by the user' END)`,
    [key, incident, status, finishedAgo],
  );
}

async function run(finishedAgo: string) {
  await db.pool.query(
    `INSERT INTO forewarn.detector_runs (detector, tick_at, outcome, started_at, finished_at, worker)
     VALUES ('payment-health', now() - $1::interval, 'evaluated', now() - $1::interval - interval '0.3 s', now() - $1::interval, 'test')`,
    [finishedAgo],
  );
}

it('equals a full read of every row, scrape after scrape, as rows settle', async () => {
  const { rows } = await db.pool.query<{ id: string }>(
    `INSERT INTO forewarn.incidents (detector, subject_key, subject, kind, opened_at, open_evidence)
     VALUES ('payment-health', 'alipay:CN-GD', '{}', 'failures', now() - interval '2 hours', '{}') RETURNING id`,
  );
  const incident = rows[0]!.id;
  await db.pool.query(
    `INSERT INTO forewarn.incident_events (incident_id, type, occurred_at, payload)
     VALUES ($1, 'opened', now() - interval '2 hours', '{}')`,
    [incident],
  );
  // Settled long ago, settled a minute ago (inside the margin: still live), and not settled.
  await message('old-sent', 'sent', '1 hour', incident);
  await message('old-withheld', 'cancelled', '1 hour', incident);
  await message('recent-sent', 'sent', '1 minute', incident);
  await message('pending', 'pending', null, incident);
  await run('1 hour');
  await run('10 seconds');

  const totals = new SettledTotals();
  const first = await totals.read(db.pool);
  expect(normalised(first)).toEqual(normalised(await fullRead()));
  expect(first.notifications.byOutcome.find((r) => r.outcome === 'sent')!.n).toBe(2);
  expect(first.firstDelivery[0]!.count).toBe(1);

  // The same again: the live rows are not folded in a second time.
  expect(normalised(await totals.read(db.pool))).toEqual(normalised(first));

  // The pending message is sent, two more are withheld, another run finishes.
  await db.pool.query(
    `UPDATE forewarn.notifications SET status = 'sent', sent_at = now(), finished_at = now() WHERE dedupe_key = 'pending'`,
  );
  await message('new-withheld-1', 'cancelled', '0 seconds', incident);
  await message('new-withheld-2', 'cancelled', '0 seconds', null);
  await run('0 seconds');
  const second = await totals.read(db.pool);
  expect(normalised(second)).toEqual(normalised(await fullRead()));
  expect(second.notifications.byOutcome.find((r) => r.outcome === 'sent')!.n).toBe(3);
  expect(second.notifications.byOutcome.find((r) => r.outcome === 'withheld: opted out')!.n).toBe(3);
  expect(second.notifications.byOutcome.find((r) => r.outcome === 'pending')).toBeUndefined();
  expect(second.detectorRuns.runs).toEqual([{ detector: 'payment-health', outcome: 'evaluated', n: 3 }]);
  // One cause, heard of once: its first delivery is counted once.
  expect(second.firstDelivery[0]!.count).toBe(1);

  // A fresh process folds it all at its first scrape and agrees.
  expect(normalised(await new SettledTotals().read(db.pool))).toEqual(normalised(second));
});

it('moves rows from live to settled as the margin passes them, counting each once, a final row without a time too', async () => {
  const other = await createTestDatabase();
  try {
    const insert = (key: string, status: string, finishedAgo: string | null) =>
      other.pool.query(
        `INSERT INTO forewarn.notifications (dedupe_key, cause, kind, channel, audience, user_id, locale, data,
                                             status, created_at, sent_at, finished_at)
         VALUES ($1, 'cause:9', 'payment-warning', 'inapp', 'user', $1, 'zh-CN', '{}', $2,
                 now() - interval '1 hour', CASE WHEN $2 = 'sent' THEN now() - $3::interval END, now() - $3::interval)`,
        [key, status, finishedAgo],
      );
    await insert('ten-minutes', 'sent', '10 minutes');
    await insert('three-minutes', 'sent', '3 minutes');
    await insert('one-minute', 'failed', '1 minute');
    // Final, but with no finished_at (written before the column was kept): always read live.
    await insert('no-time', 'sent', null);
    let margin = 5 * 60_000;
    const totals = new SettledTotals({ marginMs: () => margin });
    const full = async () => {
      const all = { live: { after: null } };
      const [detectorRuns, notifications, firstDelivery] = await Promise.all([
        readDetectorRuns(other.pool, all),
        readNotifications(other.pool, all),
        readFirstDelivery(other.pool, all),
      ]);
      return normalised({ detectorRuns, notifications, firstDelivery });
    };
    const sent = (read: HistoryRead) => read.notifications.byOutcome.find((r) => r.outcome === 'sent')?.n;
    const first = await totals.read(other.pool);
    expect(sent(first)).toBe(3);
    expect(normalised(first)).toEqual(await full());
    // The margin passes the 3-minute row, then the 1-minute one: each crosses from live to settled.
    margin = 2 * 60_000;
    const second = await totals.read(other.pool);
    expect(sent(second)).toBe(3);
    expect(normalised(second)).toEqual(await full());
    margin = 0;
    const third = await totals.read(other.pool);
    expect(normalised(third)).toEqual(await full());
    expect(third.notifications.byOutcome.find((r) => r.outcome === 'failed: permanent')?.n).toBe(1);
    expect(normalised(await totals.read(other.pool))).toEqual(await full());
  } finally {
    await other.drop();
  }
});
