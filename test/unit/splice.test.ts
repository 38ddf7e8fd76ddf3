// Which variables may be spliced (lib/templates/splice.ts): only those a template prints plainly
// or tests bare, everywhere it reads them. Whether splicing then gives exactly the full render is
// checked on whole messages in shapes.test.ts.
import { describe, expect, it } from 'vitest';
import { Liquid } from 'liquidjs';
import { parse } from '../../lib/templates/engine.ts';
import { createEngines } from '../../lib/templates/source.ts';
import { analyseVariables, SCOPE_FILTERS } from '../../lib/templates/splice.ts';

const engines = createEngines();

describe('analyseVariables', () => {
  const cases: Array<{ source: string; spliceable: string[] }> = [
    { source: 'Hi {{ name }}, see {{ url }} and {{ url }}.', spliceable: ['name', 'url'] },
    {
      source: '{% if name %}Hi {{ name }}{% elsif other %}Yo{% else %}Hello{% endif %}!',
      spliceable: ['name', 'other'],
    },
    { source: '{% unless name %}anonymous{% endunless %} {{ name }}', spliceable: ['name'] },
    { source: '{{ name | upcase }} / {{ name }}', spliceable: [] },
    { source: '{% if name == "小林" %}friend{% endif %}{{ name }}', spliceable: [] },
    { source: '{{ name.size }} {{ name }}', spliceable: [] },
    { source: '{% assign name = "x" %}{{ name }}', spliceable: [] },
    { source: '{% for name in list %}{{ name }}{% endfor %}{{ name }}', spliceable: [] },
    { source: '{{ "a" | append: name }}', spliceable: [] },
    { source: '{{ list | join: name }} {{ url }}', spliceable: ['url'] },
    { source: '{% if a %}{% for x in list %}{{ x }}{{ b }}{% endfor %}{% endif %}', spliceable: ['a', 'b'] },
    { source: '{% if c %}{% assign name = "x" %}{% endif %}{{ name }}', spliceable: ['c'] },
    {
      source: '{% for i in list %}{% assign name = i %}{% endfor %}{{ name }} {{ url }}',
      spliceable: ['url'],
    },
    { source: '{{ ["name"] | upcase }} {{ name }}', spliceable: [] },
    { source: '{% for x in list limit: n %}{{ x }}{% endfor %}{{ n }}', spliceable: [] },
    { source: '{% comment %}{{ name | upcase }}{% endcomment %}{{ name }}', spliceable: ['name'] },
  ];

  for (const { source, spliceable } of cases) {
    it(`names exactly the variables used plainly: ${source}`, () => {
      for (const mode of ['text', 'html'] as const) {
        const parsed = parse(engines[mode], source);
        expect([...analyseVariables(engines[mode], parsed).spliceable].sort()).toEqual(spliceable);
      }
    });
  }

  // The cache key holds every name that may be looked up: one left out means a message reusing
  // a shape rendered with another message's value.
  const reads: Array<{ source: string; reads: string[] }> = [
    // liquidjs' own analysis takes `name` as local after an assign anywhere before it.
    { source: '{% if c %}{% assign name = "x" %}{% endif %}{{ name }}', reads: ['c', 'name'] },
    { source: '{% for i in list %}{% assign name = i %}{% endfor %}{{ name }}', reads: ['list', 'name'] },
    // ... and ignores the base of a property access.
    { source: '{{ (1..n)[0] }} {{ "abc"[i] }}', reads: ['i', 'n'] },
    {
      source: '{% for x in (a..b) offset: c %}{{ x | append: d }}{% endfor %}',
      reads: ['a', 'b', 'c', 'd', 'x'],
    },
    { source: '{% case k %}{% when w, 1 %}{% else %}{{ e }}{% endcase %}', reads: ['e', 'k', 'w'] },
    { source: '{{ list[i][j].code }}', reads: ['i', 'j', 'list'] },
  ];

  for (const { source, reads: expected } of reads) {
    it(`names every variable it may read: ${source}`, () => {
      const uses = analyseVariables(engines.text, parse(engines.text, source));
      expect(uses.unsupported).toBeNull();
      // More is harmless (liquidjs' second opinion may add property names it takes for roots).
      expect(uses.reads).toEqual(expect.arrayContaining(expected));
    });
  }

  it('gives up on a lookup by a computed name, which may read anything', () => {
    for (const source of ['{{ [key] }}', '{% if [key] %}x{% endif %}', '{{ x | append: [key] }}']) {
      const uses = analyseVariables(engines.text, parse(engines.text, source));
      expect(uses.unsupported, source).toMatch(/computed name/);
      expect([...uses.spliceable]).toEqual([]);
    }
  });

  it('gives up on every tag it does not know, should the engine ever allow one', () => {
    // The engine refuses these outright...
    const sources = [
      '{% capture x %}{{ name }}{% endcapture %}{{ x | upcase }}',
      '{% echo name | upcase %}',
      '{% liquid\necho name | upcase\n%}',
      '{% raw %}{{ name }}{% endraw %}',
      '{% cycle name, "b" %}',
      '{% increment name %}',
      '{% tablerow x in list %}{{ x }}{% endtablerow %}',
      '{% render "x" %}',
    ];
    for (const source of sources) expect(() => parse(engines.text, source), source).toThrow();
    // ... and an engine that has them gets no splicing from the analysis.
    const everything = new Liquid({ templates: { x: '{{ name }}' } });
    for (const source of sources) {
      const uses = analyseVariables(everything, everything.parse(source));
      expect(uses.unsupported, source).toMatch(/does not know/);
    }
  });

  it('analyses nothing under a liquidjs version it was not verified against', () => {
    const parsed = parse(engines.text, '{{ name }}');
    expect(analyseVariables(engines.text, parsed).unsupported).toBeNull();
    const uses = analyseVariables(engines.text, parsed, '10.31.0');
    expect(uses.unsupported).toMatch(/liquidjs 10\.31\.0 is installed; the analysis was verified against /);
    expect([...uses.spliceable]).toEqual([]);
  });

  it('gives up on every filter that may read a variable named only in a string (checked on every filter liquidjs has)', () => {
    const readers: string[] = [];
    const v = [1, 'q', { name: 'q', s: 2 }];
    for (const name of Object.keys(engines.text.filters).sort()) {
      const outputs = (s: unknown) =>
        ['"x", "x == s"', '"x == s"', '"x", "s"', '"s"', '"s", "q"'].map((args) => {
          try {
            return engines.text.parseAndRenderSync(`{{ v | ${name}: ${args} | json }}`, { v, s });
          } catch (error) {
            return (error as Error).message.replace(/, line:\d+, col:\d+/, '');
          }
        });
      if (JSON.stringify(outputs(1)) !== JSON.stringify(outputs('zz'))) readers.push(name);
    }
    expect(readers.sort()).toEqual([...SCOPE_FILTERS].sort());
    for (const name of SCOPE_FILTERS) {
      const uses = analyseVariables(engines.text, parse(engines.text, `{{ v | ${name}: "x", "x == s" }}`));
      expect(uses.unsupported, name).toMatch(/may read any variable/);
    }
  });

  it('names none for an engine whose output escaping it cannot reproduce', () => {
    const liquid = new Liquid({ outputEscape: 'escape' });
    expect([...analyseVariables(liquid, liquid.parse('{{ name }}')).spliceable]).toEqual([]);
  });
});
