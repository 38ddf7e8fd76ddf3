// `forewarn templates lint` and `forewarn templates preview`: check every message template
// before it ships, and render one with sample data into a file a person can open.
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../lib/errors.ts';
import { formatProblem } from '../../lib/templates/errors.ts';
import { inspectTemplates } from '../../lib/templates/lint.ts';
import { readPreviewData, writePreview } from '../../lib/templates/preview.ts';
import { defaultTemplatesDir, TemplateStore } from '../../lib/templates/store.ts';
import {
  isTemplateKind,
  templateChannels,
  templateKindNames,
  templateKinds,
  type TemplateChannel,
} from '../../templates/kinds.ts';

export function registerTemplates(program: Command): void {
  const templates = program.command('templates').description('check and preview the message templates');

  templates
    .command('lint')
    .description(
      'check every template: files and names, front matter, Liquid syntax, declared variables and filters, required locales and channels, a render with sample data; prints file:line: problem, exits 1 if any',
    )
    .option('--dir <dir>', 'templates directory (default: the project’s templates/)')
    .action(async (options: { dir?: string }) => {
      const dir = options.dir ?? defaultTemplatesDir;
      const { set } = await inspectTemplates(dir);
      if (set.problems.length > 0) {
        for (const problem of set.problems) {
          process.stderr.write(`${formatProblem({ ...problem, file: shown(problem.file) })}\n`);
        }
        process.stderr.write(`${set.problems.length} problem(s) in the templates in ${shown(dir)}\n`);
        process.exitCode = 1;
        return;
      }
      const locales = [...new Set(set.templates.map((t) => t.locale))].sort();
      process.stdout.write(
        `${shown(dir)}: ok, ${set.templates.length} templates for ${templateKindNames.length} kinds in ${locales.join(', ')}\n`,
      );
    });

  templates
    .command('preview')
    .description(
      'render one template with its sample data (or --data) into previews/<kind>.<locale>.<channel>.html (and .txt for email); prints the files',
    )
    .argument('<kind>', `message kind: ${templateKindNames.join(', ')}`)
    .option('--locale <tag>', 'locale to render; one without a template falls back as for a user', 'zh-CN')
    .option('--channel <channel>', `channel: ${templateChannels.join(', ')}`, 'email')
    .option(
      '--data <file>',
      "JSON file with the kind's variables (default: the sample data in templates/kinds.ts)",
    )
    .option('--out <dir>', 'directory for the preview files', 'previews')
    .option('--dir <dir>', 'templates directory (default: the project’s templates/)')
    .action(
      async (
        kind: string,
        options: { locale: string; channel: string; data?: string; out: string; dir?: string },
      ) => {
        if (!isTemplateKind(kind)) {
          throw new UsageError(
            `unknown template kind "${kind}": expected one of ${templateKindNames.join(', ')}`,
          );
        }
        const channels: readonly TemplateChannel[] = templateKinds[kind].channels;
        const channel = channels.find((c) => c === options.channel);
        if (!channel) {
          throw new UsageError(
            `${kind} has no channel "${options.channel}": expected one of ${channels.join(', ')}`,
          );
        }
        const store = await TemplateStore.load(options.dir ?? defaultTemplatesDir);
        const data = options.data ? await readPreviewData(options.data) : templateKinds[kind].sample;
        const source = options.data ?? `sample data of ${kind} in templates/kinds.ts`;
        const { message, files } = await writePreview(store, {
          kind,
          channel,
          locale: options.locale,
          data,
          source,
          outDir: options.out,
        });
        if (message.locale !== options.locale) {
          process.stderr.write(
            `note: ${kind} has no ${options.locale} template for ${channel}; rendered ${message.locale}, as a user with that locale would get\n`,
          );
        }
        for (const file of files) process.stdout.write(`${shown(file)}\n`);
      },
    );
}

/** Paths as the user can type them: relative to the working directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  return rel === '' ? '.' : rel.startsWith('..') ? resolve(path) : rel;
}
