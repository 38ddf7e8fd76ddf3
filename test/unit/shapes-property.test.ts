// Message shapes against full renders on random templates: a fixed-seed generator writes Liquid
// from a grammar of what staff can write (text that could become links or paragraphs, outputs
// bare and filtered, whitespace control, if/elsif/else, unless, case/when, for with modifiers,
// break and continue, assign to names the data also has, comments, computed lookups), and every
// template is rendered with a run of random data by one MessageShapes, so that shapes cached for
// one value set are reused for the next, and compared with renderCompiled. Deterministic, and
// bounded to a few seconds. To search further: SHAPES_PROPERTY_SEED=7 SHAPES_PROPERTY_TEMPLATES=2000.
import { describe, expect, it } from 'vitest';
import { parse } from '../../lib/templates/engine.ts';
import { renderCompiled } from '../../lib/templates/render.ts';
import { MessageShapes } from '../../lib/templates/shapes.ts';
import { createEngines, type CompiledLayout, type CompiledTemplate } from '../../lib/templates/source.ts';

const engines = createEngines();

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly #random: () => number;
  constructor(seed: number) {
    this.#random = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.#random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.#random() < p;
  }
}

/** The data's top-level names: strings (or null), a number, a list. */
const STRINGS = ['a', 'b', 'c'] as const;
const NAMES = [...STRINGS, 'n', 'list'] as const;

const STRING_VALUES: Array<string | null> = [
  'tom',
  'x',
  'steven-the-long',
  'https://shop.example.com/p?u=1&s=<2>',
  'http://x.example.com',
  'https:',
  'https://',
  'h',
  'ttps://evil.example.com',
  '//cdn.example.com/x',
  '{{ a }}',
  '{% if a %}x{% endif %}',
  '<b>&amp;"\'</b>',
  '小林',
  '微信支付（测试）',
  'مرحبا',
  '\u202Eevil',
  'zero\u200Bwidth',
  'a b',
  ' lead',
  'trail ',
  'line\nbreak',
  '\n\n',
  '\t',
  'x'.repeat(300),
  `https://shop.example.com/${'p'.repeat(200)}`,
  '\u{E000}m\u{E001}',
  '\u{E002}0\u{E003}',
  '\u{E002}',
  '0',
  '-0',
  'nil',
  'true',
  'now',
  '😀',
  'h😀😀😀😀😀',
  'httpsx😀😀',
  '',
  null,
];
// 1e21 bounds ranges too: (1..n) is refused by the engine's memory limit, both ways.
const NUMBER_VALUES = [0, -0, 1, -1, 2, 3, 0.5, 1e21, 3.14159];
const LIST_VALUES: unknown[][] = [
  [],
  ['tom'],
  ['tom', 'https://x.example.com/a', '小林'],
  ['a b', '', 'x'],
  [1, 2, 3],
];

const LITERALS = [
  'Hi ',
  'x',
  ' ',
  '  ',
  '\t',
  '\n',
  '\n\n',
  ' \n \n',
  'https://',
  'http://',
  'h',
  'ttps://',
  ':',
  '/',
  '<p>',
  '&amp;',
  '，您好：',
  '"',
  'end.',
];

function variable(g: Gen): string {
  return g.pick(NAMES);
}

function stringVar(g: Gen): string {
  return g.pick(STRINGS);
}

/** A value expression: mostly variables, sometimes literals, lookups and ranges. */
function operand(g: Gen): string {
  switch (g.int(10)) {
    case 0:
      return `"${g.pick(['tom', 'x', '', 'https://a.example.com'])}"`;
    case 1:
      return g.pick(['1', '0', 'nil', 'empty', 'blank', 'true']);
    case 2:
      return g.pick(['list.size', 'list.first', 'list[0]', 'a.size', '["a"]', '[b]', 'list[n]']);
    case 3:
      return g.pick(['(1..n)', '(0..2)']);
    default:
      return variable(g);
  }
}

function filterChain(g: Gen): string {
  const filters = [
    'upcase',
    'downcase',
    'size',
    'strip',
    'escape',
    'url_encode',
    'first',
    'last',
    `append: ${g.pick(['"x"', stringVar(g), '" "'])}`,
    `prepend: ${g.pick(['"https://"', stringVar(g)])}`,
    `default: ${g.pick(['"d"', stringVar(g)])}`,
    'truncate: 5',
    'replace: "a", "b"',
    'split: "" | join: "-"',
    'slice: 0, 3',
    'plus: 1',
    'times: 2',
    `divided_by: ${g.pick(['n', '2'])}`,
    'join: ","',
    'strip_newlines',
    'newline_to_br',
    `where_exp: "x", "x == ${stringVar(g)}" | size`,
  ];
  let chain = '';
  const count = 1 + g.int(2);
  for (let i = 0; i < count; i++) chain += ` | ${g.pick(filters)}`;
  return chain;
}

