// `forewarn templates lint` and `forewarn templates preview`: check every message template
// before it ships, and render one with sample data into a file a person can open.
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { createEmailSender, type EmailSender } from '../../lib/channels/email.ts';
import { UsageError } from '../../lib/errors.ts';
import { startLocalStudio } from '../../lib/studio/local.ts';
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
import { commandConfig, commandEnv } from './shared.ts';

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

  templates
    .command('studio')
    .description(
      'a web page to edit the templates on this checkout: every kind, locale and channel, previewed live (subject, email HTML, plain text) from editable sample data, lint problems by line as you type, the variables explained, save (refused while the template has problems), a test send to templates.studio.testSendAllow addresses; reloads when a file changes on disk',
    )
    .option('--port <port>', 'port to listen on (0: any free port)', '8788')
    .option('--host <host>', 'address to bind (other machines reach it only if you bind them)', '127.0.0.1')
    .option('--dir <dir>', 'templates directory (default: the project’s templates/)')
    .option('--config <file>', 'config file (test-send allow-list, email sender)')
    .action(async (options: { port: string; host: string; dir?: string; config?: string }) => {
      const port = Number(options.port);
      if (!/^\d+$/.test(options.port) || port > 65_535) {
        throw new UsageError(`--port ${options.port}: expected a port number from 0 to 65535`);
      }
      const { env, logger } = commandEnv();
      const config = await commandConfig(env, options.config);
      let sender: EmailSender | undefined;
      const studio = await startLocalStudio({
        dir: resolve(options.dir ?? defaultTemplatesDir),
        host: options.host,
        port,
        logger,
        testSend: () => ({
          allow: config.templates.studio.testSendAllow,
          // The email channel's own sender: SMTP_URL, or the .eml outbox without one.
          sender: (sender ??= createEmailSender({
            smtpUrl: env.smtpUrl,
            outboxDir: env.outboxDir,
            from: config.notifications.email.from,
            logger,
          })),
          messageIdDomain: config.notifications.email.messageIdDomain,
        }),
      });
      process.stdout.write(`template studio: ${studio.address}/ (Ctrl-C stops it)\n`);
      await new Promise<void>((done) => {
        const stop = () => done();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await studio.close();
      await sender?.close();
    });
}

/** Paths as the user can type them: relative to the working directory when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  return rel === '' ? '.' : rel.startsWith('..') ? resolve(path) : rel;
}
