// The demo's account-inactivity story: the simulated shoppers are all active (they are paying
// right now), and three accounts of the demo's own have been idle: two in time zones where it
// is daytime now (one idle 4 days, the 3-day step; one idle 31 days, the 30-day step, in
// English), one where it is night now, whose check-up the quiet hours hold until morning there.
// The zones are picked when the demo starts, with the delivery policy itself, so the story is
// the same at any hour.
import type pg from 'pg';
import type { Config } from '../config/schema.ts';
import { escapeIdentifier } from '../db/pool.ts';
import { holdFor } from '../notifications/policy.ts';
import { wallClock } from '../policy/quiet-hours.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** Zones around the world: at any hour some are in the daytime and some at night. */
const ZONES = [
  'Asia/Shanghai',
  'Europe/London',
  'America/Los_Angeles',
  'Asia/Tokyo',
  'America/New_York',
  'Europe/Berlin',
  'Australia/Sydney',
  'Asia/Kolkata',
  'America/Sao_Paulo',
];

export interface IdleAccount {
  id: string;
  locale: string;
  timezone: string;
  idleDays: number;
  /** When the policy holds its check-up until (null: it goes now). */
  heldUntil: number | null;
}

/** Three idle accounts: two whose check-up goes out now and one that waits for the morning. */
export function idleAccounts(config: Pick<Config, 'notifications' | 'timezone'>, now: number): IdleAccount[] {
  // Daytime for the whole demo: not held now nor in half an hour.
  const day = ZONES.filter(
    (zone) =>
      holdFor(config, { category: 'security', timezone: zone }, now) === null &&
      holdFor(config, { category: 'security', timezone: zone }, now + HOUR / 2) === null,
  );
  // Night, and not about to end.
  const night = ZONES.find((zone) => {
    const hold = holdFor(config, { category: 'security', timezone: zone }, now);
    return hold !== null && hold.until - now > HOUR / 2;
  });
  if (day.length === 0 || night === undefined)
    throw new Error(
      `demo: expected zones in daytime and at night for the security quiet hours ${JSON.stringify(config.notifications.quietHours.security ?? null)}`,
    );
  return [
    { id: 'demo-idle-01', locale: 'zh-CN', timezone: day[0]!, idleDays: 4, heldUntil: null },
    { id: 'demo-idle-02', locale: 'en', timezone: day.at(-1)!, idleDays: 31, heldUntil: null },
    {
      id: 'demo-idle-03',
      locale: 'zh-CN',
      timezone: night,
      idleDays: 5,
      heldUntil: holdFor(config, { category: 'security', timezone: night }, now)!.until,
    },
  ];
}

/** Writes the idle accounts, and makes every other user active within the last two days. */
export async function seedIdleAccounts(
  client: pg.ClientBase,
  schema: string,
  accounts: readonly IdleAccount[],
  now: number,
): Promise<void> {
  const s = escapeIdentifier(schema);
  await client.query(
    `UPDATE ${s}.users SET last_active_at = $1::timestamptz - (abs(hashtext(id)) % 47) * interval '1 hour'`,
    [new Date(now)],
  );
  await client.query(
    `INSERT INTO ${s}.users (id, email, locale, region, timezone, status, last_active_at, created_at)
     SELECT a.id, a.id || '@example.com', a.locale, 'CN-GD', a.timezone, 'active', a.last_active, a.last_active - interval '400 days'
       FROM jsonb_to_recordset($1::jsonb) AS a(id text, locale text, timezone text, last_active timestamptz)`,
    [
      JSON.stringify(
        accounts.map((a) => ({
          id: a.id,
          locale: a.locale,
          timezone: a.timezone,
          last_active: new Date(now - a.idleDays * DAY - HOUR).toISOString(),
        })),
      ),
    ],
  );
}

/** "14:05 in Europe/London": the account's local time, as the story tells it. */
export function localTime(at: number, timeZone: string): string {
  const c = wallClock(at, timeZone);
  return `${String(c.hour).padStart(2, '0')}:${String(c.minute).padStart(2, '0')} in ${timeZone}`;
}