function output(g: Gen): string {
  const open = g.pick(['{{ ', '{{ ', '{{- ']);
  const close = g.pick([' }}', ' }}', ' -}}']);
  if (g.chance(0.55)) return `${open}${stringVar(g)}${close}`;
  return `${open}${operand(g)}${g.chance(0.7) ? filterChain(g) : ''}${close}`;
}

function condition(g: Gen): string {
  switch (g.int(8)) {
    case 0:
      return `${stringVar(g)} == "tom"`;
    case 1:
      return `${stringVar(g)} != empty`;
    case 2:
      return `${stringVar(g)} contains "x"`;
    case 3:
      return `${stringVar(g)} and ${stringVar(g)}`;
    case 4:
      return `${stringVar(g)} or n > 0`;
    case 5:
      return `list.size > 1`;
    default:
      return stringVar(g);
  }
}

function tag(g: Gen, body: string): string {
  const open = g.pick(['{% ', '{% ', '{%- ']);
  const close = g.pick([' %}', ' %}', ' -%}']);
  return `${open}${body}${close}`;
}

function nodes(g: Gen, depth: number, inLoop: boolean): string {
  let out = '';
  const count = 1 + g.int(depth > 0 ? 4 : 3);
  for (let i = 0; i < count; i++) out += node(g, depth, inLoop);
  return out;
}

function node(g: Gen, depth: number, inLoop: boolean): string {
  const kind = depth <= 0 ? g.int(3) : g.int(14);
  switch (kind) {
    case 0:
      return g.pick(LITERALS);
    case 1:
    case 2:
      return output(g);
    case 3:
    case 4: {
      let s = tag(g, `if ${condition(g)}`) + nodes(g, depth - 1, inLoop);
      if (g.chance(0.4)) s += tag(g, `elsif ${condition(g)}`) + nodes(g, depth - 1, inLoop);
      if (g.chance(0.5)) s += tag(g, 'else') + nodes(g, depth - 1, inLoop);
      return s + tag(g, 'endif');
    }
    case 5: {
      let s = tag(g, `unless ${condition(g)}`) + nodes(g, depth - 1, inLoop);
      if (g.chance(0.3)) s += tag(g, 'else') + nodes(g, depth - 1, inLoop);
      return s + tag(g, 'endunless');
    }
    case 6: {
      const loopVar = g.pick(['item', 'item', 'a', 'b']);
      const collection = g.pick(['list', 'list', '(1..n)', 'a', 'list limit: n', 'list offset: 1 reversed']);
      let s = tag(g, `for ${loopVar} in ${collection}`);
      s += g.pick([`{{ ${loopVar} }}`, '{{ forloop.index }}', '{% unless forloop.last %}, {% endunless %}']);
      s += nodes(g, depth - 1, true);
      if (g.chance(0.3)) s += tag(g, 'else') + nodes(g, depth - 1, inLoop);
      return s + tag(g, 'endfor');
    }
    case 7: {
      let s = tag(g, `case ${g.pick([stringVar(g), 'n', 'list.size'])}`);
      s +=
        tag(g, `when ${g.pick(['"tom"', '1', stringVar(g), '"x", "tom"', '"x" or 0'])}`) +
        nodes(g, depth - 1, inLoop);
      if (g.chance(0.5)) s += tag(g, `when ${g.pick(['"小林"', '2', 'nil'])}`) + nodes(g, depth - 1, inLoop);
      if (g.chance(0.5)) s += tag(g, 'else') + nodes(g, depth - 1, inLoop);
      return s + tag(g, 'endcase');
    }
    case 8:
    case 12: {
      // Mostly names the data has too: an assign in a branch not taken leaves the data's value.
      const target = g.pick(['a', 'b', 'c', 'a', 'b', 't', 'item']);
      const value = g.chance(0.5)
        ? `"${g.pick(['tom', 'x y', ''])}"`
        : `${operand(g)}${g.chance(0.5) ? filterChain(g) : ''}`;
      return tag(g, `assign ${target} = ${value}`);
    }
    case 9:
      return g.pick([
        '{% comment %}{{ a | upcase }}{% endcomment %}',
        '{%# {{ b }} %}',
        '{% comment %}x{% endcomment %}',
      ]);
    case 10:
      return inLoop ? tag(g, g.pick(['break', 'continue'])) : g.pick(LITERALS);
    case 11:
      return `\n${tag(g, `if ${condition(g)}`)}\n${nodes(g, depth - 1, inLoop)}\n${tag(g, 'endif')}\n`;
    default:
      return g.pick(LITERALS) + output(g);
  }
}

