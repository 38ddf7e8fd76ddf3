// Seeded pseudo-random numbers for the simulator: the same seed always yields the same platform,
// users and traffic, so tests, backtests and demos can be replayed exactly.

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: tiny, fast and good enough for simulation (not for anything secret). */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Derives an independent 32-bit seed from a seed and a path of small integers, so that each
 * stream (one per pair and purpose) stays the same when other streams draw more or fewer numbers.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = fmix32((Math.trunc(seed) ^ 0x9e3779b9) >>> 0);
  // Seeds beyond 32 bits still matter: fold in the high part instead of silently dropping it.
  h = fmix32((h ^ Math.trunc(seed / 4_294_967_296)) >>> 0);
  for (const p of path) h = fmix32((h ^ Math.imul(p + 1, 0x85ebca6b)) >>> 0);
  return h;
}

/** MurmurHash3's finalizer: every input bit affects every output bit. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A standard normal draw from two uniforms (Box-Muller). */
export function normalFrom(u1: number, u2: number): number {
  return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
}

/** Picks from `items` with probability proportional to `weights`, using one uniform `u`. */
export function pickWeighted<T>(items: readonly T[], weights: readonly number[], u: number): T {
  let total = 0;
  for (const w of weights) total += w;
  let target = u * total;
  for (let i = 0; i < items.length; i++) {
    target -= weights[i] ?? 0;
    if (target < 0) return items[i]!;
  }
  const last = items[items.length - 1];
  if (last === undefined) throw new RangeError('pickWeighted: expected at least one item, got none');
  return last;
}
