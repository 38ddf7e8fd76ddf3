// The delivery policy at claim time (lib/notifications/store.ts claimNotifications with the hold
// of lib/notifications/policy.ts): a due security message whose recipient is in quiet hours now
// is not taken but moved to the end of the window, with the reason on the row, and reported as
// `later`; a service message beside it is taken; once the window is over it is taken too.
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { holdRule } from '../../lib/notifications/policy.ts';
import {
  claimNotifications,
  insertNotifications,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));
// 03:00 and 10:00 in Los Angeles (PST) on 4 December 2099: far ahead of the database's clock,
// so that a held message is never due by the time the test runs.
const NIGHT = Date.parse('2099-12-04T11:00:00Z');
const MORNING = Date.parse('2099-12-04T18:00:00Z');

let db: TestDatabase;
let config: Config;

beforeAll(async () => {
  db = await createTestDatabase();
  config = await loadConfigFile(SHIPPED);
});

afterAll(async () => {
  await db?.drop();
});

function draft(kind: string, category: NotificationDraft['category']): NotificationDraft {
  return {
    dedupeKey: `cause:1:${kind}:email:la-user`,
    cause: 'cause:1',
    incidentId: null,
    kind,
    channel: 'email',
    audience: 'user',
    userId: 'la-user',
    address: 'la@example.com',
    locale: 'en',
    data: {},
    category,
    timezone: 'America/Los_Angeles',
  };
}

const claim = (ids: string[], now: number) =>
  claimNotifications(db.pool, ids, {
    token: randomUUID(),
    worker: 'test',
    claimSeconds: 60,
    maxAttempts: 3,
    hold: holdRule(config, () => now),
  });

describe('quiet hours at claim time', () => {
  it('holds a due security message at 03:00 in its zone and takes the service one', async () => {
    const [security, service] = await insertNotifications(db.pool, [
      draft('security-checkup', 'security'),
      draft('payment-degraded', 'service'),
    ]);
    const result = await claim([security!, service!], NIGHT);
    expect(result.claimed.map((n) => n.id)).toEqual([service]);
    expect(result.later).toEqual([{ id: security, dueAt: Date.parse('2099-12-04T16:00:00Z') }]);
    const { rows } = await db.pool.query<{ status: string; next_attempt_at: Date; held_reason: string }>(
      'SELECT status, next_attempt_at, held_reason FROM forewarn.notifications WHERE id = $1',
      [security],
    );
    expect(rows[0]).toMatchObject({ status: 'pending', next_attempt_at: new Date('2099-12-04T16:00:00Z') });
    expect(rows[0]!.held_reason).toBe(
      'held: security quiet hours 22:00-08:00 in America/Los_Angeles, until 2099-12-04T16:00:00.000Z',
    );
  });

  it('takes it once its time has come and the window is over', async () => {
    const { rows } = await db.pool.query<{ id: string }>(
      `UPDATE forewarn.notifications SET next_attempt_at = now() WHERE category = 'security' RETURNING id::text`,
    );
    const result = await claim([rows[0]!.id], MORNING);
    expect(result.claimed.map((n) => n.id)).toEqual([rows[0]!.id]);
    expect(result.later).toEqual([]);
  });
});
