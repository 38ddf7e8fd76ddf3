// `forewarn migrate`: create or upgrade forewarn's own schema.
import type { Command } from 'commander';
import { migrate } from '../../lib/db/migrate.ts';
import { redactUrl } from '../../lib/env.ts';
import { commandEnv } from './shared.ts';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description(
      'create or upgrade forewarn\'s own schema ("forewarn") in DATABASE_URL; safe to run repeatedly and concurrently',
    )
    .action(async () => {
      const { env, logger } = commandEnv();
      const result = await migrate(env.databaseUrl, logger);
      const applied = result.applied.map((m) => `${m.version}_${m.name}`).join(', ');
      process.stdout.write(
        `${redactUrl(env.databaseUrl)}: schema forewarn at version ${result.current}, deployment ${result.deploymentId}` +
          (applied ? ` (applied ${applied})\n` : ' (already up to date)\n'),
      );
    });
}
