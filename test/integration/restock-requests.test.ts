// forewarn's restock records (migration 008) and the queries the restock waves read them with:
// a request recorded once per user and product whose requested_at only moves forward, opt-outs
// recorded and taken back, a product's requests paged in wave order (requested_at, user_id), and
// the opt-outs among a page's users.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  readRestockOptouts,
  readRestockRequestPage,
  recordRestockOptout,
  recordRestockRequest,
  removeRestockOptout,
  type RestockRequest,
} from '../../lib/restock/requests.ts';
import { createTestDatabase, type TestDatabase } from '../support/services.ts';

const T0 = Date.UTC(2026, 11, 1, 8, 0, 0, 123);
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

beforeEach(async () => {
  await db.pool.query('TRUNCATE forewarn.restock_requests, forewarn.restock_optouts');
});

describe('recordRestockRequest', () => {
  it('records one row per user and product; asking again moves requested_at forward, never back', async () => {
    const key = { userId: 'u1', productId: 'p1' };
    expect(await recordRestockRequest(db.pool, { ...key, at: T0 })).toEqual({ requestedAt: T0 });
    expect(await recordRestockRequest(db.pool, { ...key, at: T0 + 5_000 })).toEqual({
      requestedAt: T0 + 5_000,
    });
    expect(await recordRestockRequest(db.pool, { ...key, at: T0 + 1_000 })).toEqual({
      requestedAt: T0 + 5_000,
    });
    await recordRestockRequest(db.pool, { userId: 'u1', productId: 'p2', at: T0 });
    const { rows } = await db.pool.query(
      'SELECT user_id, product_id FROM forewarn.restock_requests ORDER BY 2',
    );
    expect(rows).toEqual([
      { user_id: 'u1', product_id: 'p1' },
      { user_id: 'u1', product_id: 'p2' },
    ]);
  });

  it("takes the database's time when given none, to the millisecond", async () => {
    const { requestedAt } = await recordRestockRequest(db.pool, { userId: 'u1', productId: 'p1' });
    const { rows } = await db.pool.query<{ now: Date }>('SELECT now() AS now');
    expect(Math.abs(requestedAt - rows[0]!.now.getTime())).toBeLessThan(60_000);
    expect(Number.isInteger(requestedAt)).toBe(true);
  });
});

describe('readRestockRequestPage', () => {
  it('pages a product in (requested_at, user_id) order, ties by user id, other products left out', async () => {
    const rows: Array<[string, number]> = [
      ['u5', T0 + 2],
      ['u3', T0],
      ['u1', T0 + 1],
      ['u4', T0],
      ['u2', T0 + 2],
      ['u6', T0 + 3],
    ];
    for (const [userId, at] of rows) await recordRestockRequest(db.pool, { userId, productId: 'p1', at });
    await recordRestockRequest(db.pool, { userId: 'u0', productId: 'p2', at: T0 - 1 });

    const seen: RestockRequest[] = [];
    let after: RestockRequest | null = null;
    for (;;) {
      const page = await readRestockRequestPage(db.pool, 'p1', { after, limit: 2 });
      if (page.length === 0) break;
      expect(page.length).toBeLessThanOrEqual(2);
      seen.push(...page);
      after = page.at(-1)!;
    }
    expect(seen).toEqual([
      { userId: 'u3', requestedAt: T0 },
      { userId: 'u4', requestedAt: T0 },
      { userId: 'u1', requestedAt: T0 + 1 },
      { userId: 'u2', requestedAt: T0 + 2 },
      { userId: 'u5', requestedAt: T0 + 2 },
      { userId: 'u6', requestedAt: T0 + 3 },
    ]);
  });

  it('starts at a time with { requestedAt, userId: "" }: the requests made then or later', async () => {
    await recordRestockRequest(db.pool, { userId: 'u1', productId: 'p1', at: T0 });
    await recordRestockRequest(db.pool, { userId: 'u2', productId: 'p1', at: T0 + 10 });
    expect(
      await readRestockRequestPage(db.pool, 'p1', {
        after: { requestedAt: T0 + 1, userId: '' },
        limit: 10,
      }),
    ).toEqual([{ userId: 'u2', requestedAt: T0 + 10 }]);
    expect(
      await readRestockRequestPage(db.pool, 'p1', { after: { requestedAt: T0, userId: '' }, limit: 10 }),
    ).toHaveLength(2);
  });
});

describe('opt-outs', () => {
  it('are recorded once, read for a set of users of one product, and taken back', async () => {
    await recordRestockOptout(db.pool, { userId: 'u1', productId: 'p1' });
    await recordRestockOptout(db.pool, { userId: 'u1', productId: 'p1' });
    await recordRestockOptout(db.pool, { userId: 'u2', productId: 'p1' });
    await recordRestockOptout(db.pool, { userId: 'u3', productId: 'p2' });
    expect(await readRestockOptouts(db.pool, 'p1', ['u1', 'u2', 'u3', 'u4'])).toEqual(new Set(['u1', 'u2']));
    expect(await readRestockOptouts(db.pool, 'p1', ['u3'])).toEqual(new Set());
    expect(await readRestockOptouts(db.pool, 'p1', [])).toEqual(new Set());
    expect(await removeRestockOptout(db.pool, { userId: 'u1', productId: 'p1' })).toBe(true);
    expect(await removeRestockOptout(db.pool, { userId: 'u1', productId: 'p1' })).toBe(false);
    expect(await readRestockOptouts(db.pool, 'p1', ['u1', 'u2'])).toEqual(new Set(['u2']));
  });
});
