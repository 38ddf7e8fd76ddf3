// The pure inventory detector (detectors/inventory) on a fixed clock: the threshold and
// days-of-cover rules, hysteresis, one cause per episode, restock detection, wave timing and size,
// the end of the waves, the minimum restock quantity and the cooldown (a product flapping between
// 0 and 1 unit for an hour sends at most one wave).
import { describe, expect, it } from 'vitest';
import {
  assessProduct,
  detectInventory,
  detectProduct,
  detectRemoved,
  sameState,
  type InventoryChange,
  type InventoryRules,
  type ProductSignals,
  type ProductState,
  type RestockChange,
} from '../../detectors/inventory/index.ts';

const T0 = Date.UTC(2026, 10, 1, 12, 0);
const MINUTE = 60_000;

const RULES: InventoryRules = {
  lowStock: { defaultThreshold: 10, coverDays: 2, salesWindowDays: 7, recoveryFactor: 1.5 },
  restock: { minQuantity: 5, multiplier: 1, waveIntervalMinutes: 30, maxWaves: 3, cooldownMinutes: 120 },
};

function product(overrides: Partial<ProductSignals> = {}): ProductSignals {
  return {
    productId: 'steam-100',
    name: 'Steam 充值卡 100 元',
    stock: 100,
    threshold: null,
    soldUnits: 0,
    pendingOrders: 0,
    pendingUnits: 0,
    ...overrides,
  };
}

/** Runs the detector over ticks, carrying the state; returns every change and the last state. */
function run(
  ticks: ReadonlyArray<{ at: number } & Partial<ProductSignals>>,
  rules: InventoryRules = RULES,
  initial?: ProductState,
): { changes: InventoryChange[]; state: ProductState | null } {
  let state: ProductState | null = initial ?? null;
  const changes: InventoryChange[] = [];
  for (const { at, ...signals } of ticks) {
    const out = detectProduct(product(signals), state ?? undefined, rules, at);
    changes.push(...out.changes);
    state = out.state;
  }
  return { changes, state };
}

const summary = (changes: InventoryChange[]) =>
  changes.map((c) => `${c.kind} ${c.type}${c.kind === 'restock' ? ` w${c.wave} c${c.capacity}` : ''}`);

describe('low stock: the rules', () => {
  it('is low at or under the default threshold, and not above it', () => {
    expect(assessProduct(product({ stock: 10 }), RULES)).toMatchObject({ low: true, reason: 'threshold' });
    expect(assessProduct(product({ stock: 11 }), RULES)).toMatchObject({ low: false, reason: null });
  });

  it("uses the product's own threshold over the default", () => {
    expect(assessProduct(product({ stock: 5, threshold: 3 }), RULES).low).toBe(false);
    expect(assessProduct(product({ stock: 3, threshold: 3 }), RULES)).toMatchObject({
      low: true,
      threshold: 3,
    });
    expect(assessProduct(product({ stock: 30, threshold: 40 }), RULES).low).toBe(true);
  });

  it('is low when the days of cover fall under the configured days', () => {
    // 210 units in 7 days: 30 a day; 50 units last 1.67 days.
    const a = assessProduct(product({ stock: 50, soldUnits: 210 }), RULES);
    expect(a).toMatchObject({ low: true, reason: 'cover', salesPerDay: 30 });
    expect(a.daysOfCover).toBeCloseTo(50 / 30, 6);
    // 60 units last exactly 2 days: not under.
    expect(assessProduct(product({ stock: 60, soldUnits: 210 }), RULES).low).toBe(false);
  });

  it('has no days of cover when nothing sold, and then only the threshold counts', () => {
    const a = assessProduct(product({ stock: 11, soldUnits: 0 }), RULES);
    expect(a.daysOfCover).toBeNull();
    expect(a.low).toBe(false);
  });

  it('names the threshold when both rules hold', () => {
    expect(assessProduct(product({ stock: 4, soldUnits: 700 }), RULES).reason).toBe('threshold');
  });

  it('opens an episode with the numbers the messages need', () => {
    const { changes } = run([{ at: T0, stock: 8, soldUnits: 14, pendingOrders: 3, pendingUnits: 4 }]);
    expect(changes).toEqual([
      {
        detector: 'inventory',
        subjectKey: 'steam-100',
        subject: { productId: 'steam-100' },
        kind: 'low-stock',
        type: 'opened',
        at: T0,
        productId: 'steam-100',
        productName: 'Steam 充值卡 100 元',
        stock: 8,
        threshold: 10,
        salesPerDay: 2,
        daysOfCover: 4,
        pendingOrders: 3,
        pendingUnits: 4,
        reason: 'threshold',
        evidence: {
          stock: 8,
          threshold: 10,
          salesPerDay: 2,
          daysOfCover: 4,
          pendingOrders: 3,
          pendingUnits: 4,
          reason: 'threshold',
        },
      },
    ]);
  });
});

