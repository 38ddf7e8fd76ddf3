// Previews of a rendered message as files a person can open: an email's HTML part (and its text
// part beside it), or an in-app message shown as a small page. Used by `forewarn templates preview`.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChannelOf, TemplateInput, TemplateKind } from '../../templates/kinds.ts';
import { validateTemplateData } from './data.ts';
import { TemplateError } from './errors.ts';
import { escapeHtml } from './html.ts';
import type { RenderedMessage, TemplateStore } from './store.ts';

export interface PreviewRequest<K extends TemplateKind> {
  kind: K;
  channel: ChannelOf<K>;
  locale: string;
  /** Data to render; validated against the kind's schema. */
  data: unknown;
  /** Where the data came from, for error messages (e.g. the JSON file). */
  source: string;
  outDir: string;
}

export interface Preview {
  message: RenderedMessage;
  files: string[];
}

export async function writePreview<K extends TemplateKind>(
  store: TemplateStore,
  request: PreviewRequest<K>,
): Promise<Preview> {
  // Validated here first so that a mistake names the data file rather than the template.
  const data = validateTemplateData(request.kind, request.data, request.source);
  const message = store.render({
    kind: request.kind,
    channel: request.channel,
    locale: request.locale,
    // The kinds' schemas do not transform: what they output is valid input.
    data: data as TemplateInput<K>,
  });
  await mkdir(request.outDir, { recursive: true });
  const base = join(request.outDir, `${message.kind}.${message.locale}.${message.channel}`);
  const files: string[] = [];
  if (message.channel === 'email') {
    await writeFile(`${base}.html`, message.html ?? '', 'utf8');
    await writeFile(`${base}.txt`, `Subject: ${message.subject ?? ''}\n\n${message.text}\n`, 'utf8');
    files.push(`${base}.html`, `${base}.txt`);
  } else {
    await writeFile(`${base}.html`, inAppPage(message), 'utf8');
    files.push(`${base}.html`);
  }
  return { message, files };
}

/** Reads a JSON data file for a preview; a clear error names the file when it cannot. */
export async function readPreviewData(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new TemplateError('FW_TEMPLATE_RENDER', `${file}: cannot read the data file: ${describe(error)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new TemplateError('FW_TEMPLATE_RENDER', `${file}: not valid JSON: ${describe(error)}`);
  }
}

/** An in-app message as the platform might show it: a title and a line or two of text. */
export function inAppPage(message: RenderedMessage): string {
  const title = escapeHtml(message.title ?? '');
  const body = escapeHtml(message.text).replace(/\n/g, '<br>\n');
  return `<!doctype html>
<html lang="${escapeHtml(message.locale)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
</head>
<body style="margin:0;padding:32px 12px;background-color:#f4f5f7;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Microsoft YaHei',Helvetica,Arial,sans-serif;">
<p style="max-width:420px;margin:0 auto 8px auto;font-size:12px;color:#8a9099;">In-app message preview: ${escapeHtml(message.kind)}, ${escapeHtml(message.locale)}</p>
<div style="max-width:420px;margin:0 auto;background-color:#ffffff;border:1px solid #e3e6ea;border-radius:10px;padding:16px 18px;">
<div style="font-size:16px;font-weight:600;color:#1f2329;margin:0 0 6px 0;">${title}</div>
<div style="font-size:14px;line-height:1.6;color:#3b4048;">${body}</div>
</div>
</body>
</html>
`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
