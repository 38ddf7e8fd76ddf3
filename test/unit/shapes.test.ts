// Message shapes (lib/templates/shapes.ts): a message rendered once per shape of its data, with
// per-user values put into the finished subject, text and HTML, must equal the message rendered
// in full for the same data (renderCompiled): for the shipped templates, and for small ones built
// to catch what the post-processing does with values (white space, escaping, lines that become
// links), with hostile and borderline values.
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CHANCE_FILTERS,
  CLOCK_FILTERS,
  impureReadCount,
  parse,
  withPinnedEffects,
} from '../../lib/templates/engine.ts';
import { renderCompiled } from '../../lib/templates/render.ts';
import { MessageShapes } from '../../lib/templates/shapes.ts';
import { createEngines, readTemplateSet, type CompiledTemplate } from '../../lib/templates/source.ts';
import { defaultTemplatesDir } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';

const engines = createEngines();

const VALUES: Array<string | null> = [
  'https://shop.example.com/notifications?token=abc.def&u=1',
  'http://x.example.com/p',
  '//cdn.example.com/x',
  'http:',
  'https:/',
  'https://',
  'h',
  'tom',
  'steven-the-long',
  'sam<b>bold</b>&co',
  '<script>alert("x")</script>',
  '小林',
  'a b',
  'line\nbreak',
  'full\u3000width',
  'nb\u00a0sp',
  '\u{E000}marked\u{E001}',
  '\u{E002}000000000000000000\u{E003}',
  '',
  null,
];

