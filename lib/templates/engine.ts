// The Liquid engines templates are parsed and rendered with. Strict (an unknown variable or
// filter is an error, never an empty string), sandboxed (no file system, no inherited
// properties) and reduced to the tags a message needs: nothing can include another file, and
// nothing can write a value around the HTML escaping (`raw` filter, `echo`, `capture`...).
import { Liquid, LiquidError, type Template } from 'liquidjs';
import { markValue } from './html.ts';

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
    // Dates in user messages are written in Beijing time unless a template says otherwise.
    // A fixed offset (China has no daylight saving time): a zone name costs an Intl lookup per date.
    timezoneOffset: -480,
    renderLimit: 5_000,
    ...(mode === 'html' ? { outputEscape: markValue } : {}),
  });
  for (const tag of Object.keys(liquid.tags)) {
    if (!ALLOWED_TAGS.has(tag)) delete liquid.tags[tag];
  }
  liquid.unregisterFilter('raw');
  return liquid;
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
