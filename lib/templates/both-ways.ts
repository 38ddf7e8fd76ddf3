// The linter's evidence that the email fast path is exact: every template rendered both
// ways, once per shape with per-user values spliced in (shapes.ts) and in full (render.ts), with
// its kind's sample data and variants and with hostile and borderline values put into them one at
// a time (and all at once): HTML and Liquid metacharacters, `{{` and `{%`, look-alikes of the
// renderer's markers and placeholders, white space and line breaks, URLs and text that could
// become a link, very long, empty, CJK, right-to-left, zero-width, numbers written as strings,
// numbers at their edges, null, missing. One MessageShapes per template renders them in order,
// so shapes cached for one value set are found again for the next, as in a fan-out. Any
// difference in the subject or title, the text or the HTML part, or in the error thrown, is a
// problem naming the template, the part, the value set and the first differing character.
import { templateKinds } from '../../templates/kinds.ts';
import { withPinnedEffects } from './engine.ts';
import type { TemplateProblem } from './errors.ts';
import { renderCompiled, type RenderedMessage } from './render.ts';
import { MessageShapes } from './shapes.ts';
import type { CompiledLayout, CompiledTemplate, Engines } from './source.ts';

/** Strings that try to break the post-processing or the splicing, for any string in the data. */
export const HOSTILE_STRINGS: readonly string[] = [
  '<script>alert("x")</script>',
  `&amp; &lt;b&gt; ' " < > &`,
  '{{ userName }}',
  '{% if true %}x{% endif %}',
  '{%- raw -%}}}',
  '\u{E000}marked\u{E001}',
  '\u{E002}0123456789abcdef01230\u{E003}',
  '\u{E003}\u{E002}',
  ' ',
  '',
  ' leading',
  'trailing\t',
  'line\nbreak',
  'para\n\ngraph',
  'crlf\r\nline',
  'nb\u00A0sp',
  'ideographic\u3000space',
  'line\u2028separator',
  'https://evil.example.com/x',
  'http://x',
  'https://',
  'https:',
  'h',
  'ttps://x.example.com',
  '//cdn.example.com/x',
  'javascript:alert(1)',
  'x'.repeat(5000),
  `h${'t'.repeat(2000)}`,
  '微信支付（测试）【】',
  'مرحبا بالعالم',
  '\u202Eevil\u202C',
  'zero\u200Bwidth',
  '\uFEFFbom',
  'h😀😀😀😀😀😀',
  '\uD800lone',
  '0',
  '-0',
  '1e21',
  'nil',
  'true',
  'now',
];

/** URLs (links are validated as http(s) URLs, so the strings above rarely fit there). */
export const HOSTILE_URLS: readonly string[] = [
  'https://shop.example.com/p?a=<b>&c="d"\'e',
  'https://x.example.com/{{ userName }}/{%20raw%20}',
  'https://x.example.com/%E2%80%8B\u200B',
  'https://h',
  'HTTPS://X.EXAMPLE.COM/UP',
  'https://例子.测试/路径?名=值',
  `https://x.example.com/${'a'.repeat(3000)}`,
];

export const BORDERLINE_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 0.5, 0.004999, 0.995, 1e21, 123456789.987,
];

/**
 * A few of each kind, for values that can only be part of the cache key (below the top level:
 * only top-level names are spliced) and for the variants' data.
 */
const SOME_STRINGS: readonly string[] = [
  '<script>alert("x")</script>',
  '{{ userName }}',
  '\u{E002}0123456789abcdef01230\u{E003}',
  'line\nbreak',
  ' ',
  'https://evil.example.com/x',
  'x'.repeat(5000),
  'مرحبا\u200B小林😀',
];
const SOME_NUMBERS: readonly number[] = [0, -0, 0.995, 1e21];

/** The clock during the comparison: `"now" | date` must give one answer both ways. */
const PINNED_NOW_MS = Date.UTC(2026, 10, 22, 9, 51, 5);

interface ValueSet {
  name: string;
  data: unknown;
}

/**
 * Renders `template` both ways with every value set built from its kind's sample and variants;
 * returns the first difference as a problem (one per template), or none.
 */
export function compareBothWays(
  engines: Engines,
  template: CompiledTemplate,
  layout: CompiledLayout | null,
  /** The fast path; tests put a faulty one here to see the report. */
  fastPath: (shapes: MessageShapes, data: Record<string, unknown>) => RenderedMessage = (shapes, data) =>
    shapes.render(data),
): TemplateProblem[] {
  const definition = templateKinds[template.kind];
  const schema = definition.schema;
  const bases: [string, unknown][] = [
    ['sample data', definition.sample],
    ...Object.entries(definition.variants ?? {}).map(([name, data]): [string, unknown] => [
      `${name} data`,
      data,
    ]),
  ];
  const shapes = new MessageShapes(engines, template, layout);
  for (const [i, [baseName, base]] of bases.entries()) {
    for (const set of valueSets(baseName, base, i === 0, shapes.spliceable)) {
      const parsed = schema.safeParse(set.data);
      // Data that breaks the kind's schema never reaches a template.
      if (!parsed.success) continue;
      const data = parsed.data as Record<string, unknown>;
      const fast = outcome(() => withPinnedEffects(PINNED_NOW_MS, () => fastPath(shapes, data)));
      const full = outcome(() =>
        withPinnedEffects(PINNED_NOW_MS, () => renderCompiled(engines, template, layout, data)),
      );
      const difference = firstDifference(fast, full);
      if (difference) {
        return [
          {
            file: template.file,
            line:
              difference.part === 'subject' || difference.part === 'title'
                ? template.header.line
                : template.body.line,
            message: `the fast path (rendered once per shape, per-user values spliced in) differs from a full render in the ${difference.part} with the ${set.name}: ${difference.detail}`,
          },
        ];
      }
    }
  }
  return [];
}

