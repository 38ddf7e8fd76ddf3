// The security check-ups of the account-inactivity watcher must never look like phishing: every
// locale and channel of both kinds, rendered with the sample and every variant, holds no secret,
// no code, no sign-in link and no URL but the platform's own security page (none at all when it
// has none, and none in-app), says we never ask for a password, names the last activity date as
// given (already in the user's time zone) and never calls it Beijing time.
import { beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml } from '../../lib/templates/html.ts';
import { TemplateStore, type RenderedMessage, type RenderRequest } from '../../lib/templates/store.ts';
import { requiredLocales, templateKinds, type TemplateInput } from '../../templates/kinds.ts';

const KINDS = ['security-checkup', 'security-checkup-reminder'] as const;
type CheckupKind = (typeof KINDS)[number];
type CheckupData = TemplateInput<'security-checkup'> & { previousStepDays?: number };

const NEVER_ASK: Record<(typeof requiredLocales)[number], string> = {
  'zh-CN': '我们绝不会以任何方式向您索要密码或验证码',
  en: 'We will never ask for your password or verification codes.',
};

/** Words that read as a secret or a credential in a URL or a message. */
const SECRETS = ['password=', 'token', 'passwd', 'pwd='];
/** A path that signs someone in. */
const SIGN_IN_PATH = /login|signin|sign-in|auth/i;
/** Urgency and orders a check-up must never use. */
const PRESSURE = {
  'zh-CN': /冻结|封禁|封号|锁定|停用|立即|马上|限时|点击此处|验证您的/,
  en: /\block(ed)?\b|suspend|disabled|immediately|urgent|within \d+ hours|click here|verify your/i,
} as const;

let store: TemplateStore;

beforeAll(async () => {
  store = await TemplateStore.load();
});

const cases = KINDS.flatMap((kind) => {
  const definition = templateKinds[kind];
  const samples: [string, CheckupData][] = [
    ['sample', definition.sample],
    ...Object.entries(definition.variants ?? {}),
  ];
  return definition.channels.flatMap((channel) =>
    requiredLocales.flatMap((locale) =>
      samples.map(([name, data]) => ({ kind, channel, locale, name, data })),
    ),
  );
});

function render(kind: CheckupKind, channel: string, locale: string, data: CheckupData): RenderedMessage {
  return store.render({ kind, channel, locale, data } as RenderRequest<typeof kind>);
}

/** Every http(s) URL written out in a part. */
function urlsIn(text: string): string[] {
  return [...text.matchAll(/https?:\/\/[^\s<>"'）)，。、]+/gi)].map((m) => m[0]);
}

/** Every href in an HTML part (unescaped). */
function hrefsIn(html: string): string[] {
  return [...html.matchAll(/\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi)].map((m) =>
    (m[1] ?? m[2] ?? m[3] ?? '').replace(/&amp;/g, '&'),
  );
}

/** The data's own strings and numbers: a long number from them is no code. */
function dataValues(data: CheckupData): string[] {
  return Object.values(data)
    .filter((v) => typeof v === 'string' || typeof v === 'number')
    .map(String);
}

describe('security check-up copy', () => {
  it('covers both kinds, both channels, both locales, the sample and every variant', () => {
    expect(cases.length).toBe(2 * 2 * 2 * 5);
    for (const kind of KINDS) {
      const variants = Object.values(templateKinds[kind].variants ?? {}) as CheckupData[];
      // The edge cases the variants must hold: no page, never signed in, a Latin date, years idle.
      expect(variants.some((v) => v.securityUrl === null)).toBe(true);
      expect(variants.some((v) => v.neverSignedIn)).toBe(true);
      expect(variants.some((v) => /^\d{1,2} [A-Z][a-z]+ \d{4}$/.test(v.lastActiveDate))).toBe(true);
      expect(variants.some((v) => v.idleDays >= 365)).toBe(true);
    }
  });

  it.each(cases)('$kind $channel $locale with the $name data', ({ kind, channel, locale, data }) => {
    const message = render(kind, channel, locale, data);
    expect(message).toMatchObject({ kind, channel, locale });
    const header = (channel === 'email' ? message.subject : message.title) ?? '';
    expect(header).toMatch(/\S/);
    const parts: [string, string][] = [
      ['header', header],
      ['text', message.text],
    ];
    if (channel === 'email') {
      expect(message.html).toBeDefined();
      parts.push(['html', message.html!]);
    } else {
      expect(message.html).toBeUndefined();
    }

    const allowedOrigin = data.securityUrl === null ? null : new URL(data.securityUrl).origin;
    const values = dataValues(data);
    for (const [part, content] of parts) {
      const where = `${kind} ${locale} ${channel} ${part}`;
      const lower = content.toLowerCase();
      for (const secret of SECRETS) expect(lower, `${where} holds "${secret}"`).not.toContain(secret);

      // A six-digit run looks like a verification code unless the data brought it.
      for (const [digits] of content.matchAll(/\d{6,}/g)) {
        expect(
          values.some((v) => v.includes(digits)),
          `${where} holds ${digits}, which looks like a code`,
        ).toBe(true);
      }

      const urls = part === 'html' ? [...urlsIn(content), ...hrefsIn(content)] : urlsIn(content);
      if (allowedOrigin === null || channel === 'inapp' || part === 'header') {
        expect(urls, `${where}: no URL at all`).toEqual([]);
      }
      for (const url of urls) {
        const parsed = new URL(url);
        expect(parsed.origin, `${where}: ${url} is not on the security page's origin`).toBe(allowedOrigin);
        expect(parsed.pathname + parsed.search, `${where}: ${url} looks like a sign-in link`).not.toMatch(
          SIGN_IN_PATH,
        );
      }
      // Nor a link without its scheme (a host name, www., //).
      let rest = content;
      for (const url of urls) rest = rest.split(url).join(' ');
      expect(rest, `${where}: a link without a scheme`).not.toMatch(
        /:\/\/|\bwww\.|\b(?:[a-z0-9-]+\.)+(?:com|cn|net|org|io|app|shop|top|xyz)\b/i,
      );

      expect(content, `${where} presses the user`).not.toMatch(PRESSURE[locale]);
      if (locale === 'zh-CN') expect(content, where).not.toContain('北京时间');
      else expect(content, where).not.toMatch(/beijing time/i);
    }

    // The bodies say why (the date as given), and that we never ask for a password.
    expect(message.text).toContain(data.lastActiveDate);
    expect(message.text).toContain(data.siteName);
    expect(message.text).toContain(NEVER_ASK[locale]);
    if (channel === 'email') {
      const html = message.html!;
      // The reminder says when the earlier note came (in-app keeps it to "earlier").
      if (kind === 'security-checkup-reminder') {
        const n = data.previousStepDays;
        expect(message.text).toContain(
          locale === 'zh-CN' ? `在您的账号约 ${n} 天没有活动时` : `inactive for about ${n} day`,
        );
      }
      expect(html).toContain(escapeHtml(data.lastActiveDate));
      expect(html).toContain(escapeHtml(NEVER_ASK[locale]));
      if (data.securityUrl === null) {
        expect(hrefsIn(html)).toEqual([]);
      } else {
        // The security page is the one link, written out in full.
        expect(message.text).toContain(data.securityUrl);
        expect(hrefsIn(html)).toEqual([data.securityUrl]);
      }
    } else {
      // In-app: short, one to three sentences, and never a link.
      expect(message.text.split(/[。.!?！？]\s*/).filter(Boolean).length).toBeLessThanOrEqual(3);
    }
  });
});
