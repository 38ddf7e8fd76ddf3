// The HTTP role's pages: small, self-contained HTML documents (no script, no external resource;
// the Content-Security-Policy allows neither), in zh-CN or en. Every value from the platform or
// from a request is escaped here, in one place.
import { escapeHtml } from '../templates/html.ts';
import { resolveLocale } from '../templates/locale.ts';

export const PAGE_LOCALES = ['zh-CN', 'en'] as const;
export type PageLocale = (typeof PAGE_LOCALES)[number];

const available: ReadonlySet<string> = new Set(PAGE_LOCALES);

/** The page locale for a user's stored locale: the contract's fallback is zh-CN. */
export function pageLocale(userLocale: string | null): PageLocale {
  return resolveLocale(available, userLocale) as PageLocale;
}

/** A confirmation: what the link does, and a button that POSTs the token to `action`. */
export interface ConfirmPage {
  locale: PageLocale;
  title: string;
  text: string;
  button: string;
  /** Relative to the page's own URL, so that a path prefix in front of the role is kept. */
  action: string;
  token: string;
}

export function confirmPage(page: ConfirmPage): string {
  return document(
    page.locale,
    page.title,
    `<p>${escapeHtml(page.text)}</p>
<form method="post" action="${escapeHtml(page.action)}">
<input type="hidden" name="token" value="${escapeHtml(page.token)}">
<button type="submit">${escapeHtml(page.button)}</button>
</form>`,
  );
}

/** What was done. */
export function donePage(locale: PageLocale, title: string, text: string): string {
  return document(locale, title, `<p>${escapeHtml(text)}</p>`);
}

/** A refusal, in both languages: a refused link names no user whose language could be trusted. */
export function problemPage(messages: Record<PageLocale, string>): string {
  const zh = messages['zh-CN'];
  const en = messages.en;
  return document('zh-CN', `${zh} / ${en}`, `<p>${escapeHtml(zh)}</p>\n<p lang="en">${escapeHtml(en)}</p>`);
}

const STYLE =
  'body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.6;color:#222}' +
  'button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.4rem;background:#1f6feb;color:#fff;cursor:pointer}';

function document(locale: PageLocale, title: string, body: string): string {
  return `<!doctype html>
<html lang="${locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}
