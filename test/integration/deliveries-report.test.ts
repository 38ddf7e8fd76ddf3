// `forewarn deliveries stats` and `forewarn deliveries why <user>` against real PostgreSQL: messages
// recorded through the real store and delivery policy functions, one for every outcome (sent,
// failed for good, out of retries, retrying, held for quiet hours, withheld as opted out,
// suppressed, capped or without an address, cancelled as stale), then the real command, as a
// child process, prints their counts and one user's history, newest first and paged.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdFor, holdRule, withheldReason } from '../../lib/notifications/policy.ts';
import {
  claimNotifications,
  insertNotifications,
  markFailed,
  markRetry,
  markSent,
  recordInAppDeliveries,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { runForewarn } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const USER = 'u-why-1';
const OTHER = 'u-why-2';
const ADDRESS = 'zhang.san@example.com';

let db: TestDatabase;
let seq = 0;

function draft(overrides: Partial<NotificationDraft> = {}): NotificationDraft {
  seq += 1;
  const userId = overrides.userId ?? USER;
  return {
    dedupeKey: `cause:${seq}:payment-degraded:email:${userId}`,
    cause: `cause:${seq}`,
    incidentId: String(seq),
    category: 'service',
    kind: 'payment-degraded',
    channel: 'email',
    audience: 'user',
    userId,
    address: ADDRESS,
    locale: 'zh-CN',
    data: {},
    ...overrides,
  };
}

const claimOptions = (extra: Partial<Parameters<typeof claimNotifications>[2]> = {}) => ({
  token: randomUUID(),
  worker: 'test:1:a',
  claimSeconds: 60,
  maxAttempts: 5,
  ...extra,
});

async function recordOne(d: NotificationDraft): Promise<string> {
  const [id] = await insertNotifications(db.pool, [d]);
  if (id === undefined) {
    const { rows } = await db.pool.query<{ id: string }>(
      'SELECT id FROM forewarn.notifications WHERE dedupe_key = $1',
      [d.dedupeKey],
    );
    return rows[0]!.id;
  }
  return id;
}

async function claimOne(id: string, extra: Partial<Parameters<typeof claimNotifications>[2]> = {}) {
  const options = claimOptions(extra);
  const result = await claimNotifications(db.pool, [id], options);
  return { ...result, token: options.token };
}

const cli = (args: string[]) => runForewarn(['deliveries', ...args], { env: { DATABASE_URL: db.url } });

/** The ids recorded for each outcome, in the order they were recorded. */
type Seeded =
  | 'sent'
  | 'permanent'
  | 'exhausted'
  | 'retrying'
  | 'quiet'
  | 'optedOut'
  | 'suppressed'
  | 'cappedHeld'
  | 'cappedDropped'
  | 'noAddress'
  | 'stale'
  | 'pending'
  | 'old';
const ids = {} as Record<Seeded, string>;
/** A quiet window around now in UTC, so the hold is real and ends in the future. */
let heldUntil: number;

beforeAll(async () => {
  db = await createTestDatabase();

  ids.sent = await recordOne(draft());
  const sent = await claimOne(ids.sent);
  await markSent(db.pool, [{ id: ids.sent, token: sent.token }]);

  ids.permanent = await recordOne(draft());
  const permanent = await claimOne(ids.permanent);
  await markFailed(db.pool, [
    { id: ids.permanent, token: permanent.token, reason: `550 5.1.1 <${ADDRESS}>: user unknown` },
  ]);

  ids.exhausted = await recordOne(draft());
  await claimOne(ids.exhausted, { maxAttempts: 0 });

  ids.retrying = await recordOne(draft());
  const retrying = await claimOne(ids.retrying);
  await markRetry(db.pool, { id: ids.retrying, token: retrying.token }, '421 try again later', 600_000);

  const now = Date.now();
  const hhmm = (at: number) => new Date(at).toISOString().slice(11, 16);
  const config = {
    timezone: 'Asia/Shanghai',
    notifications: {
      quietHours: { promotional: { from: hhmm(now - 3_600_000), to: hhmm(now + 7_200_000) } },
    },
  } as unknown as Parameters<typeof holdFor>[0];
  const hold = holdFor(config, { category: 'promotional', timezone: 'UTC' }, now)!;
  expect(hold).not.toBeNull();
  heldUntil = hold.until;
  ids.quiet = await recordOne(
    draft({ category: 'promotional', timezone: 'UTC', notBefore: hold.until, heldReason: hold.reason }),
  );

  ids.optedOut = await recordOne(
    draft({
      category: 'promotional',
      withheldReason: withheldReason(
        { userId: USER, category: 'promotional', channel: 'email', address: ADDRESS },
        { optedOut: true, suppression: null },
      ),
    }),
  );
  ids.suppressed = await recordOne(
    draft({
      withheldReason: withheldReason(
        { userId: USER, category: 'service', channel: 'email', address: ADDRESS },
        { optedOut: false, suppression: { reason: `550 5.1.1 <${ADDRESS}>`, since: new Date(now) } },
      ),
    }),
  );
  // The frequency caps, through the real claim: with 1 email a day and one already sent today,
  // a promotional email waits for the user's next day and a service warning is dropped.
  const capped = {
    timezone: 'Asia/Shanghai',
    notifications: { quietHours: {}, caps: { email: { perDay: 1 } } },
  } as unknown as Parameters<typeof holdRule>[0];
  ids.cappedHeld = await recordOne(draft({ category: 'promotional', timezone: 'Asia/Shanghai' }));
  ids.cappedDropped = await recordOne(draft());
  const caps = await claimNotifications(
    db.pool,
    [ids.cappedHeld, ids.cappedDropped],
    claimOptions({ hold: holdRule(capped) }),
  );
  expect(caps.claimed).toEqual([]);
  ids.noAddress = await recordOne(draft({ withheldReason: 'no address: the user has no email' }));

  ids.stale = await recordOne(draft());
  const stale = await claimNotifications(
    db.pool,
    [ids.stale],
    claimOptions({ stale: { kinds: ['payment-degraded'], pick: async (m) => new Set(m.map((x) => x.id)) } }),
  );
  expect(stale.cancelled).toBe(1);

  ids.pending = await recordOne(draft());

  await recordInAppDeliveries(db.pool, [
    {
      draft: draft({
        channel: 'inapp',
        address: null,
        dedupeKey: `cause:inapp:payment-degraded:inapp:${USER}`,
      }),
      message: { title: 't', body: 'b', link: null },
    },
  ]);

  // Another user's message, and one of this user's from long ago.
  await recordOne(draft({ userId: OTHER, address: 'li.si@example.com' }));
  ids.old = await recordOne(draft());
  await db.pool.query(
    "UPDATE forewarn.notifications SET created_at = now() - interval '3 days' WHERE id = $1",
    [ids.old],
  );
});

afterAll(async () => {
  await db?.drop();
});

interface StatsJson {
  sinceMs: number;
  counts: Array<{ kind: string; channel: string; outcome: string; count: number; dueFrom: string | null }>;
  totals: Record<string, number>;
}

describe('forewarn deliveries stats', () => {
  it('counts every outcome by kind and channel, with the time held messages are delayed to', async () => {
    const run = await cli(['stats', '--format', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const stats = JSON.parse(run.stdout) as StatsJson;
    expect(stats.sinceMs).toBe(86_400_000);
    expect(stats.totals).toEqual({
      sent: 2,
      'failed: permanent': 1,
      'failed: retries exhausted': 1,
      'pending: retrying': 1,
      'held: quiet hours': 1,
      'withheld: opted out': 1,
      'withheld: suppressed': 1,
      'held: capped': 1,
      'withheld: capped': 1,
      'withheld: no address': 1,
      'cancelled: stale': 1,
      // This user's pending message and the other user's: the 3-day-old one is left out.
      pending: 2,
    });
    const quiet = stats.counts.find((c) => c.outcome === 'held: quiet hours')!;
    expect(quiet).toMatchObject({ kind: 'payment-degraded', channel: 'email', count: 1 });
    expect(new Date(quiet.dueFrom!).getTime()).toBe(heldUntil);
    expect(stats.counts.find((c) => c.outcome === 'sent' && c.channel === 'inapp')?.count).toBe(1);
  });

  it('looks as far back as --since says', async () => {
    const week = JSON.parse((await cli(['stats', '--since', '7d', '--format', 'json'])).stdout) as StatsJson;
    expect(week.totals.pending).toBe(3);
    const recent = JSON.parse(
      (await cli(['stats', '--since', '30m', '--format', 'json'])).stdout,
    ) as StatsJson;
    expect(recent.totals.pending).toBe(2);
  });

  it('prints a table with a line per kind, channel and outcome, and totals', async () => {
    const run = await cli(['stats']);
    expect(run.code, run.stderr).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.includes('held: quiet hours'));
    expect(line).toMatch(/^payment-degraded\s+email\s+held: quiet hours\s+1\s+\d{4}-\d\d-\d\dT/);
    expect(run.stdout).toContain(new Date(heldUntil).toISOString());
    expect(run.stdout).toMatch(/^withheld: opted out\s+1$/m);
  });

  it('refuses a malformed --since with a usage error', async () => {
    for (const bad of ['3 days', '24', '0h', '1w']) {
      const run = await cli(['stats', '--since', bad]);
      expect(run.code, bad).toBe(2);
      expect(run.stderr).toMatch(/expected a (duration such as 30m, 24h or 7d|positive duration), got/);
    }
  });
});

interface WhyJson {
  id: string;
  kind: string;
  category: string;
  channel: string;
  address: string | null;
  outcome: string;
  reason: string | null;
  dueAt: string | null;
  dedupeKey: string;
  cause: string;
}

const parseLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as WhyJson);

describe('forewarn deliveries why', () => {
  it("lists the user's messages newest first with outcome and reason, and nobody else's", async () => {
    const run = await cli(['why', USER, '--format', 'json']);
    expect(run.code, run.stderr).toBe(0);
    const listed = parseLines(run.stdout);
    // Everything of this user's from the last week, the 3-day-old one too.
    expect(listed).toHaveLength(14);
    const order = listed.map((d) => Number(d.id));
    expect(order).toEqual([...order].sort((a, b) => b - a));
    const byId = new Map(listed.map((d) => [d.id, d]));
    expect(byId.get(ids.optedOut)).toMatchObject({
      outcome: 'withheld: opted out',
      reason: 'opted out: promotional by email',
      category: 'promotional',
    });
    expect(byId.get(ids.suppressed)?.outcome).toBe('withheld: suppressed');
    expect(byId.get(ids.stale)).toMatchObject({ outcome: 'cancelled: stale' });
    expect(byId.get(ids.stale)?.reason).toContain('stale rule');
    expect(byId.get(ids.quiet)?.outcome).toBe('held: quiet hours');
    expect(new Date(byId.get(ids.quiet)!.dueAt!).getTime()).toBe(heldUntil);
    expect(byId.get(ids.quiet)?.reason).toMatch(/^held: promotional quiet hours/);
    expect(byId.get(ids.retrying)).toMatchObject({
      outcome: 'pending: retrying',
      reason: '421 try again later',
    });
    expect(byId.get(ids.exhausted)?.reason).toMatch(/^gave up after 0 attempts/);
    expect(byId.get(ids.cappedDropped)?.outcome).toBe('withheld: capped');
    expect(byId.get(ids.cappedDropped)?.reason).toMatch(
      /^capped: 1 of 1 email messages today in Asia\/Shanghai; a service message/,
    );
    expect(byId.get(ids.cappedHeld)).toMatchObject({ outcome: 'held: capped', category: 'promotional' });
    expect(byId.get(ids.cappedHeld)?.reason).toMatch(/^capped: .*promotional held until /);
    expect(new Date(byId.get(ids.cappedHeld)!.dueAt!).getTime()).toBeGreaterThan(Date.now());
    expect(byId.get(ids.sent)).toMatchObject({ outcome: 'sent', reason: null });
    expect(byId.get(ids.sent)?.dedupeKey).toMatch(/^cause:\d+:payment-degraded:email:u-why-1$/);
    expect(byId.get(ids.sent)?.cause).toMatch(/^cause:\d+$/);
    // Addresses are masked, in the address column and in the reasons that name them.
    expect(run.stdout).not.toContain(ADDRESS);
    expect(byId.get(ids.sent)?.address).toBe('z***@example.com');
    expect(byId.get(ids.permanent)?.reason).toBe('550 5.1.1 <z***@example.com>: user unknown');
    expect(run.stdout).not.toContain('li.si');
  });

  it('leaves out what is older than --since', async () => {
    const listed = parseLines((await cli(['why', USER, '--since', '24h', '--format', 'json'])).stdout);
    expect(listed).toHaveLength(13);
    expect(listed.some((d) => d.id === ids.old)).toBe(false);
  });

  it('pages with --limit and --before, without gaps or repeats', async () => {
    const all = parseLines((await cli(['why', USER, '--format', 'json'])).stdout).map((d) => d.id);
    const paged: string[] = [];
    let before: string | null = null;
    for (let page = 0; page < 10; page += 1) {
      const run = await cli(['why', USER, '--limit', '5', ...(before ? ['--before', before] : [])]);
      expect(run.code, run.stderr).toBe(0);
      const rows = run.stdout.split('\n').filter((l) => /^\d+\s/.test(l) && !/^\d+ messages?\b/.test(l));
      paged.push(...rows.map((l) => l.split(/\s+/)[0]!));
      expect(rows.length).toBeLessThanOrEqual(5);
      const more = /more with --before (\d+)/.exec(run.stdout);
      if (!more) break;
      expect(rows).toHaveLength(5);
      before = more[1]!;
    }
    expect(paged).toEqual(all);
  });

  it('prints a table with masked addresses, and says so when there is nothing', async () => {
    const run = await cli(['why', USER]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^id\s+recorded at\s+kind\s+category\s+channel\s+to\s+outcome\s+due\s+reason/);
    const line = run.stdout.split('\n').find((l) => l.startsWith(`${ids.optedOut} `));
    expect(line).toMatch(/promotional\s+email\s+z\*\*\*@example\.com\s+withheld: opted out\s+-\s+opted out:/);
    expect(run.stdout).not.toContain(ADDRESS);
    expect(run.stdout).toContain('14 messages');
    const none = await cli(['why', 'u-nobody']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('no messages for u-nobody in that time\n');
  });

  it('refuses a malformed --limit, --before or --since', async () => {
    for (const args of [
      ['--limit', '0'],
      ['--limit', '10001'],
      ['--before', 'abc'],
      ['--since', 'yesterday'],
    ]) {
      const run = await cli(['why', USER, ...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/expected/);
    }
  });
});
