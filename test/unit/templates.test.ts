// Message templates: every shipped template renders for every locale and channel, users get
// zh-CN when their locale has none, platform data is escaped in HTML and kept as text in the
// text part, rendering is strict, bad data is a permanent error naming its path, and the linter
// names file and line for every kind of mistake (made in temporary copies of the shipped files).
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEngine } from '../../lib/templates/engine.ts';
import { TemplateError, type TemplateProblem } from '../../lib/templates/errors.ts';
import { escapeHtml, normaliseText, textToHtml } from '../../lib/templates/html.ts';
import { lintTemplates } from '../../lib/templates/lint.ts';
import { resolveLocale } from '../../lib/templates/locale.ts';
import { defaultTemplatesDir, TemplateStore, type RenderRequest } from '../../lib/templates/store.ts';
import {
  requiredLocales,
  templateKindNames,
  templateKinds,
  type TemplateInput,
  type TemplateKind,
} from '../../templates/kinds.ts';

const HOSTILE = '<script>alert(1)</script>';
const degradedSample = templateKinds['payment-degraded'].sample;

let store: TemplateStore;
let tmp: string;

beforeAll(async () => {
  store = await TemplateStore.load();
  tmp = await mkdtemp(join(tmpdir(), 'forewarn-templates-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function render<K extends TemplateKind>(request: RenderRequest<K>) {
  return store.render(request);
}

/** Runs `fn` and returns the TemplateError it throws; fails if it throws anything else or nothing. */
function templateError(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TemplateError);
    return error as TemplateError;
  }
  throw new Error('expected a TemplateError, nothing was thrown');
}

describe('shipped templates', () => {
  const cases = templateKindNames.flatMap((kind) =>
    templateKinds[kind].channels.flatMap((channel) =>
      requiredLocales.map((locale) => ({ kind, channel, locale })),
    ),
  );

  it('cover every kind, channel and required locale', () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
    for (const { kind, channel, locale } of cases) {
      expect(store.locales(kind, channel)).toContain(locale);
    }
  });

  it.each(cases)(
    '$kind $channel $locale renders the sample and every variant',
    ({ kind, channel, locale }) => {
      const definition = templateKinds[kind];
      const samples = [definition.sample, ...Object.values(definition.variants ?? {})];
      for (const data of samples) {
        const message = render({ kind, channel, locale, data } as RenderRequest<typeof kind>);
        expect(message).toMatchObject({ kind, channel, locale });
        expect(message.text.length).toBeGreaterThan(20);
        expect(message.text).not.toMatch(/\n\n\n/);
        // The message names what it is about: the channel, the error code, the product, (a
        // security check-up) the user's account on the platform, (a data-feed alert) the
        // detector, (a watchdog alert) the detector or the table, or (a group of ops alerts) what
        // the group shares.
        const subject =
          'channelName' in data
            ? data.channelName
            : 'code' in data
              ? data.code
              : 'siteName' in data
                ? data.siteName
                : 'productName' in data
                  ? data.productName
                  : 'watched' in data
                    ? (data.detector ?? 'payment_attempts')
                    : 'detector' in data
                      ? data.detector
                      : data.groupValue;
        expect(message.text).toContain(subject);
        if (channel === 'email') {
          expect(message.subject).toMatch(/\S/);
          expect(message.subject).not.toMatch(/\n/);
          expect(message.title).toBeUndefined();
          expect(message.html).toMatch(/^<!doctype html>/);
          expect(message.html).toContain(`<html lang="${locale}">`);
          expect(message.html).toContain('<p style=');
          expect(message.html).toContain(escapeHtml(subject));
        } else {
          expect(message.title).toMatch(/\S/);
          expect(message.subject).toBeUndefined();
          expect(message.html).toBeUndefined();
          // In-app: one to three sentences (a link, such as a restock alert's stop link, is none).
          const prose = message.text.replace(/https?:\/\/\S+/g, 'link');
          expect(prose.split(/[。.!?！？]\s*/).filter(Boolean).length).toBeLessThanOrEqual(3);
        }
      }
    },
  );

  it('writes URLs of user emails as links in the HTML part', () => {
    const message = render({
      kind: 'payment-degraded',
      channel: 'email',
      locale: 'zh-CN',
      data: degradedSample,
    });
    expect(message.html).toContain(`<a href="${escapeHtml(degradedSample.payUrl)}"`);
    expect(message.html).toContain(`<a href="${escapeHtml(degradedSample.preferencesUrl)}"`);
    expect(message.text).toContain(degradedSample.payUrl);
  });

  it('says what to do: the backup channel, or try later when there is none', () => {
    const withBackup = render({
      kind: 'payment-degraded',
      channel: 'email',
      locale: 'zh-CN',
      data: degradedSample,
    });
    expect(withBackup.text).toContain('建议付款时改用支付宝');
    expect(withBackup.text).toContain('请不要重复付款');
    const none = { ...degradedSample, backupChannelName: null, backupChannelNames: [] };
    const without = render({ kind: 'payment-degraded', channel: 'email', locale: 'en', data: none });
    expect(without.text).toContain('try again a little later');
    expect(without.text).not.toContain('支付宝');
  });

  it('shows ops the numbers: rates as percents, window, attempts, confidence, backups', () => {
    const data = templateKinds['ops-incident-opened'].sample;
    const message = render({ kind: 'ops-incident-opened', channel: 'email', locale: 'en', data });
    expect(message.subject).toContain('117/117');
    expect(message.text).toContain('Failed or timed out: 117 (100%)');
    expect(message.text).toContain('last 30 s');
    expect(message.text).toContain('99.99% confidence: 91.8% to 100%');
    expect(message.text).toContain('Baseline: 3%');
    expect(message.text).toContain('Threshold: 11%');
    expect(message.text).toContain('alipay, qq_wallet, unionpay');
  });
});

