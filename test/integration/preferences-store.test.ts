// The delivery policy's records (lib/policy/preferences.ts, migration 014) against real
// PostgreSQL: preferences are written as insert-or-replace and read back with defaults left out;
// the schema refuses switching security off in-app; suppressions are kept lower-cased and the
// first reason stays; one query finds a batch's opt-outs and suppressions. At claim time
// (claimNotifications with the policy's rule) an address suppressed after its message was
// recorded is not tried: the message is cancelled with the reason, ops alerts included, and the
// rest of the chunk is claimed.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../lib/config/load.ts';
import type { Config } from '../../lib/config/schema.ts';
import { deliverOpsGroups } from '../../lib/notifications/deliver-groups.ts';
import { readOpsGroups } from '../../lib/notifications/ops-groups.ts';
import { holdRule } from '../../lib/notifications/policy.ts';
import { TemplateStore } from '../../lib/templates/store.ts';
import {
  claimNotifications,
  insertNotifications,
  type NotificationDraft,
} from '../../lib/notifications/store.ts';
import {
  readOptedOut,
  readPolicyRecords,
  readPreferences,
  readSuppressed,
  savePreferences,
  suppressAddress,
} from '../../lib/policy/preferences.ts';
import { captureLogs, createTestDatabase, type TestDatabase } from '../support/services.ts';

const SHIPPED = fileURLToPath(new URL('../../config/forewarn.yaml', import.meta.url));

let db: TestDatabase;
let config: Config;

beforeAll(async () => {
  db = await createTestDatabase();
  config = await loadConfigFile(SHIPPED);
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.preferences, forewarn.suppressions, forewarn.notifications CASCADE');
});

describe('preferences', () => {
  it('are written as insert-or-replace and read back', async () => {
    await savePreferences(
      db.pool,
      [
        { userId: 'u-1', category: 'promotional', channel: 'email', optedOut: true },
        { userId: 'u-1', category: 'service', channel: 'inapp', optedOut: true },
        { userId: 'u-2', category: 'promotional', channel: 'email', optedOut: true },
      ],
      'api',
    );
    await savePreferences(
      db.pool,
      [{ userId: 'u-1', category: 'service', channel: 'inapp', optedOut: false }],
      'unsubscribe',
    );
    expect(await readPreferences(db.pool, 'u-1')).toEqual([
      { userId: 'u-1', category: 'promotional', channel: 'email', optedOut: true },
      { userId: 'u-1', category: 'service', channel: 'inapp', optedOut: false },
    ]);
    expect(await readOptedOut(db.pool, ['u-1', 'u-2', 'u-3'], 'promotional', 'email')).toEqual(
      new Set(['u-1', 'u-2']),
    );
    expect(await readOptedOut(db.pool, ['u-1'], 'service', 'inapp')).toEqual(new Set());
  });

  it('cannot switch security off in-app, even written past the API', async () => {
    await expect(
      savePreferences(
        db.pool,
        [{ userId: 'u-1', category: 'security', channel: 'inapp', optedOut: true }],
        'api',
      ),
    ).rejects.toThrow(/preferences_security_inapp/);
    expect(await readPreferences(db.pool, 'u-1')).toEqual([]);
  });
});

describe('suppressions', () => {
  it('are kept lower-cased, the first reason stays, and are found in any case', async () => {
    await suppressAddress(db.pool, {
      channel: 'email',
      address: 'Zhang.San@Example.com',
      reason: '550 no such user',
    });
    await suppressAddress(db.pool, { channel: 'email', address: 'zhang.san@example.com', reason: 'again' });
    expect(await readSuppressed(db.pool, 'email', ['ZHANG.SAN@example.com', 'other@example.com'])).toEqual(
      new Set(['zhang.san@example.com']),
    );
    const records = await readPolicyRecords(
      db.pool,
      [],
      [{ channel: 'email', address: 'Zhang.San@EXAMPLE.com' }],
    );
    expect(records.suppression('email', 'zhang.san@example.com')).toMatchObject({
      reason: '550 no such user',
    });
    expect(records.suppression('inapp', 'zhang.san@example.com')).toBeUndefined();
  });
});

describe('readPolicyRecords', () => {
  it("finds a batch's opt-outs and suppressions, and nothing of others", async () => {
    await savePreferences(
      db.pool,
      [
        { userId: 'u-1', category: 'promotional', channel: 'email', optedOut: true },
        { userId: 'u-1', category: 'service', channel: 'email', optedOut: false },
        { userId: 'u-9', category: 'service', channel: 'email', optedOut: true },
      ],
      'api',
    );
    await suppressAddress(db.pool, { channel: 'email', address: 'gone@example.com', reason: 'bounced' });
    const records = await readPolicyRecords(
      db.pool,
      ['u-1', 'u-2'],
      [
        { channel: 'email', address: 'gone@example.com' },
        { channel: 'email', address: 'fine@example.com' },
      ],
    );
    expect(records.optedOut('u-1', 'promotional', 'email')).toBe(true);
    expect(records.optedOut('u-1', 'service', 'email')).toBe(false);
    expect(records.optedOut('u-9', 'service', 'email')).toBe(false);
    expect(records.suppression('email', 'gone@example.com')?.reason).toBe('bounced');
    expect(records.suppression('email', 'fine@example.com')).toBeUndefined();
  });
});