/**
 * The base itself, then each leaf replaced by each hostile value, then every string at once.
 * Every hostile string goes into the variables the fast path splices, in the sample data (the
 * post-processing must treat each exactly as it treats the placeholder); elsewhere a value is
 * part of the cache key, rendered in full both ways, and a few of each kind show whether a
 * shape cached for one value is wrongly reused for another.
 */
function* valueSets(
  baseName: string,
  base: unknown,
  thorough: boolean,
  spliceable: ReadonlySet<string>,
): Generator<ValueSet> {
  yield { name: baseName, data: base };
  const everyString = [...HOSTILE_STRINGS, ...HOSTILE_URLS];
  const someStrings = [...SOME_STRINGS, ...HOSTILE_URLS.slice(0, 2)];
  for (const { path, value } of leafPaths(base, [])) {
    const at = `${baseName}, ${path.join('.')} = `;
    const all =
      thorough && path.length === 1 && (typeof value === 'number' || spliceable.has(String(path[0])));
    if (typeof value === 'string') {
      for (const text of all ? everyString : someStrings) {
        yield { name: `${at}${show(text)}`, data: replaced(base, path, text) };
      }
    } else if (typeof value === 'number') {
      for (const n of all ? BORDERLINE_NUMBERS : SOME_NUMBERS) {
        yield { name: `${at}${Object.is(n, -0) ? '-0' : n}`, data: replaced(base, path, n) };
      }
    } else if (Array.isArray(value)) {
      yield { name: `${at}[]`, data: replaced(base, path, []) };
      if (typeof value[0] === 'string') {
        yield { name: `${at}(a list of hostile strings)`, data: replaced(base, path, SOME_STRINGS) };
      }
    }
    if (value !== null) yield { name: `${at}null`, data: replaced(base, path, null) };
    if (path.length === 1)
      yield { name: `${baseName} without ${path[0]}`, data: replaced(base, path, undefined) };
  }
  for (const text of thorough && spliceable.size > 0 ? everyString : someStrings) {
    yield { name: `${baseName}, every string = ${show(text)}`, data: mapStrings(base, () => text) };
  }
}

/** Every string, number and list in `value`, with its path; lists count as leaves too. */
function* leafPaths(
  value: unknown,
  path: (string | number)[],
): Generator<{ path: (string | number)[]; value: unknown }> {
  if (Array.isArray(value)) {
    yield { path, value };
    for (let i = 0; i < value.length; i++) yield* leafPaths(value[i], [...path, i]);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) yield* leafPaths(child, [...path, key]);
  } else {
    yield { path, value };
  }
}

/** A copy of `base` with the value at `path` replaced (removed when `value` is undefined). */
function replaced(base: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy = (Array.isArray(base) ? [...(base as unknown[])] : { ...(base as object) }) as Record<
    string | number,
    unknown
  >;
  if (rest.length === 0 && value === undefined) delete copy[head!];
  else copy[head!] = replaced(copy[head!], rest, value);
  return copy;
}

function mapStrings(value: unknown, to: (s: string) => string): unknown {
  if (typeof value === 'string') return to(value);
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, to));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, to)]));
  }
  return value;
}

type Outcome = { ok: RenderedMessage } | { error: string };

function outcome(render: () => RenderedMessage): Outcome {
  try {
    return { ok: render() };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function firstDifference(fast: Outcome, full: Outcome): { part: string; detail: string } | null {
  if ('error' in fast || 'error' in full) {
    const a = 'error' in fast ? `error ${fast.error}` : 'a message';
    const b = 'error' in full ? `error ${full.error}` : 'a message';
    return a === b ? null : { part: 'outcome', detail: `fast gave ${a}, full gave ${b}` };
  }
  const parts = ['subject', 'title', 'text', 'html'] as const;
  for (const part of parts) {
    const a = fast.ok[part];
    const b = full.ok[part];
    if (a === b) continue;
    if (a === undefined || b === undefined) {
      return {
        part,
        detail: `fast ${a === undefined ? 'has none' : 'has one'}, full ${b === undefined ? 'has none' : 'has one'}`,
      };
    }
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return {
      part,
      detail: `first difference at character ${i}: fast ${show(a.slice(i, i + 40))}, full ${show(b.slice(i, i + 40))}`,
    };
  }
  const rest = (message: RenderedMessage) => JSON.stringify([message.kind, message.locale, message.channel]);
  return rest(fast.ok) === rest(full.ok)
    ? null
    : { part: 'kind, locale or channel', detail: `${rest(fast.ok)} vs ${rest(full.ok)}` };
}

/** A value as JSON, cut to a readable length. */
function show(text: string): string {
  const json = JSON.stringify(text);
  return json.length > 60 ? `${json.slice(0, 50)}…" (${text.length} characters)` : json;
}