describe('locale fallback', () => {
  const request = {
    kind: 'payment-recovered',
    channel: 'inapp',
    data: templateKinds['payment-recovered'].sample,
  } as const;

  it.each([
    ['fr', 'zh-CN'],
    ['en-US', 'en'],
    ['en_GB', 'en'],
    ['EN', 'en'],
    ['zh-TW', 'zh-CN'],
    ['zh-cn', 'zh-CN'],
    ['not a tag!', 'zh-CN'],
    [null, 'zh-CN'],
    [undefined, 'zh-CN'],
  ])('%s gets %s', (requested, expected) => {
    expect(render({ ...request, locale: requested }).locale).toBe(expected);
  });

  it('prefers an exact tag, then the language, then zh-CN', () => {
    const available = new Set(['zh-CN', 'en', 'zh-TW', 'zh']);
    expect(resolveLocale(available, 'zh-TW')).toBe('zh-TW');
    expect(resolveLocale(available, 'zh-HK')).toBe('zh');
    expect(resolveLocale(available, 'en-Latn-US')).toBe('en');
    expect(resolveLocale(new Set(['zh-CN', 'en']), 'zh-HK')).toBe('zh-CN');
  });
});

describe('platform data', () => {
  const hostile = {
    ...degradedSample,
    userName: '"><img src=x onerror=alert(2)>',
    channelName: HOSTILE,
    backupChannelName: 'A&B <i>',
    backupChannelNames: ['A&B <i>', HOSTILE],
  };

  it.each(requiredLocales)('is escaped in the HTML part and the <title> (%s)', (locale) => {
    const message = render({ kind: 'payment-degraded', channel: 'email', locale, data: hostile });
    const html = message.html ?? '';
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<i>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('A&amp;B &lt;i&gt;');
    const title = /<title>(.*)<\/title>/.exec(html)?.[1] ?? '';
    expect(title).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // Only the layout's own tags and the converter's <p>, <br> and <a> remain.
    const tags = new Set([...html.matchAll(/<\/?([a-zA-Z]+)/g)].map((m) => m[1]!.toLowerCase()));
    expect([...tags].sort()).toEqual([
      'a',
      'body',
      'br',
      'head',
      'html',
      'meta',
      'p',
      'table',
      'td',
      'title',
      'tr',
    ]);
  });

  it('is plain text, unescaped, in the text part, subject and in-app title', () => {
    const email = render({ kind: 'payment-degraded', channel: 'email', locale: 'zh-CN', data: hostile });
    expect(email.text).toContain(HOSTILE);
    expect(email.text).not.toContain('&lt;');
    expect(email.subject).toContain(HOSTILE);
    const inapp = render({ kind: 'payment-degraded', channel: 'inapp', locale: 'en', data: hostile });
    expect(inapp.title).toContain(HOSTILE);
    expect(inapp.text).toContain(HOSTILE);
  });

  it('cannot break a header line or make a link of its own', () => {
    const sneaky = {
      ...degradedSample,
      channelName: '微信支付\r\nBcc: all@example.com\n\nhttps://evil.example/login\n\n',
    };
    const message = render({ kind: 'payment-degraded', channel: 'email', locale: 'zh-CN', data: sneaky });
    expect(message.subject).not.toMatch(/[\r\n]/);
    expect(message.html).not.toContain('href="https://evil.example');
    expect(message.html).toContain('https://evil.example/login');
  });

  it('is escaped in ops emails too', () => {
    const data = { ...templateKinds['ops-incident-opened'].sample, channelName: HOSTILE };
    const message = render({ kind: 'ops-incident-opened', channel: 'email', locale: 'zh-CN', data });
    expect(message.html).not.toContain(HOSTILE);
    expect(message.html).toContain('&lt;script&gt;');
    expect(message.text).toContain(HOSTILE);
  });
});

