// Which variables may be spliced (lib/templates/splice.ts): only those a template prints plainly
// or tests bare, everywhere it reads them. Whether splicing then gives exactly the full render is
// checked on whole messages in shapes.test.ts.
import { describe, expect, it } from 'vitest';
import { Liquid } from 'liquidjs';
import { parse } from '../../lib/templates/engine.ts';
import { createEngines } from '../../lib/templates/source.ts';
import { analyseVariables } from '../../lib/templates/splice.ts';

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
  ];

  for (const { source, spliceable } of cases) {
    it(`names exactly the variables used plainly: ${source}`, () => {
      for (const mode of ['text', 'html'] as const) {
        const parsed = parse(engines[mode], source);
        expect([...analyseVariables(engines[mode], parsed).spliceable].sort()).toEqual(spliceable);
      }
    });
  }

  it('names none for an engine whose output escaping it cannot reproduce', () => {
    const liquid = new Liquid({ outputEscape: 'escape' });
    expect([...analyseVariables(liquid, liquid.parse('{{ name }}')).spliceable]).toEqual([]);
  });
});
