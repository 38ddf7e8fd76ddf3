// `forewarn demo`: the whole pipeline on a simulated platform, in about two minutes. The readable
// lines go to stdout; the daemon's JSON logs go to a file (named at the start and the end), so
// that they do not bury those lines, or are pretty-printed on stderr with --logs pretty.
import { relative, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import pino from 'pino';
import { runDemo } from '../../lib/demo/demo.ts';
import { createLogger } from '../../lib/logger.ts';
import { prettyLogStream } from '../../lib/pretty-logs.ts';
import { commandEnv } from './shared.ts';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run forewarn end to end on a simulated platform: live traffic, an injected outage, the real daemon; ends by itself in about 2 minutes',
    )
    .option(
      '--database-url <url>',
      "the demo's own database, dropped and recreated (default: $FOREWARN_DEMO_DATABASE_URL, or database forewarn_demo on DATABASE_URL's server)",
    )
    .addOption(
      new Option(
        '--logs <where>',
        "the daemon's logs: file (JSON lines into --log-file), pretty (one readable line each on stderr), stderr (JSON lines on stderr)",
      )
        .choices(['file', 'pretty', 'stderr'])
        .default('file'),
    )
    .option('--log-file <file>', 'the JSON log file of --logs file, overwritten each run', 'demo.log')
    .action(
      async (options: { databaseUrl?: string; logs: 'file' | 'pretty' | 'stderr'; logFile: string }) => {
        const { env } = commandEnv();
        const logFile = resolve(options.logFile);
        const logger = createLogger({
          level: env.logLevel,
          destination:
            options.logs === 'file'
              ? pino.destination({ dest: logFile, append: false, mkdir: true, sync: false })
              : options.logs === 'pretty'
                ? prettyLogStream(process.stderr)
                : undefined,
        });
        const fallback = new URL(env.databaseUrl);
        fallback.pathname = '/forewarn_demo';
        const databaseUrl =
          options.databaseUrl ?? process.env.FOREWARN_DEMO_DATABASE_URL ?? fallback.toString();
        const started = Date.now();
        const say = (line: string) =>
          process.stdout.write(
            `[demo +${String(Math.round((Date.now() - started) / 1000)).padStart(3)} s] ${line}\n`,
          );
        const shown = relative(process.cwd(), logFile).startsWith('..')
          ? logFile
          : `./${relative(process.cwd(), logFile)}`;
        if (options.logs === 'file') say(`JSON logs: ${shown}`);
        try {
          await runDemo({ env, logger, databaseUrl, say });
          say('Done.');
        } finally {
          // No await on a flush here: pino writes what is left in the file's buffer as the process exits.
          if (options.logs === 'file') say(`JSON logs: ${shown}`);
        }
      },
    );
}
