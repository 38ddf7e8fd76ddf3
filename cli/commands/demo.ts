// `forewarn demo`: the whole pipeline on a simulated platform, in about two minutes.
import type { Command } from 'commander';
import { runDemo } from '../../lib/demo/demo.ts';
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
    .action(async (options: { databaseUrl?: string }) => {
      const { env, logger } = commandEnv();
      const fallback = new URL(env.databaseUrl);
      fallback.pathname = '/forewarn_demo';
      const databaseUrl =
        options.databaseUrl ?? process.env.FOREWARN_DEMO_DATABASE_URL ?? fallback.toString();
      const started = Date.now();
      const say = (line: string) =>
        process.stdout.write(
          `[demo +${String(Math.round((Date.now() - started) / 1000)).padStart(3)} s] ${line}\n`,
        );
      await runDemo({ env, logger, databaseUrl, say });
      say('Done.');
    });
}
