// The Liquid engines templates are parsed and rendered with. Strict (an unknown variable or
// filter is an error, never an empty string), sandboxed (no file system, no inherited
// properties, bounded time and memory) and reduced to the tags a message needs: nothing can
// include another file, and nothing can write a value around the HTML escaping (`raw` filter,
// `echo`, `capture`...). The filters that read the clock or chance are watched, so that a
// message rendered with them is never reused for another (shapes.ts).
import { Liquid, LiquidError, toValue, type FilterImplOptions, type Template } from 'liquidjs';
import { markValue } from './html.ts';
import { localTime } from './local-time.ts';

/** `text`: values written as they are. `html`: every value escaped and marked (see html.ts). */
export type EngineMode = 'text' | 'html';

const ALLOWED_TAGS = new Set(['assign', 'case', 'comment', 'for', 'break', 'continue', 'if', 'unless', '#']);

export function createEngine(mode: EngineMode): Liquid {
  const liquid = new Liquid({
    strictVariables: true,
    strictFilters: true,
    ownPropertyOnly: true,
    // An empty in-memory file system: even a tag that slipped through finds no file.
    templates: {},
    root: [],
    relativeReference: false,
    dynamicPartials: false,
    // Only the line break right after a tag is trimmed, never the blank line after it.
    greedy: false,
    // The `date` filter writes Beijing time (a fixed offset: China has no daylight saving time).
    // Times for readers go through `local_time` instead, in the reader's own zone (local-time.ts).
    timezoneOffset: -480,
    renderLimit: 5_000,
    // Characters and list items that filters and ranges may allocate in one render: a message is
    // far smaller, and `(1..n)` with a huge n from the data would otherwise abort the process.
    memoryLimit: 1_000_000,
    ...(mode === 'html' ? { outputEscape: markValue } : {}),
  });
  for (const tag of Object.keys(liquid.tags)) {
    if (!ALLOWED_TAGS.has(tag)) delete liquid.tags[tag];
  }
  liquid.unregisterFilter('raw');
  // Times for people: in the recipient's zone, named (local-time.ts).
  liquid.registerFilter('local_time', localTime);
  for (const name of CLOCK_FILTERS) watchFilter(liquid, name, isClockValue);
  for (const name of CHANCE_FILTERS) watchFilter(liquid, name, () => true);
  return liquid;
}

/** Filters that read the clock for the input "now" or "today" (liquidjs' parseDate). */
export const CLOCK_FILTERS = [
  'date',
  'date_to_xmlschema',
  'date_to_rfc822',
  'date_to_string',
  'date_to_long_string',
];
/** Filters whose output is chance: `sample` picks at random. */
export const CHANCE_FILTERS = ['sample'];

const isClockValue = (value: unknown): boolean => {
  const v: unknown = toValue(value);
  return v === 'now' || v === 'today';
};

let impureReads = 0;
let pinned: { nowMs: number; random: () => number } | null = null;

/**
 * How many times a render has read the clock or chance so far in this process. A render during
 * which it changed gave output that no later render may reuse (shapes.ts does not cache it).
 */
export function impureReadCount(): number {
  return impureReads;
}

/**
 * Runs `render` with the clock fixed at `nowMs` and chance replaced by a sequence that starts
 * afresh for every call, so two renders of one template can be compared (the linter does).
 */
export function withPinnedEffects<T>(nowMs: number, render: () => T): T {
  const saved = pinned;
  pinned = { nowMs, random: seededRandom(0x5eed) };
  try {
    return render();
  } finally {
    pinned = saved;
  }
}

type FilterHandler = Extract<FilterImplOptions, (...args: never[]) => unknown>;

function watchFilter(liquid: Liquid, name: string, reads: (value: unknown) => boolean): void {
  const impl = liquid.filters[name];
  if (!impl) return;
  const handler: FilterHandler = typeof impl === 'function' ? impl : impl.handler;
  const watched: FilterHandler = function (
    this: ThisParameterType<FilterHandler>,
    value: unknown,
    ...args: unknown[]
  ) {
    if (!reads(value)) return handler.call(this, value, ...args);
    impureReads++;
    if (!pinned) return handler.call(this, value, ...args);
    if (isClockValue(value)) return handler.call(this, pinned.nowMs / 1000, ...args);
    // Only chance is left; Math.random is replaced for this synchronous call alone.
    const random = Math.random;
    Math.random = pinned.random;
    try {
      return handler.call(this, value, ...args);
    } finally {
      Math.random = random;
    }
  };
  liquid.registerFilter(name, typeof impl === 'function' ? watched : { ...impl, handler: watched });
}

/** mulberry32. */
function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TAG_ONLY_LINE = /^[ \t]*((?:\{%-?(?:[^%]|%(?!\}))*?-?%\}[ \t]*)+)$/gm;

/**
 * A line that holds nothing but tags (`{% if ... %}` on its own) vanishes from the output, as
 * staff expect; otherwise it would leave an empty line, which is a paragraph break. Line numbers
 * are unchanged.
 */
export function prepareSource(source: string): string {
  return source.replace(TAG_ONLY_LINE, (_line, tags: string) => {
    const trimmed = tags.trimEnd();
    return trimmed.endsWith('-%}') ? trimmed : `${trimmed.slice(0, -2)}-%}`;
  });
}

export function parse(liquid: Liquid, source: string): Template[] {
  return liquid.parse(prepareSource(source));
}

/** Line (1-based, within the parsed text) and message of a Liquid error; null if it is not one. */
export function liquidErrorAt(error: unknown): { line: number; message: string } | null {
  if (!(error instanceof LiquidError) && !LiquidError.is(error)) return null;
  const liquidError = error as LiquidError;
  const [line] = liquidError.token.getPosition();
  const message = liquidError.message.replace(/, line:\d+, col:\d+$/, '');
  return { line: line ?? 1, message };
}