describe('low stock: episodes', () => {
  it('opens once while it stays low, however many ticks', () => {
    const ticks = Array.from({ length: 60 }, (_, i) => ({ at: T0 + i * MINUTE, stock: 10 - (i % 5) }));
    const { changes, state } = run(ticks);
    expect(summary(changes)).toEqual(['low-stock opened']);
    expect(state?.low).toEqual({ openedAt: T0, reason: 'threshold' });
  });

  it('does not flap at the edge: it recovers only above threshold × factor (hysteresis)', () => {
    const stocks = [10, 11, 9, 12, 15, 14, 15, 10, 13];
    const { changes } = run(stocks.map((stock, i) => ({ at: T0 + i * MINUTE, stock })));
    expect(summary(changes)).toEqual(['low-stock opened']);
    const recovered = run([...stocks, 16].map((stock, i) => ({ at: T0 + i * MINUTE, stock })));
    expect(summary(recovered.changes)).toEqual(['low-stock opened', 'low-stock resolved']);
    expect(recovered.changes[1]).toMatchObject({ stock: 16, reason: 'threshold', resolution: 'recovered' });
    expect(recovered.state).toBeNull();
  });

  it('a cover episode needs cover × factor back as well as the stock', () => {
    // 30 a day; cover 2 days opens under 60 units and recovers from 90 (3 days).
    const stocks = [59, 70, 89, 61, 90];
    const { changes } = run(stocks.map((stock, i) => ({ at: T0 + i * MINUTE, stock, soldUnits: 210 })));
    expect(summary(changes)).toEqual(['low-stock opened', 'low-stock resolved']);
    expect(changes[0]).toMatchObject({ reason: 'cover', stock: 59 });
    expect(changes[1]).toMatchObject({ stock: 90, reason: 'cover', daysOfCover: 3 });
  });

  it('a new episode after a recovery is a new cause', () => {
    const stocks = [5, 50, 50, 6];
    const { changes } = run(stocks.map((stock, i) => ({ at: T0 + i * MINUTE, stock })));
    expect(summary(changes)).toEqual(['low-stock opened', 'low-stock resolved', 'low-stock opened']);
  });

  it('a product with nothing to remember has no state', () => {
    expect(detectProduct(product({ stock: 100 }), undefined, RULES, T0)).toEqual({
      state: null,
      changes: [],
    });
  });
});

describe('restock detection', () => {
  const out = { at: T0, stock: 0 };

  it('opens a restock (wave 1) when an out product comes back with at least minQuantity', () => {
    const { changes, state } = run([out, { at: T0 + MINUTE, stock: 80 }]);
    // Stock 0 opened a low-stock episode, 80 ends it.
    expect(summary(changes)).toEqual(['low-stock opened', 'low-stock resolved', 'restock opened w1 c80']);
    const restock = changes[2] as RestockChange;
    expect(restock).toMatchObject({
      detector: 'inventory',
      subjectKey: 'steam-100',
      subject: { productId: 'steam-100' },
      kind: 'restock',
      type: 'opened',
      productId: 'steam-100',
      productName: 'Steam 充值卡 100 元',
      stock: 80,
      pendingUnits: 0,
      available: 80,
      capacity: 80,
      wave: 1,
      restockedAt: T0 + MINUTE,
    });
    expect(restock.seq).toBeUndefined();
    expect(state?.restock).toEqual({ restockedAt: T0 + MINUTE, wave: 1, lastWaveAt: T0 + MINUTE });
  });

  it('sizes the wave on the available stock: 30 pending units shrink 80 to 50', () => {
    const { changes } = run([out, { at: T0 + MINUTE, stock: 80, pendingUnits: 30, pendingOrders: 30 }]);
    expect(changes.find((c) => c.kind === 'restock')).toMatchObject({ available: 50, capacity: 50 });
  });

  it('applies the multiplier, rounding down', () => {
    const rules = { ...RULES, restock: { ...RULES.restock, multiplier: 0.5 } };
    const { changes } = run([out, { at: T0 + MINUTE, stock: 81 }], rules);
    expect(changes.find((c) => c.kind === 'restock')).toMatchObject({ available: 81, capacity: 40 });
  });

  it('counts a product as out while pending orders take all its stock', () => {
    const { changes } = run([
      { at: T0, stock: 20, pendingUnits: 20 },
      { at: T0 + MINUTE, stock: 60, pendingUnits: 20 },
    ]);
    expect(summary(changes.filter((c) => c.kind === 'restock'))).toEqual(['restock opened w1 c40']);
  });

  it('a product first seen in stock is no restock', () => {
    expect(run([{ at: T0, stock: 80 }]).changes).toEqual([]);
  });

  it('needs the minimum restock quantity: 4 units back is still out', () => {
    const { changes, state } = run([out, { at: T0 + MINUTE, stock: 4 }, { at: T0 + 2 * MINUTE, stock: 3 }]);
    expect(changes.filter((c) => c.kind === 'restock')).toEqual([]);
    expect(state?.outSince).toBe(T0);
    const back = run([out, { at: T0 + MINUTE, stock: 4 }, { at: T0 + 2 * MINUTE, stock: 5 }]);
    expect(summary(back.changes.filter((c) => c.kind === 'restock'))).toEqual(['restock opened w1 c5']);
  });
});