describe('plain text to HTML', () => {
  it('makes paragraphs, line breaks and links of lines that are only a URL', () => {
    const html = textToHtml(
      'One & two\nthree\n\n\n  https://x.example/a?b=1&c=2  \n\nsee https://y.example/ here',
    );
    expect(html).toBe(
      [
        '<p style="margin:0 0 16px 0;">One &amp; two<br>\nthree</p>',
        '<p style="margin:0 0 16px 0;"><a href="https://x.example/a?b=1&amp;c=2" style="color:#1565c0;text-decoration:underline;word-break:break-all;">https://x.example/a?b=1&amp;c=2</a></p>',
        '<p style="margin:0 0 16px 0;">see https://y.example/ here</p>',
      ].join('\n'),
    );
  });

  it('never links anything but http(s)', () => {
    expect(textToHtml('javascript:alert(1)')).not.toContain('<a');
  });

  it('normalises text: no trailing spaces, one blank line between paragraphs', () => {
    expect(normaliseText('\n\n a  \nb\t\n \n\n\nc\n\n')).toBe('a\nb\n\nc');
  });
});

describe('strict rendering', () => {
  const liquid = createEngine('text');

  it('makes an unknown variable an error, not an empty string', () => {
    expect(() => liquid.parseAndRenderSync('Hi {{ nobody }}!', { somebody: 'x' })).toThrow(
      /undefined variable: nobody/,
    );
    expect(() => liquid.parseAndRenderSync('{{ evidence.nope }}', { evidence: { rate: 1 } })).toThrow(
      /undefined variable: evidence.nope/,
    );
  });

  it('makes an unknown filter an error', () => {
    expect(() => liquid.parseAndRenderSync('{{ a | shout }}', { a: 'x' })).toThrow(/undefined filter: shout/);
  });

  it('hides inherited properties and offers no file access or escape hatch', () => {
    expect(() => liquid.parseAndRenderSync('{{ a.constructor }}', { a: {} })).toThrow(/undefined variable/);
    expect(() => liquid.parseAndRenderSync('{% include "x" %}', {})).toThrow(/tag "include" not found/);
    expect(() => liquid.parseAndRenderSync('{% render "/etc/passwd" %}', {})).toThrow(
      /tag "render" not found/,
    );
    expect(() => liquid.parseAndRenderSync('{{ a | raw }}', { a: 1 })).toThrow(/undefined filter: raw/);
    expect(() => liquid.parseAndRenderSync('{% echo a %}', { a: 1 })).toThrow(/tag "echo" not found/);
  });

  it('refuses a render that would take unbounded memory, instead of crashing the process', () => {
    // Without a limit, (1..n) with n = 1e21 from the data is a fatal V8 "invalid size" error.
    expect(() => liquid.parseAndRenderSync('{% for i in (1..n) %}{% endfor %}', { n: 1e21 })).toThrow(
      /memory alloc limit exceeded/,
    );
    expect(() =>
      liquid.parseAndRenderSync('{{ a | append: a | append: a }}', { a: 'x'.repeat(600_000) }),
    ).toThrow(/memory alloc limit exceeded/);
    expect(liquid.parseAndRenderSync('{{ a | append: a | size }}', { a: 'x'.repeat(100_000) })).toBe(
      '200000',
    );
  });

  it('fails a template at run time with a permanent error naming file and line, and returns nothing', async () => {
    // Passes the linter (the samples have 0 or 3 backups) and breaks for a user with 1 or 2.
    const dir = await copyShipped('runtime');
    const file = join(dir, 'payment-degraded/en.inapp.liquid');
    await writeFile(
      file,
      '---\ntitle: "{{ channelName }}"\n---\n{{ channelName }} is down.\n{% if backupChannelNames.size > 0 %}Try {{ backupChannelNames[2] }}.{% endif %}\n',
    );
    const custom = await TemplateStore.load(dir);
    const data = { ...degradedSample, backupChannelNames: ['支付宝'] };
    const error = templateError(() =>
      custom.render({ kind: 'payment-degraded', channel: 'inapp', locale: 'en', data }),
    );
    expect(error.code).toBe('FW_TEMPLATE_RENDER');
    expect(error.permanent).toBe(true);
    expect(error.message).toContain(`${file}:5: undefined variable: backupChannelNames.2`);
    expect(error.message).toContain('payment-degraded (en, inapp)');
  });
});

