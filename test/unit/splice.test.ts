// Splicing (lib/templates/splice.ts): a template rendered once per shape of its data, with
// per-recipient strings put in afterwards, must give exactly what Liquid gives for the same data:
// the shipped templates and small ones that use variables every way Liquid allows, with hostile
// values (markup, line breaks, html.ts' markers, placeholder look-alikes), empty strings and nulls.
import { describe, expect, it } from 'vitest';
import type { Template } from 'liquidjs';
import { parse } from '../../lib/templates/engine.ts';
import { createEngines, readTemplateSet } from '../../lib/templates/source.ts';
import { renderSpliced, spliceableVariables } from '../../lib/templates/splice.ts';
import { defaultTemplatesDir } from '../../lib/templates/store.ts';
import { templateKinds } from '../../templates/kinds.ts';

const engines = createEngines();

const HOSTILE = [
  'https://shop.example.com/notifications?token=abc.def',
  '<script>alert("x")</script> & \'quoted\'',
  'two\n\nparagraphs\r\nand  spaces  ',
  '\u{E000}marked\u{E001} \u{E002}00000000000000000000\u{E003}',
  '小林',
  '',
  null,
];

function expectSameAsLiquid(mode: 'text' | 'html', parsed: Template[], scope: Record<string, unknown>) {
  const liquid = engines[mode];
  const direct = (() => {
    try {
      return { ok: String(liquid.renderSync(parsed, scope)) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  })();
  const spliced = (() => {
    try {
      return { ok: renderSpliced(liquid, parsed, scope) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  })();
  expect(spliced).toEqual(direct);
}

describe('renderSpliced', () => {
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
  ];

  for (const { source, spliceable } of cases) {
    it(`splices exactly where it is safe: ${source}`, () => {
      for (const mode of ['text', 'html'] as const) {
        const parsed = parse(engines[mode], source);
        expect([...spliceableVariables(engines[mode], parsed)].sort()).toEqual(spliceable);
        for (const name of HOSTILE) {
          for (const url of HOSTILE) {
            for (const other of [null, 'yes']) {
              expectSameAsLiquid(mode, parsed, { name, url, other, list: ['a', 'b'] });
            }
          }
        }
      }
    });
  }

  it('keeps Liquid’s error for a missing variable instead of a cached shape', () => {
    const parsed = parse(engines.text, '{{ name }} {{ url }}');
    expect(renderSpliced(engines.text, parsed, { name: 'a', url: 'b' })).toBe('a b');
    expect(() => renderSpliced(engines.text, parsed, { url: 'b' })).toThrow(/undefined variable: name/);
  });

  it('renders every shipped template exactly as Liquid does, whatever the per-user values', async () => {
    const set = await readTemplateSet(defaultTemplatesDir, engines);
    expect(set.problems).toEqual([]);
    let checked = 0;
    for (const template of set.templates) {
      const sample = templateKinds[template.kind].sample as Record<string, unknown>;
      for (const value of HOSTILE) {
        const scope: Record<string, unknown> = { ...sample };
        if ('userName' in scope) scope.userName = value;
        if ('preferencesUrl' in scope) scope.preferencesUrl = value ?? 'https://x.example.com/p';
        if ('channelName' in scope && value) scope.channelName = value;
        expectSameAsLiquid('text', template.header.template, scope);
        expectSameAsLiquid('text', template.body.text, scope);
        if (template.body.html) expectSameAsLiquid('html', template.body.html, scope);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12 * HOSTILE.length);
    if (set.layout) {
      for (const content of HOSTILE) {
        expectSameAsLiquid('text', set.layout.template, {
          content: content ?? '',
          subject: '<b>s</b>',
          locale: 'en',
        });
      }
    }
  });
});