describe('restock waves', () => {
  const opened = [
    { at: T0, stock: 0 },
    { at: T0 + MINUTE, stock: 80 },
  ];
  const minutes = (from: number, to: number, stock: (m: number) => number) =>
    Array.from({ length: to - from + 1 }, (_, i) => ({
      at: T0 + (from + i) * MINUTE,
      stock: stock(from + i),
    }));

  it('sends the next wave one interval after the last, sized on the stock read then', () => {
    // Opened at minute 1; the stock sells down by one a minute.
    const { changes } = run([...opened, ...minutes(2, 61, (m) => 80 - m)]);
    const waves = changes.filter((c): c is RestockChange => c.kind === 'restock');
    expect(waves.map((w) => [w.type, w.seq, w.wave, w.capacity, (w.at - T0) / MINUTE])).toEqual([
      ['opened', undefined, 1, 80, 1],
      ['wave', 2, 2, 49, 31],
      ['wave', 3, 3, 19, 61],
    ]);
    expect(waves.every((w) => w.restockedAt === T0 + MINUTE)).toBe(true);
  });

  it('ends one interval after the last of maxWaves, with no wave after it', () => {
    const { changes, state } = run([...opened, ...minutes(2, 150, () => 70)]);
    const restock = changes.filter((c): c is RestockChange => c.kind === 'restock');
    expect(restock.map((w) => `${w.type} ${(w.at - T0) / MINUTE}`)).toEqual([
      'opened 1',
      'wave 31',
      'wave 61',
      'resolved 91',
    ]);
    expect(restock[3]).toMatchObject({ resolution: 'max-waves', wave: 3, capacity: 70 });
    expect(state).toEqual({ cooldownUntil: T0 + (91 + 120) * MINUTE });
  });

  it('stops when the available stock runs out: resolved, no more waves', () => {
    const { changes, state } = run([...opened, ...minutes(2, 20, () => 30), ...minutes(21, 120, () => 0)]);
    const restock = changes.filter((c): c is RestockChange => c.kind === 'restock');
    expect(restock.map((w) => `${w.type} ${(w.at - T0) / MINUTE}`)).toEqual(['opened 1', 'resolved 21']);
    expect(restock[1]).toMatchObject({ resolution: 'sold-out', available: 0, capacity: 0, wave: 1 });
    expect(state?.outSince).toBe(T0 + 21 * MINUTE);
  });

  it('stops when pending orders take what is left, though stock is not 0', () => {
    const { changes } = run([...opened, { at: T0 + 5 * MINUTE, stock: 12, pendingUnits: 12 }]);
    expect(changes.at(-1)).toMatchObject({ kind: 'restock', type: 'resolved', resolution: 'sold-out' });
  });
});