describe('data that breaks the schema', () => {
  it.each([
    [
      'a wrong type',
      { backupChannelNames: ['支付宝', 7] },
      'data.backupChannelNames.1: expected string, received number',
    ],
    ['a script URL', { payUrl: 'javascript:alert(1)' }, 'data.payUrl:'],
    ['a missing value', { channelName: undefined }, 'data.channelName: expected string, received undefined'],
    ['an unknown issue', { issue: 'down' }, 'data.issue:'],
    ['a key the kind does not declare', { extra: 'x' }, 'data: Unrecognized key: "extra"'],
  ])('is a permanent FW_TEMPLATE_RENDER naming the path: %s', (_case, change, expected) => {
    const data = { ...degradedSample, ...change } as unknown as TemplateInput<'payment-degraded'>;
    const error = templateError(() =>
      render({ kind: 'payment-degraded', channel: 'email', locale: 'en-US', data }),
    );
    expect(error.code).toBe('FW_TEMPLATE_RENDER');
    expect(error.permanent).toBe(true);
    expect(error.message).toContain('payment-degraded (en, email)');
    expect(error.message).toContain(expected);
  });

  it('names nested paths', () => {
    const sample = templateKinds['ops-incident-resolved'].sample;
    const data = { ...sample, resolveEvidence: { ...sample.resolveEvidence, rate: 'high' } };
    const error = templateError(() =>
      render({
        kind: 'ops-incident-resolved',
        channel: 'email',
        data,
      } as unknown as RenderRequest<'ops-incident-resolved'>),
    );
    expect(error.message).toContain(
      'ops-incident-resolved (zh-CN, email): data.resolveEvidence.rate: expected number',
    );
  });

  it('refuses an unknown kind or a channel the kind does not have', () => {
    const unknownKind = {
      kind: 'nope',
      channel: 'email',
      data: {},
    } as unknown as RenderRequest<'payment-degraded'>;
    expect(templateError(() => render(unknownKind)).message).toContain('unknown template kind "nope"');
    const wrongChannel = {
      kind: 'ops-incident-opened',
      channel: 'inapp',
      data: templateKinds['ops-incident-opened'].sample,
    } as unknown as RenderRequest<'ops-incident-opened'>;
    expect(templateError(() => render(wrongChannel)).message).toContain(
      'ops-incident-opened has no "inapp" templates: expected one of email',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The linter, on the shipped directory and on copies with one mistake each.

async function copyShipped(name: string): Promise<string> {
  const dir = join(tmp, name);
  await cp(defaultTemplatesDir, dir, { recursive: true });
  return dir;
}

/** A copy of the shipped templates with `change` applied; returns its problems. */
async function lintVariant(name: string, change: (dir: string) => Promise<void>) {
  const dir = await copyShipped(name);
  await change(dir);
  // One mistake each: the both-ways comparison (both-ways.test.ts) would only add seconds.
  return { dir, problems: await lintTemplates(dir, { bothWays: false }) };
}

function expectProblem(problems: TemplateProblem[], file: string, line: number, message: RegExp): void {
  const match = problems.find((p) => p.file === file && p.line === line && message.test(p.message));
  expect(
    match,
    `no problem at ${file}:${line} matching ${String(message)}; got:\n${JSON.stringify(problems, null, 2)}`,
  ).toBeDefined();
}

const INAPP = 'payment-recovered/en.inapp.liquid';
const EMAIL = 'payment-recovered/zh-CN.email.liquid';

/** An in-app template whose body starts on line 4. */
function inapp(body: string, title = '"{{ channelName }} is back"'): string {
  return `---\ntitle: ${title}\n---\n${body}\n`;
}

describe('lintTemplates', () => {
  it('finds nothing wrong with the shipped templates', async () => {
    expect(await lintTemplates(defaultTemplatesDir)).toEqual([]);
  });

  it('loads only a directory that passes, and says why not', async () => {
    const dir = await copyShipped('refused');
    await writeFile(join(dir, INAPP), inapp('{{ channelNmae }} works again.'));
    await expect(TemplateStore.load(dir)).rejects.toMatchObject({
      code: 'FW_TEMPLATE_INVALID',
      message: expect.stringContaining(`${join(dir, INAPP)}:4: {{ channelNmae }}`),
    });
  });

  it.each([
    {
      mistake: 'a syntax error',
      file: INAPP,
      text: inapp('{{ channelName }} works again.\n{% if userName %}Hi {{ userName }}'),
      line: 5,
      message: /tag \{% if userName %\} not closed/,
    },
    {
      mistake: 'an undeclared variable',
      file: INAPP,
      text: inapp('Good news.\n\n{{ channelNmae }} works again.'),
      line: 6,
      message:
        /\{\{ channelNmae \}\}: "channelNmae" is not a variable of payment-recovered; declared in templates\/kinds.ts: userName, channelName/,
    },
    {
      mistake: 'a variable of another kind',
      file: INAPP,
      text: inapp('{{ channelName }} works again; use {{ backupChannelName }}.'),
      line: 4,
      message: /"backupChannelName" is not a variable of payment-recovered/,
    },
    {
      mistake: 'an undeclared nested property',
      file: 'ops-incident-opened/en.email.liquid',
      text: '---\nsubject: "x"\n---\n{{ channelName }}\n{{ evidence.ratio }}\n',
      line: 5,
      message: /evidence has no "ratio"; it has: windowSeconds, attempts/,
    },
    {
      mistake: 'an undeclared variable in the subject',
      file: EMAIL,
      text: '---\nsubject: 【支付提醒】{{ chanelName }}已恢复正常\n---\n{{ channelName }}已恢复正常。\n',
      line: 2,
      message: /"chanelName" is not a variable/,
    },
    {
      mistake: 'an unknown filter',
      file: INAPP,
      text: inapp('{{ channelName }} works again.\n\n{{ channelName | shout }}'),
      line: 6,
      message: /undefined filter: shout/,
    },
    {
      mistake: 'the raw filter',
      file: INAPP,
      text: inapp('{{ channelName | raw }} works again.'),
      line: 4,
      message: /undefined filter: raw/,
    },
    {
      mistake: 'an include',
      file: INAPP,
      text: inapp('{{ channelName }}\n{% include "../kinds.ts" %}'),
      line: 5,
      message: /tag "include" not found/,
    },
    {
      mistake: 'a missing subject',
      file: EMAIL,
      text: '---\nsubjct: 【支付提醒】{{ channelName }}已恢复正常\n---\n{{ channelName }}已恢复正常。\n',
      line: 1,
      message: /missing "subject:" in the front matter/,
    },
    {
      mistake: 'an unknown front matter key',
      file: EMAIL,
      text: '---\nsubjct: 【支付提醒】{{ channelName }}已恢复正常\n---\n{{ channelName }}已恢复正常。\n',
      line: 2,
      message: /unknown front matter key "subjct"/,
    },
    {
      mistake: 'a missing title',
      file: INAPP,
      text: '---\n---\n{{ channelName }} works again.\n',
      line: 1,
      message: /front matter must hold "title: \.\.\."/,
    },
    {
      mistake: 'no front matter',
      file: INAPP,
      text: '{{ channelName }} works again.\n',
      line: 1,
      message: /expected front matter/,
    },
    {
      mistake: 'front matter that is not YAML',
      file: INAPP,
      text: '---\ntitle: "{{ channelName }}\n---\n{{ channelName }} works again.\n',
      line: 2,
      message: /front matter is not valid YAML/,
    },
    {
      mistake: 'an unquoted subject that starts with {{',
      file: EMAIL,
      text: '---\nsubject: {{ channelName }}已恢复正常\n---\n{{ channelName }}已恢复正常。\n',
      line: 2,
      message:
        /not valid YAML: .*; put a value that starts with \{\{ or \{% in double quotes: subject: "\{\{ \.\.\. \}\}"/,
    },
    {
      mistake: 'an empty body',
      file: INAPP,
      text: inapp(''),
      line: 4,
      message: /the message body is empty/,
    },
    {
      mistake: 'a template that fails with the sample data',
      file: 'payment-degraded/en.inapp.liquid',
      text: '---\ntitle: "{{ channelName }}"\n---\n{{ channelName }} is down.\nUse {{ backupChannelNames[5] }}.\n',
      line: 5,
      message: /undefined variable: backupChannelNames.5 \(rendering the sample data\)/,
    },
    {
      mistake: 'a template that fails with a variant',
      file: 'payment-degraded/en.inapp.liquid',
      text: '---\ntitle: "{{ channelName }}"\n---\n{{ channelName }} is down.\nUse {{ backupChannelNames.first | upcase }}.\n',
      line: 5,
      message: /\(rendering the slow, no name, no backup data\)/,
    },
  ])('names file and line for $mistake', async ({ mistake, file, text, line, message }) => {
    const { dir, problems } = await lintVariant(mistake.replace(/\W+/g, '-'), (d) =>
      writeFile(join(d, file), text),
    );
    expectProblem(problems, join(dir, file), line, message);
  });

  it('names a missing zh-CN file', async () => {
    const { dir, problems } = await lintVariant('no-zh', (d) =>
      rm(join(d, 'payment-recovered/zh-CN.inapp.liquid')),
    );
    expectProblem(
      problems,
      join(dir, 'payment-recovered/zh-CN.inapp.liquid'),
      1,
      /missing: every kind needs zh-CN and en/,
    );
    expect(problems).toHaveLength(1);
  });

  it('names a missing en file', async () => {
    const { dir, problems } = await lintVariant('no-en', (d) =>
      rm(join(d, 'ops-incident-opened/en.email.liquid')),
    );
    expectProblem(
      problems,
      join(dir, 'ops-incident-opened/en.email.liquid'),
      1,
      /missing: every kind needs zh-CN and en .*ops-incident-opened: email/,
    );
    expect(problems).toHaveLength(1);
  });

  it('names an unknown kind folder', async () => {
    const { dir, problems } = await lintVariant('unknown-kind', async (d) => {
      await mkdir(join(d, 'payment-degarded'));
      await writeFile(join(d, 'payment-degarded/zh-CN.email.liquid'), '---\nsubject: x\n---\nx\n');
    });
    expectProblem(
      problems,
      join(dir, 'payment-degarded'),
      1,
      /unknown kind "payment-degarded".*payment-degraded, payment-recovered/,
    );
    expect(problems).toHaveLength(1);
  });

  it('names stray and misnamed files', async () => {
    const { dir, problems } = await lintVariant('names', async (d) => {
      await writeFile(join(d, 'notes.txt'), 'todo');
      await writeFile(join(d, 'payment-recovered/zh-CN.sms.liquid'), '---\ntitle: x\n---\nx\n');
      await writeFile(join(d, 'ops-incident-opened/zh-CN.inapp.liquid'), '---\ntitle: x\n---\nx\n');
      await writeFile(join(d, 'payment-recovered/zh-cn.email.liquid'), '---\nsubject: x\n---\nx\n');
      await writeFile(join(d, 'payment-recovered/zh-CN.email.txt'), 'x');
    });
    expectProblem(problems, join(dir, 'notes.txt'), 1, /stray file/);
    expectProblem(problems, join(dir, 'payment-recovered/zh-CN.sms.liquid'), 1, /unknown channel "sms"/);
    expectProblem(
      problems,
      join(dir, 'ops-incident-opened/zh-CN.inapp.liquid'),
      1,
      /not sent by inapp: its channels are email/,
    );
    expectProblem(problems, join(dir, 'payment-recovered/zh-cn.email.liquid'), 1, /write it as "zh-CN"/);
    expectProblem(problems, join(dir, 'payment-recovered/zh-CN.email.txt'), 1, /stray file/);
    expect(problems).toHaveLength(5);
  });

  it('checks the layout: its variables, and that it writes the content', async () => {
    const { dir, problems } = await lintVariant('layout', async (d) => {
      const file = join(d, '_layout.html');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('{{ content }}', '{{ body }}'));
    });
    const file = join(dir, '_layout.html');
    expect(
      problems.some(
        (p) =>
          p.file === file && /\{\{ body \}\}: the layout has only content, subject, locale/.test(p.message),
      ),
    ).toBe(true);
    expectProblem(problems, file, 1, /never writes \{\{ content \}\}/);
  });

  it('names a missing layout', async () => {
    const { dir, problems } = await lintVariant('no-layout', (d) => rm(join(d, '_layout.html')));
    expectProblem(problems, join(dir, '_layout.html'), 1, /missing: the HTML layout/);
  });

  it('lets a line of tags vanish and keeps blank lines as paragraphs', async () => {
    const dir = await copyShipped('tag-lines');
    await writeFile(
      join(dir, INAPP),
      inapp(
        '{{ channelName }} works again.\n{% if userName %}\n  Thanks, {{ userName }}.\n{% endif %}\nBye.\n\nNext.',
      ),
    );
    const custom = await TemplateStore.load(dir);
    const message = custom.render({
      kind: 'payment-recovered',
      channel: 'inapp',
      locale: 'en',
      data: templateKinds['payment-recovered'].sample,
    });
    expect(message.text).toBe('微信支付 works again.\n  Thanks, 小林.\nBye.\n\nNext.');
  });

  it('reports a directory that cannot be read', async () => {
    const missing = join(tmp, 'does-not-exist');
    expectProblem(await lintTemplates(missing), missing, 1, /cannot read the templates directory/);
  });
});
