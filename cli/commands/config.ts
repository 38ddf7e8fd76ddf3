// `forewarn config check [file]`: validate a config file before it ships.
import type { Command } from 'commander';
import { ConfigError, ForewarnError } from '../../lib/errors.ts';
import { loadConfigFile } from '../../lib/config/load.ts';
import { readEnv } from '../../lib/env.ts';

export function registerConfig(program: Command): void {
  const config = program.command('config').description('work with the config file');
  config
    .command('check')
    .description(
      'validate a config file; prints every problem with its path, what was expected and what was found',
    )
    .argument('[file]', 'config file (default: $FOREWARN_CONFIG or config/forewarn.yaml)')
    .action(async (file: string | undefined) => {
      const path = file ?? readEnv().configPath;
      try {
        await loadConfigFile(path);
        process.stdout.write(`${path}: ok\n`);
      } catch (error) {
        if (error instanceof ConfigError) {
          process.stderr.write(`${error.message}\n${error.problems.length} problem(s) found in ${path}\n`);
          process.exitCode = 1;
          return;
        }
        if (error instanceof ForewarnError) {
          process.stderr.write(`${error.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw error;
      }
    });
}