describe('flapping and cooldown', () => {
  const flapping = (rules: InventoryRules) =>
    run(
      Array.from({ length: 61 }, (_, i) => ({ at: T0 + i * MINUTE, stock: i % 2 })),
      rules,
    ).changes.filter((c): c is RestockChange => c.kind === 'restock');

  it('a product flapping between 0 and 1 unit for an hour sends no wave with the shipped minimum (5)', () => {
    expect(flapping(RULES)).toEqual([]);
  });

  it('with a minimum of 1 it sends at most one wave: the cooldown holds the rest back', () => {
    const rules = { ...RULES, restock: { ...RULES.restock, minQuantity: 1 } };
    const restock = flapping(rules);
    expect(restock.filter((c) => c.type !== 'resolved').map((c) => `${c.type} w${c.wave}`)).toEqual([
      'opened w1',
    ]);
    expect(restock.map((c) => c.type)).toEqual(['opened', 'resolved']);
  });

  it('without a cooldown the same flapping would alert again and again (what the cooldown is for)', () => {
    const rules = { ...RULES, restock: { ...RULES.restock, minQuantity: 1, cooldownMinutes: 0 } };
    expect(flapping(rules).filter((c) => c.type === 'opened').length).toBe(30);
  });

  it('stock back during the cooldown opens a restock when the cooldown ends, not before', () => {
    const rules = { ...RULES, restock: { ...RULES.restock, cooldownMinutes: 60 } };
    const { changes } = run(
      [
        { at: T0, stock: 0 },
        { at: T0 + MINUTE, stock: 10 }, // opened
        { at: T0 + 2 * MINUTE, stock: 0 }, // sold out: cooldown until minute 62
        { at: T0 + 10 * MINUTE, stock: 50 },
        { at: T0 + 61 * MINUTE, stock: 50 },
        { at: T0 + 62 * MINUTE, stock: 50 },
      ],
      rules,
    );
    const restock = changes.filter((c): c is RestockChange => c.kind === 'restock');
    expect(restock.map((c) => `${c.type} ${(c.at - T0) / MINUTE}`)).toEqual([
      'opened 1',
      'resolved 2',
      'opened 62',
    ]);
  });

  it('after the cooldown a product that sells out and comes back again opens a new restock', () => {
    const rules = { ...RULES, restock: { ...RULES.restock, cooldownMinutes: 30 } };
    const { changes } = run(
      [
        { at: T0, stock: 0 },
        { at: T0 + MINUTE, stock: 10 },
        { at: T0 + 2 * MINUTE, stock: 0 },
        { at: T0 + 40 * MINUTE, stock: 0 },
        { at: T0 + 41 * MINUTE, stock: 20 },
      ],
      rules,
    );
    expect(changes.filter((c) => c.kind === 'restock' && c.type === 'opened').map((c) => c.at)).toEqual([
      T0 + MINUTE,
      T0 + 41 * MINUTE,
    ]);
  });

  it('an expired cooldown is forgotten: an in-stock product then has no state', () => {
    const { state } = run([{ at: T0 + 200 * MINUTE, stock: 100 }], RULES, { cooldownUntil: T0 + MINUTE });
    expect(state).toBeNull();
  });
});

describe('pages and states', () => {
  it('returns only the states that changed, null for those with nothing left', () => {
    const previous = new Map<string, ProductState>([
      // Read back from jsonb: keys in another order.
      ['a', { outSince: T0 - MINUTE, low: { reason: 'threshold', openedAt: T0 - MINUTE }, name: 'A' }],
      ['b', { name: 'B', low: { openedAt: T0 - MINUTE, reason: 'threshold' } }],
    ]);
    const page = detectInventory(
      [
        product({ productId: 'a', name: 'A', stock: 0 }),
        product({ productId: 'b', name: 'B', stock: 100 }),
        product({ productId: 'c', name: 'C', stock: 100 }),
        product({ productId: 'd', name: 'D', stock: 3 }),
      ],
      previous,
      RULES,
      T0,
    );
    expect(page.updates).toEqual([
      { subjectKey: 'b', state: null },
      {
        subjectKey: 'd',
        state: { name: 'D', low: { openedAt: T0, reason: 'threshold' }, outSince: T0 },
      },
    ]);
    expect(summary(page.changes)).toEqual(['low-stock resolved', 'low-stock opened']);
    expect(page.tally).toEqual({ low: 2, out: 2, restocking: 0 });
  });

  it('sameState compares field by field', () => {
    expect(
      sameState({ low: { openedAt: 1, reason: 'cover' } }, { low: { reason: 'cover', openedAt: 1 } }),
    ).toBe(true);
    expect(
      sameState({ low: { openedAt: 1, reason: 'cover' } }, { low: { openedAt: 1, reason: 'threshold' } }),
    ).toBe(false);
    expect(sameState({ cooldownUntil: 5 }, { cooldownUntil: 6 })).toBe(false);
    expect(sameState({ outSince: 5 }, null)).toBe(false);
  });

  it('a removed product has its open causes resolved as removed', () => {
    const changes = detectRemoved(
      'gone',
      {
        name: 'Gone',
        low: { openedAt: T0, reason: 'cover' },
        restock: { restockedAt: T0, wave: 2, lastWaveAt: T0 },
      },
      T0 + MINUTE,
    );
    expect(changes.map((c) => [c.kind, c.type, c.resolution, c.productName])).toEqual([
      ['low-stock', 'resolved', 'removed', 'Gone'],
      ['restock', 'resolved', 'removed', 'Gone'],
    ]);
    expect(detectRemoved('gone', { outSince: T0 }, T0)).toEqual([]);
  });
});
