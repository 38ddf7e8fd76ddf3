// Message shapes (lib/templates/shapes.ts): a message rendered once per shape of its data, with
// per-user values put into the finished subject, text and HTML, must equal the message rendered
// in full for the same data (renderCompiled): for the shipped templates, and for small ones built
// to catch what the post-processing does with values (white space, escaping, lines that become
// links), with hostile and borderline values.
import { describe, expect, it } from 'vitest';
import { parse } from '../../lib/templates/engine.ts';
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