function randomData(g: Gen): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const name of STRINGS) {
    if (g.chance(0.03)) continue; // missing: a strict error, both ways
    data[name] = g.chance(0.08) ? g.pick(NUMBER_VALUES) : g.pick(STRING_VALUES);
  }
  data.n = g.chance(0.1) ? g.pick(['2', 'x']) : g.pick(NUMBER_VALUES);
  data.list = g.pick(LIST_VALUES);
  return data;
}

/** Liquid's renderLimit is a wall-clock budget; a random template never comes near it. */
function outcome(render: () => unknown): unknown {
  try {
    return { ok: render() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function compile(header: string, body: string, channel: 'email' | 'inapp'): CompiledTemplate | null {
  try {
    return {
      kind: 'payment-degraded',
      locale: 'en',
      channel,
      file: 'random.liquid',
      header: {
        key: channel === 'email' ? 'subject' : 'title',
        line: 2,
        template: parse(engines.text, header),
      },
      body: {
        line: 4,
        text: parse(engines.text, body),
        html: channel === 'email' ? parse(engines.html, body) : null,
      },
    };
  } catch {
    return null;
  }
}

const LAYOUTS: CompiledLayout[] = [
  '<h1>{{ subject }}</h1>\n{{ content }}',
  '<html lang="{{ locale }}"><title>{{ subject }}</title>{% if content %}{{ content }}{% endif %}</html>',
  '<title>{{ subject | truncate: 20 }}</title>{{ content }}',
  '{% assign k = "subject" %}<title>{{ [k] | upcase }}</title>{{ content }}',
].map((source) => ({ file: '_layout.html', template: parse(engines.text, source) }));

describe('MessageShapes on random templates', () => {
  it('gives the full render’s message for every generated template and value set (seeded)', () => {
    const g = new Gen(Number(process.env.SHAPES_PROPERTY_SEED ?? 20261203));
    const TEMPLATES = Number(process.env.SHAPES_PROPERTY_TEMPLATES ?? 200);
    const VALUE_SETS = 12;
    let compared = 0;
    let spliced = 0;
    let parsed = 0;
    for (let i = 0; i < TEMPLATES; i++) {
      const header = nodes(g, 1, false).replace(/\n/g, ' ');
      const body = nodes(g, 3, false);
      const channel = g.chance(0.8) ? 'email' : 'inapp';
      const template = compile(header, body, channel);
      if (!template) continue;
      parsed++;
      const layout = g.chance(0.15) ? null : g.pick(LAYOUTS);
      const shapes = new MessageShapes(engines, template, layout);
      if (shapes.spliceable.size > 0) spliced++;
      // A fan-out: value sets that differ from one base in a value or two, so that shapes cached
      // for one are found for the next; a new base now and then.
      let base = randomData(g);
      for (let j = 0; j < VALUE_SETS; j++) {
        if (j % 7 === 6) base = randomData(g);
        const data = { ...base };
        const changes = randomData(g);
        for (let k = 0; k < 1 + g.int(2); k++) {
          const name = g.pick(NAMES);
          if (name in changes) data[name] = changes[name];
          else delete data[name];
        }
        const fast = outcome(() => shapes.render(data));
        const full = outcome(() => renderCompiled(engines, template, layout, data));
        if (JSON.stringify(fast) !== JSON.stringify(full)) {
          expect(
            fast,
            `template #${i}\nsubject: ${header}\nbody: ${JSON.stringify(body)}\ndata: ${JSON.stringify(data)}`,
          ).toEqual(full);
        }
        compared++;
      }
    }
    // The generator must keep producing templates that parse and that the fast path splices.
    expect(parsed).toBeGreaterThan(TEMPLATES * 0.9);
    expect(spliced).toBeGreaterThan(parsed * 0.2);
    expect(compared).toBe(parsed * VALUE_SETS);
  });
});
