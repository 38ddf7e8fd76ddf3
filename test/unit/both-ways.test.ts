// The linter's both-ways comparison (lib/templates/both-ways.ts): quiet on the shipped templates
// and on hostile ones the fast path gets right, and, given a fast path that is wrong, a problem
// naming the template's file and line, the part, the value set and the first differing
// character.
import { describe, expect, it } from 'vitest';
import { compareBothWays, HOSTILE_STRINGS } from '../../lib/templates/both-ways.ts';
import { parse } from '../../lib/templates/engine.ts';
import { createEngines, readTemplateSet, type CompiledTemplate } from '../../lib/templates/source.ts';
import { defaultTemplatesDir } from '../../lib/templates/store.ts';

const engines = createEngines();

async function shipped(kind: string, locale: string, channel: string) {
  const set = await readTemplateSet(defaultTemplatesDir, engines);
  const template = set.templates.find(
    (t) => t.kind === kind && t.locale === locale && t.channel === channel,
  )!;
  return { set, template };
}

/** A payment-recovered email with this body (its variables: userName, channelName, region, ...). */
function recovered(body: string, subject = 'Recovered'): CompiledTemplate {
  return {
    kind: 'payment-recovered',
    locale: 'en',
    channel: 'email',
    file: 'hostile.liquid',
    header: { key: 'subject', line: 2, template: parse(engines.text, subject) },
    body: { line: 4, text: parse(engines.text, body), html: parse(engines.html, body) },
  };
}

describe('compareBothWays', () => {
  it('finds no difference in the shipped payment emails', async () => {
    const { set, template } = await shipped('payment-degraded', 'en', 'email');
    expect(compareBothWays(engines, template, set.layout)).toEqual([]);
  });

  it('finds no difference in templates written to trip the fast path', async () => {
    const { set } = await shipped('payment-recovered', 'en', 'email');
    const bodies = [
      // An assign in a branch not taken (the "no name" variant) leaves the data's value.
      '{% if userName %}{% assign channelName = channelName | upcase %}{% endif %}{{ channelName }} {{ payUrl }}',
      '{% for c in (2..1) %}{% assign region = c %}{% endfor %}{{ region }}\n{{ preferencesUrl }}',
      '{% case userName %}{% when "小林" %}hi{% else %}{{ userName | default: "you" }}{% endcase %}\n\n{{ payUrl }}',
      'Go {{- payUrl -}} now\n{%- if userName -%}\n{{ userName }}\n{%- endif -%}\nhttps://{{ region }}',
      '{{ "now" | date: "%Y" }} {{ recoveredAt | date: "%H:%M" }} {{ userName }}',
    ];
    for (const body of bodies)
      expect(compareBothWays(engines, recovered(body), set.layout), body).toEqual([]);
  });

  it('reports the first difference, naming the file, line, part, value set and position', async () => {
    const { set } = await shipped('payment-recovered', 'en', 'email');
    const template = recovered('Hello {{ userName }}.\n\n{{ payUrl }}', '{{ channelName }} is back');
    // A fast path that forgets to escape "<" in the HTML part.
    const problems = compareBothWays(engines, template, set.layout, (shapes, data) => {
      const message = shapes.render(data);
      return { ...message, html: message.html?.replaceAll('&lt;', '<') };
    });
    expect(problems).toHaveLength(1);
    const [problem] = problems;
    expect(problem!.file).toBe('hostile.liquid');
    expect(problem!.line).toBe(4);
    expect(problem!.message).toMatch(
      /^the fast path \(rendered once per shape, per-user values spliced in\) differs from a full render in the html with the sample data, userName = "<script>alert\(\\"x\\"\)<\/script>": first difference at character \d+: fast "<script&gt;alert\(&quot;x&quot;\)<\/script&", full "&lt;script&gt;/,
    );
    expect(HOSTILE_STRINGS[0]).toBe('<script>alert("x")</script>');

    // One that drops a character of the subject: the front matter's line.
    const [subject] = compareBothWays(engines, template, set.layout, (shapes, data) => {
      const message = shapes.render(data);
      return { ...message, subject: message.subject!.slice(1) };
    });
    expect(subject!.line).toBe(2);
    expect(subject!.message).toMatch(/in the subject with the sample data: first difference at character 0/);

    // One that fails where the full render does not.
    const [failure] = compareBothWays(engines, template, set.layout, (shapes, data) => {
      if (data.userName === null) throw new Error('boom');
      return shapes.render(data);
    });
    expect(failure!.message).toMatch(
      /in the outcome with the sample data, userName = null: fast gave error boom, full gave a message/,
    );
  });
});