function compiled(header: string, body: string, channel: 'email' | 'inapp' = 'email'): CompiledTemplate {
  return {
    kind: 'payment-degraded',
    locale: 'en',
    channel,
    file: 'test.liquid',
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
}

function outcome(render: () => unknown): unknown {
  try {
    return { ok: render() };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

describe('MessageShapes', () => {
  const layout = {
    file: '_layout.html',
    template: parse(engines.text, '<h1>{{ subject }}</h1>\n{{ content }}'),
  };

  const cases: Array<{ header: string; body: string; spliceable: string[] }> = [
    { header: 'Hi {{ a }}', body: '{{ a }}\n\n{{ b }}', spliceable: ['a', 'b'] },
    { header: 'S', body: 'http:{{ a }}\nhttps:/{{ b }}\nhttp://{{ a }}', spliceable: ['a', 'b'] },
    { header: 'S', body: '{{ a }}{{ b }}\nGo: {{ a }}\n   {{ b }}   \n', spliceable: ['a', 'b'] },
    {
      header: '{% if a %}{{ a }}{% else %}none{% endif %}',
      body: 'x {% unless b %}no b{% endunless %}',
      spliceable: ['a', 'b'],
    },
    { header: '{{ a }}', body: '{{ a | upcase }} {{ b }}', spliceable: ['b'] },
    { header: '{{ b }}', body: '{% if a == "tom" %}tom{% endif %}{{ a }}', spliceable: ['b'] },
  ];

  for (const { header, body, spliceable } of cases) {
    it(`gives the full render's message, whatever the values: ${JSON.stringify(body)}`, () => {
      for (const channel of ['email', 'inapp'] as const) {
        const template = compiled(header, body, channel);
        const shapes = new MessageShapes(engines, template, layout);
        expect([...shapes.spliceable].sort()).toEqual(spliceable);
        for (const a of VALUES) {
          for (const b of VALUES) {
            const data = { a, b };
            expect(outcome(() => shapes.render(data))).toEqual(
              outcome(() => renderCompiled(engines, template, layout, data)),
            );
          }
        }
      }
    });
  }

  it('splices nothing under a layout that transforms the subject or content, and still gives the full render', () => {
    const layouts = [
      '<h1>{{ subject | upcase }}</h1>{{ content }}',
      '<title>{{ subject | truncate: 12 }}</title>{{ content }}',
      '{% if content contains "x" %}x{% endif %}{{ content }}',
      '{{ content | escape }}',
      // Beyond the analysis (a lookup by computed name): it cannot say the layout keeps them.
      '{% assign k = "subject" %}<h1>{{ [k] | upcase }}</h1>{{ content }}',
    ];
    for (const source of layouts) {
      const transforming = { file: '_layout.html', template: parse(engines.text, source) };
      const template = compiled('Hi {{ a }}', 'Pay with {{ a }}: {{ b }}');
      const shapes = new MessageShapes(engines, template, transforming);
      expect([...shapes.spliceable], source).toEqual([]);
      for (const a of ['tom', 'steven-the-long', 'https://x.example.com/p?u=1']) {
        const data = { a, b: `${a}-b` };
        expect(
          outcome(() => shapes.render(data)),
          source,
        ).toEqual(outcome(() => renderCompiled(engines, template, transforming, data)));
      }
    }
    // The in-app channel has no HTML part, so the layout does not matter there.
    const inapp = compiled('Hi {{ a }}', '{{ a }}', 'inapp');
    const underLayout = { file: '_layout.html', template: parse(engines.text, layouts[0]!) };
    expect([...new MessageShapes(engines, inapp, underLayout).spliceable]).toEqual(['a']);
  });

  it('gives every shipped template’s full render, with hostile per-user values', async () => {
    const set = await readTemplateSet(defaultTemplatesDir, engines);
    expect(set.problems).toEqual([]);
    let checked = 0;
    for (const template of set.templates) {
      const shapes = new MessageShapes(engines, template, set.layout);
      const sample = templateKinds[template.kind].sample as Record<string, unknown>;
      for (const value of VALUES) {
        const data: Record<string, unknown> = { ...sample };
        if ('userName' in data) data.userName = value;
        for (const link of ['payUrl', 'preferencesUrl', 'dashboardUrl']) {
          if (link in data && value !== null && value !== '') data[link] = value;
        }
        if ('channelName' in data && value) data.channelName = value;
        expect(outcome(() => shapes.render(data))).toEqual(
          outcome(() => renderCompiled(engines, template, set.layout, data)),
        );
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12 * VALUES.length);
  });

  it('renders a fan-out of per-user links from one shape', async () => {
    const set = await readTemplateSet(defaultTemplatesDir, engines);
    const template = set.templates.find((t) => t.kind === 'payment-degraded' && t.channel === 'email')!;
    const shapes = new MessageShapes(engines, template, set.layout);
    expect(shapes.spliceable).toContain('preferencesUrl');
    const sample = templateKinds['payment-degraded'].sample as Record<string, unknown>;
    for (let user = 1; user <= 50; user++) {
      const data = {
        ...sample,
        preferencesUrl: `https://shop.example.com/prefs?u=${user}&sig=${user * 7919}`,
      };
      const message = shapes.render(data);
      expect(message.text).toContain(`https://shop.example.com/prefs?u=${user}&sig=${user * 7919}`);
      expect(message.html).toContain(`https://shop.example.com/prefs?u=${user}&amp;sig=${user * 7919}`);
    }
    expect(shapes.size).toBe(1);
  });
});

// Templates written to trip the analysis: a name assigned in a branch not taken, a loop variable
// named like the data, lookups by literal and computed names, ranges, whitespace control, names
// used both bare and filtered. Every one must give the full render's message for a run of value
// sets that differ in a value or two (so cached shapes are found again), whatever the analysis
// decides to splice.
describe('MessageShapes on hostile templates', () => {
  const layout = {
    file: '_layout.html',
    template: parse(engines.text, '<title>{{ subject }}</title>\n{{ content }}'),
  };
  const dataSets: Record<string, unknown>[] = [];
  // b = 'a' names another variable, for the lookups by computed name.
  for (const b of [null, 'tom', 'x', 'a']) {
    for (const list of [[], ['tom', 'x y', 'first', 'x']]) {
      for (const a of ['first', 'second', 'https://x.example.com/a?b=1&c=<2>', 'a b', '']) {
        for (const n of [0, -0, 3]) dataSets.push({ a, b, n, list });
      }
    }
  }

  const cases: Array<{ body: string; spliceable?: string[]; full?: boolean }> = [
    // Assigned in a branch that is not taken: the data's value is printed.
    { body: '{% if b %}{% assign a = "x" %}{% endif %}{{ a }}', spliceable: ['b'] },
    { body: '{% unless b %}{% assign a = b %}{% endunless %}{{ a | upcase }}' },
    { body: '{% for i in list %}{% assign a = i %}{% endfor %}{{ a }}' },
    { body: '{% case b %}{% when "tom" %}{% assign a = "t" %}{% else %}{% endcase %}[{{ a }}]' },
    { body: '{{ a }}{% assign a = a | append: "!" %}{{ a }}' },
    // A loop variable named like the data, and forloop.
    { body: '{% for a in list %}{{ a }}{% endfor %}{{ a }}' },
    { body: '{% for x in list limit: n offset: n %}{{ x }}{% else %}{{ a }}{% endfor %}' },
    {
      body: '{% for x in list reversed %}{% if forloop.last %}{{ a }}{% break %}{% endif %}{% continue %}{% endfor %}',
    },
    // The base of a property access, ranges, literal and quoted lookups.
    { body: '{{ (1..n)[0] }}{{ a }}', spliceable: ['a', 'b'] },
    { body: '{{ (1..n).size }} {{ "abcdef"[n] }} {{ (n..3) | join: "," }}' },
    { body: '{{ ["a"] | upcase }} {{ a }}' },
    { body: '{{ list[n] }} {{ list.first }} {{ a.size }} {{ a }}' },
    // Looked up by a name computed at render time: could read anything.
    { body: '{{ [b] | upcase }} {{ a }}', full: true },
    { body: '{% if [a] %}{{ b }}{% endif %}', full: true },
    // Filters that evaluate an expression in the render's own scope: they may read any name.
    { body: '{{ list | where_exp: "x", "x == a" | size }} {{ a }}', full: true },
    {
      body: '{{ list | reject_exp: "x", "x == b" | join }}|{{ list | find_exp: "x", "x != b" }}',
      full: true,
    },
    {
      body: '{% assign e = "x == a" %}{{ list | has_exp: "x", e }} {{ list | find_index_exp: "x", e }}',
      full: true,
    },
    {
      body: '{% assign g = list | group_by_exp: "x", "x | append: b | size" %}{{ g | map: "name" | join }}',
      full: true,
    },
    // Whitespace control, nested conditions, comments.
    { body: 'x  {{- a -}}  y\n  {%- if a -%}  z  {%- endif -%}\n\n{{ a }}', spliceable: ['a', 'b'] },
    {
      body: '{% if a %}{% if b %}{% unless a %}no{% else %}{{ a }}{% endunless %}{% endif %}{% elsif b %}{{ b }}{% endif %}',
      spliceable: ['a', 'b'],
    },
    {
      body: '{% comment %}{{ a | upcase }}{% endcomment %}{%# {{ b | size }} %}{{ a }} {{ b }}',
      spliceable: ['a', 'b'],
    },
    // Used bare and filtered, compared, or in a filter's argument.
    { body: '{{ a }} {{ a | upcase }}' },
    { body: '{% if a == b %}{{ a }}{% endif %} {% if a contains "x" %}x{% endif %}' },
    { body: '{% case a %}{% when b %}{{ a }}{% when "first", "second" %}fs{% endcase %}' },
    { body: '{{ "x" | append: a }} {{ b | default: a }}' },
    // A value in what staff may think of as an attribute (shown as text, escaped), and numbers.
    { body: '<a href="{{ a }}">{{ b }}</a>\n{{ a }}', spliceable: ['a', 'b'] },
    { body: '{{ 1 | divided_by: n }} {{ n }} {{ n | times: -1 }}' },
  ];

  for (const { body, spliceable, full } of cases) {
    it(`gives the full render's message: ${JSON.stringify(body)}`, () => {
      for (const channel of ['email', 'inapp'] as const) {
        const template = compiled(`S {{ b }}`, body, channel);
        const shapes = new MessageShapes(engines, template, layout);
        expect(shapes.fullRenderReason !== null, String(shapes.fullRenderReason)).toBe(full === true);
        if (spliceable) expect([...shapes.spliceable].sort()).toEqual(spliceable);
        for (const data of dataSets) {
          expect(
            outcome(() => shapes.render(data)),
            JSON.stringify(data),
          ).toEqual(outcome(() => renderCompiled(engines, template, layout, data)));
        }
      }
    });
  }

  it('keys on values that JSON would confuse: NaN and null, a Date and its ISO text, undefined and null in a list', () => {
    const date = new Date('2026-11-22T09:51:05.000Z');
    const runs: Array<[string, Record<string, unknown>[]]> = [
      ['{{ 1 | divided_by: n }} [{{ n }}]', [{ n: 0 }, { n: -0 }, { n: null }, { n: Number.NaN }]],
      ['[{{ d }}]', [{ d: date.toISOString() }, { d: date }]],
      ['[{{ d.first }}]', [{ d: [null] }, { d: [undefined] }]],
    ];
    for (const [body, sequence] of runs) {
      const template = compiled('S', body);
      const shapes = new MessageShapes(engines, template, null);
      const seen = new Set<string>();
      for (const data of sequence) {
        const full = outcome(() => renderCompiled(engines, template, null, data));
        expect(
          outcome(() => shapes.render(data)),
          `${body} ${String(data.n ?? data.d)}`,
        ).toEqual(full);
        seen.add(JSON.stringify(full));
      }
      // Each run holds two values that render differently (so a confused key would show).
      expect(seen.size, body).toBeGreaterThan(1);
    }
  });
});

// The clock and chance: a shape rendered at 09:00 must not be sent at 10:00, nor one random pick
// to everyone. Such renders are not cached; the linter pins both to compare two renders.
describe('MessageShapes and the clock or chance', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('never reuses a render that read the clock', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const bodies = [
      '{{ "now" | date: "%H:%M" }} {{ a }}',
      '{{ b | date: "%Y-%m-%d %H:%M" }} {{ a }}',
      '{{ "today" | date_to_xmlschema }} {{ a }}',
    ];
    for (const body of bodies) {
      const template = compiled('S', body);
      const shapes = new MessageShapes(engines, template, null);
      for (const [at, a] of [
        ['2026-11-22T01:00:00Z', 'tom'],
        ['2026-11-22T02:00:00Z', 'sam'],
        ['2026-11-22T02:00:00Z', 'tom'],
      ] as const) {
        vi.setSystemTime(new Date(at));
        const data = { a, b: 'now' };
        expect(shapes.render(data), `${body} at ${at}`).toEqual(
          renderCompiled(engines, template, null, data),
        );
      }
      expect(shapes.size, body).toBe(0);
    }
    // A date from the data is not the clock: one shape serves every user.
    const dated = compiled('S', '{{ b | date: "%H:%M" }} {{ a }}');
    const shapes = new MessageShapes(engines, dated, null);
    for (const a of ['xavier', 'zoe']) shapes.render({ a, b: '2026-11-22T02:00:00Z' });
    expect(shapes.size).toBe(1);
  });

  it('never reuses a render that drew a sample, and renders the same when chance is pinned', () => {
    const template = compiled('S', '{{ list | sample }} {{ a }}');
    const shapes = new MessageShapes(engines, template, null);
    const data = { a: 'tom', list: Array.from({ length: 50 }, (_, i) => `p${i}`) };
    const before = impureReadCount();
    shapes.render(data);
    expect(impureReadCount()).toBeGreaterThan(before);
    expect(shapes.size).toBe(0);
    const pinned = () => withPinnedEffects(0, () => shapes.render(data));
    expect(pinned()).toEqual(pinned());
    expect(pinned()).toEqual(withPinnedEffects(0, () => renderCompiled(engines, template, null, data)));
  });

  it('watches every filter whose output depends on the clock or chance (checked on every filter liquidjs has)', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const inputs: unknown[] = [
      'now',
      'today',
      Array.from({ length: 30 }, (_, i) => i),
      'abcdefghijklmnopqrstuvwxyz',
    ];
    const effectful: string[] = [];
    for (const name of Object.keys(engines.text.filters).sort()) {
      const parsed = parse(engines.text, `{{ v | ${name} }}`);
      const run = (time: string, random: number) => {
        vi.setSystemTime(new Date(time));
        vi.spyOn(Math, 'random').mockReturnValue(random);
        return inputs.map((v) => {
          try {
            return JSON.stringify(engines.text.renderSync(parsed, { v }));
          } catch (error) {
            return (error as Error).message;
          }
        });
      };
      const first = run('2026-01-01T00:00:00Z', 0.1);
      const second = run('2027-06-15T12:34:56Z', 0.9);
      if (JSON.stringify(first) !== JSON.stringify(second)) effectful.push(name);
    }
    expect(effectful.sort()).toEqual([...CLOCK_FILTERS, ...CHANCE_FILTERS].sort());
  });
});
