// Rendering one compiled template with data that has been validated: the subject or title (one
// line, plain text), the plain-text body and, for email, the HTML part in the layout. Any failure
// is a permanent TemplateError that names the file and line; nothing half-rendered comes back.
import type { Template } from 'liquidjs';
import type { TemplateChannel, TemplateKind } from '../../templates/kinds.ts';
import { liquidErrorAt } from './engine.ts';
import { TemplateError } from './errors.ts';
import { escapeHtml, normaliseText, oneLine, textToHtml } from './html.ts';
import type { CompiledLayout, CompiledTemplate, Engines } from './source.ts';

export interface RenderedMessage {
  kind: TemplateKind;
  /** The locale whose template was used (zh-CN when the user's had none). */
  locale: string;
  channel: TemplateChannel;
  /** Email: the subject line, plain text (platform data as it is; the mailer encodes headers). */
  subject?: string;
  /** In-app: the title, plain text. */
  title?: string;
  /** The plain-text body. In-app clients must show it as text, never as HTML. */
  text: string;
  /** Email: the HTML part, every value from the data escaped. */
  html?: string;
}

export function renderCompiled(
  engines: Engines,
  template: CompiledTemplate,
  layout: CompiledLayout | null,
  data: Record<string, unknown>,
): RenderedMessage {
  const where = `${template.kind} (${template.locale}, ${template.channel})`;
  const run = (
    liquid: Engines['text'],
    parsed: Template[],
    scope: Record<string, unknown>,
    file: string,
    firstLine: number,
  ) => {
    try {
      return String(liquid.renderSync(parsed, scope));
    } catch (error) {
      const at = liquidErrorAt(error);
      const line = at ? firstLine + at.line - 1 : firstLine;
      const message = at?.message ?? (error instanceof Error ? error.message : String(error));
      throw new TemplateError('FW_TEMPLATE_RENDER', `${file}:${line}: ${message} (rendering ${where})`, {
        problems: [{ file, line, message }],
        cause: error,
      });
    }
  };
  const empty = (part: string, line: number): TemplateError =>
    new TemplateError(
      'FW_TEMPLATE_RENDER',
      `${template.file}:${line}: the ${part} is empty (rendering ${where})`,
      {
        problems: [{ file: template.file, line, message: `the ${part} is empty` }],
      },
    );

  const header = oneLine(
    run(engines.text, template.header.template, data, template.file, template.header.line),
  );
  if (header === '') throw empty(template.header.key, template.header.line);
  const text = normaliseText(run(engines.text, template.body.text, data, template.file, template.body.line));
  if (text === '') throw empty('message body', template.body.line);

  const message: RenderedMessage = {
    kind: template.kind,
    locale: template.locale,
    channel: template.channel,
    text,
  };
  if (template.header.key === 'subject') message.subject = header;
  else message.title = header;

  if (template.body.html) {
    const content = textToHtml(
      run(engines.html, template.body.html, data, template.file, template.body.line),
    );
    message.html = layout
      ? run(
          engines.text,
          layout.template,
          // Values reach the layout escaped already: it is rendered without escaping for `content`.
          { content, subject: escapeHtml(header), locale: template.locale },
          layout.file,
          1,
        ).trimStart()
      : content;
  }
  return message;
}
