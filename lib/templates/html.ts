// From the plain text an email template is written in to the HTML part: escape everything,
// blank lines become paragraphs, line breaks <br>, and a line that is nothing but an http(s) URL
// becomes a link. Values from the data arrive already escaped, wrapped in private-use markers by
// `markValue` (the HTML engine's output escape), so they are never escaped twice and a newline
// hidden in platform data cannot make a line of its own (and so never becomes a link).
import { toValue } from 'liquidjs';

const OPEN = '\u{E000}';
const CLOSE = '\u{E001}';
const MARKERS = /[\u{E000}\u{E001}]/gu;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Liquid's own stringification: nil is empty, arrays are concatenated. */
export function stringifyValue(value: unknown): string {
  const v: unknown = toValue(value);
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(stringifyValue).join('');
  return String(v);
}

/** The HTML engine's `outputEscape`: every `{{ }}` output, escaped and marked as such. */
export function markValue(value: unknown): string {
  // On one line, escaped, and without markers of its own.
  return `${OPEN}${escapeHtml(stringifyValue(value).replace(MARKERS, '').replace(/\s+/g, ' '))}${CLOSE}`;
}

const URL_LINE = /^https?:\/\/\S+$/;
const P_STYLE = 'margin:0 0 16px 0;';
const A_STYLE = 'color:#1565c0;text-decoration:underline;word-break:break-all;';

/** Converts a marked rendering of a plain-text body to HTML paragraphs. */
export function textToHtml(marked: string): string {
  const paragraphs = splitParagraphs(marked);
  return paragraphs
    .map((lines) => {
      const html = lines.map(lineToHtml).join('<br>\n');
      return `<p style="${P_STYLE}">${html}</p>`;
    })
    .join('\n');
}

function lineToHtml(line: string): string {
  // Literal template text is escaped here; marked values were escaped on output.
  let html = '';
  let rest = line;
  while (rest.length > 0) {
    const open = rest.indexOf(OPEN);
    if (open < 0) {
      html += escapeHtml(rest);
      break;
    }
    html += escapeHtml(rest.slice(0, open));
    const close = rest.indexOf(CLOSE, open);
    const end = close < 0 ? rest.length : close;
    html += rest.slice(open + 1, end);
    rest = rest.slice(end + 1);
  }
  html = html.trim();
  // Escaped text holds no quotes or angle brackets, so the URL is safe inside href="...".
  return URL_LINE.test(html) ? `<a href="${html}" style="${A_STYLE}">${html}</a>` : html;
}

/** Plain text as sent: trailing spaces dropped, at most one blank line in a row, no edges. */
export function normaliseText(text: string): string {
  return splitParagraphs(text)
    .map((lines) => lines.join('\n'))
    .join('\n\n');
}

function splitParagraphs(text: string): string[][] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*(?:\n[ \t]*)+/)
    .map((paragraph) => {
      const lines = paragraph.split('\n').map((line) => line.trimEnd());
      // A paragraph never starts or ends with an empty line (e.g. text before the first break).
      while (lines.length > 0 && lines[0]!.trim() === '') lines.shift();
      while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
      return lines;
    })
    .filter((lines) => lines.length > 0);
}

/** One line for a header (subject, title): whitespace and newlines collapse to single spaces. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