describe('at claim time', () => {
  const draft = (overrides: Partial<NotificationDraft>): NotificationDraft => ({
    dedupeKey: `test:${randomUUID()}`,
    cause: 'test',
    incidentId: null,
    kind: 'payment-degraded',
    channel: 'email',
    audience: 'user',
    userId: 'u-1',
    address: 'u1@example.com',
    locale: 'en',
    data: {},
    category: 'service',
    ...overrides,
  });

  it('cancels a message to an address suppressed since it was recorded, ops alerts too, and claims the rest', async () => {
    const [ops, user, other] = await insertNotifications(db.pool, [
      draft({
        audience: 'ops',
        userId: null,
        address: 'ops@example.com',
        category: 'ops',
        kind: 'ops-payment-degraded',
      }),
      draft({ address: 'U1@example.com' }),
      draft({ userId: 'u-2', address: 'u2@example.com' }),
    ]);
    await suppressAddress(db.pool, { channel: 'email', address: 'ops@example.com', reason: 'mailbox gone' });
    await suppressAddress(db.pool, {
      channel: 'email',
      address: 'u1@example.com',
      reason: '550 no such user',
    });
    const result = await claimNotifications(db.pool, [ops!, user!, other!], {
      token: randomUUID(),
      worker: 'test',
      claimSeconds: 60,
      maxAttempts: 3,
      hold: holdRule(config),
    });
    expect(result.claimed.map((n) => n.id)).toEqual([other]);
    expect(result.cancelled).toBe(2);
    expect(result.withheld.map((w) => w.id).sort()).toEqual([ops, user].sort());
    const { rows } = await db.pool.query<{ id: string; status: string; held_reason: string }>(
      'SELECT id::text, status, held_reason FROM forewarn.notifications WHERE id = ANY ($1::bigint[]) ORDER BY id',
      [[ops, user]],
    );
    expect(rows.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(rows[0]!.held_reason).toMatch(/^suppressed: mailbox gone \(since \d{4}-\d\d-\d\dT/);
    expect(rows[1]!.held_reason).toMatch(/^suppressed: 550 no such user \(since /);
  });

  it('cancels a message its user opted out of since, and claims their message on the other channel', async () => {
    const [promo, inapp] = await insertNotifications(db.pool, [
      draft({ category: 'promotional' }),
      draft({ category: 'service', channel: 'inapp', address: null }),
    ]);
    await savePreferences(
      db.pool,
      [{ userId: 'u-1', category: 'promotional', channel: 'email', optedOut: true }],
      'api',
    );
    const result = await claimNotifications(db.pool, [promo!, inapp!], {
      token: randomUUID(),
      worker: 'test',
      claimSeconds: 60,
      maxAttempts: 3,
      // Quiet hours aside: this is about opt-outs.
      hold: { ...holdRule(config), categories: [] },
    });
    expect(result.withheld).toEqual([{ id: promo, reason: 'opted out: promotional by email' }]);
    expect(result.claimed.map((n) => n.id)).toEqual([inapp]);
  });

  it('cancels a due group of ops alerts to a suppressed address, and sends nothing', async () => {
    const ids = await insertNotifications(db.pool, [
      draft({
        audience: 'ops',
        userId: null,
        address: 'Ops@Example.com',
        category: 'ops',
        kind: 'ops-payment-degraded',
        groupKey: 'region:CN-GD',
      }),
      draft({
        audience: 'ops',
        userId: null,
        address: 'ops@example.com',
        category: 'ops',
        kind: 'ops-payment-degraded',
        groupKey: 'region:CN-GD',
      }),
    ]);
    // Past the group's wait: due now.
    await db.pool.query("UPDATE forewarn.notifications SET created_at = now() - interval '1 hour'");
    await suppressAddress(db.pool, { channel: 'email', address: 'ops@example.com', reason: 'mailbox gone' });
    const { groups } = await readOpsGroups(db.pool, ids);
    const outcome = await deliverOpsGroups(
      {
        db: db.pool,
        config: () => config,
        logger: captureLogs('error').logger,
        templates: await TemplateStore.load(),
        channels: {
          email: () => {
            throw new Error('a suppressed address must not be tried');
          },
        },
        workerId: 'test',
        hold: holdRule(config),
      },
      groups,
    );
    expect(outcome).toMatchObject({ claimed: 0, sent: 0, withheld: 2 });
    const { rows } = await db.pool.query<{ status: string; held_reason: string }>(
      'SELECT status, held_reason FROM forewarn.notifications ORDER BY id',
    );
    expect(rows).toEqual([
      { status: 'cancelled', held_reason: expect.stringMatching(/^suppressed: mailbox gone \(since /) },
      { status: 'cancelled', held_reason: expect.stringMatching(/^suppressed: mailbox gone \(since /) },
    ]);
  });
});
